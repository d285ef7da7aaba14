#!/usr/bin/env bash
# image-test.sh: build the container image with podman and run it as a user would,
# against the stand-in Looker (cmd/lookertest) on the host.
#
# Run from anywhere in the repo, as root, after scripts/podman-setup.sh. Works offline
# apart from the Go module proxy: the build stage's base image is made here from the
# host's Go toolchain and imported under the name the Dockerfile's GO_IMAGE default
# uses, so `podman build --pull=never` finds it. An image of that name already in
# podman's store (the real one, or one made by an earlier run) is used as it is.
#
# Settings (environment):
#   IMAGE            tag to build and test              (looker-rerun:test)
#   VERSION          version baked into the binary      (0.0.0-imagetest)
#   REVISION         revision baked into the binary     (git rev-parse HEAD, else unknown)
#   GO_IMAGE         build stage image                  (the Dockerfile's GO_IMAGE default)
#   REBUILD_GO_IMAGE 1 re-imports the build stage image even if it exists
#   MAX_IMAGE_BYTES  size limit for the image           (8200000, 8.2 MB)
#   RUN_MEMORY       memory limit for each run          (64m, as the DAGs set)
#   RUN_TIMEOUT      seconds allowed for each run       (120)
#
# Prints a PASS or FAIL line per check and ends with "N passed, M failed"; exits 1 if
# anything failed.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

IMAGE=${IMAGE:-looker-rerun:test}
VERSION=${VERSION:-0.0.0-imagetest}
REVISION=${REVISION:-$(git rev-parse HEAD 2>/dev/null || echo unknown)}
MAX_IMAGE_BYTES=${MAX_IMAGE_BYTES:-8200000}
RUN_TIMEOUT=${RUN_TIMEOUT:-120}
RUN_MEMORY=${RUN_MEMORY:-64m} # the DAGs' mem_limit

passed=0
failed=0
pass() {
	echo "PASS: $*"
	passed=$((passed + 1))
}
fail() {
	echo "FAIL: $*"
	failed=$((failed + 1))
}
summary() {
	echo "$passed passed, $failed failed"
}
# fatal records a failure that later checks depend on and stops.
fatal() {
	fail "$*"
	summary
	exit 1
}
check() { # check DESCRIPTION COMMAND...: PASS if COMMAND succeeds; its stdout is dropped.
	local desc=$1
	shift
	if "$@" >/dev/null; then pass "$desc"; else fail "$desc"; fi
}
show() { # show FILE: a captured output file, indented, for the log.
	sed 's/^/    | /' "$1"
}

for tool in podman go git jq curl tar; do
	command -v "$tool" >/dev/null || fatal "$tool not found (run scripts/podman-setup.sh first)"
done

tmp=$(mktemp -d)
lookertest_pid=
containers=()
cleanup() {
	if [[ -n $lookertest_pid ]]; then
		kill "$lookertest_pid" 2>/dev/null || true
		wait "$lookertest_pid" 2>/dev/null || true
	fi
	for c in "${containers[@]}"; do
		podman rm --force --ignore "$c" >/dev/null 2>&1 || true
	done
	rm -rf "$tmp"
}
trap cleanup EXIT

# --- the build stage image -------------------------------------------------------------

# docker_name prints the fully qualified name Docker and podman resolve a short image
# reference to (golang:1.26 -> docker.io/library/golang:1.26), so the import below is
# found by `FROM golang:...` and shadows nothing else.
docker_name() {
	local ref=$1 first=${1%%/*}
	if [[ $ref != */* ]]; then
		echo "docker.io/library/$ref"
	elif [[ $first == *.* || $first == *:* || $first == localhost ]]; then
		echo "$ref"
	else
		echo "docker.io/$ref"
	fi
}

go_image_default=$(sed -n 's/^ARG GO_IMAGE=//p' Dockerfile | head -n1)
[[ -n $go_image_default ]] || fatal "Dockerfile has no 'ARG GO_IMAGE=' default"
go_image=$(docker_name "${GO_IMAGE:-$go_image_default}")

# make_go_image imports a minimal stand-in for the official Go image: the host's Go
# toolchain, a static busybox for RUN's /bin/sh, the host's CA bundle for the module
# proxy, and the official image's environment.
make_go_image() {
	local root=$tmp/go-rootfs goroot busybox
	goroot=$(go env GOROOT)
	busybox=$(command -v busybox || true)
	[[ -x /bin/busybox ]] && busybox=/bin/busybox
	[[ -n $busybox ]] || fatal "busybox not found (apt-get install busybox-static)"
	if ! file_is_static "$busybox"; then
		fatal "$busybox is not statically linked (apt-get install busybox-static)"
	fi

	mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,usr/local,etc/ssl/certs,root,go/bin,go/src,tmp}
	chmod 1777 "$root/tmp"
	chmod 0777 "$root/go"
	cp -a "$goroot" "$root/usr/local/go"
	rm -rf "$root/usr/local/go/test" "$root/usr/local/go/.git"
	cp "$busybox" "$root/bin/busybox"
	local applet
	while read -r applet; do
		case $applet in
		bin/busybox | linuxrc) ;;
		*) [[ -e $root/$applet ]] || ln -s /bin/busybox "$root/$applet" ;;
		esac
	done < <("$busybox" --list-full)
	cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
	printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$root/etc/passwd"
	printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"

	tar -C "$root" --numeric-owner -c . | podman import --quiet \
		--change 'ENV PATH=/usr/local/go/bin:/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
		--change 'ENV GOPATH=/go' \
		--change 'ENV GOTOOLCHAIN=local' \
		--change 'WORKDIR /go' \
		--change 'CMD ["/bin/sh"]' \
		--change "LABEL io.github.looker-rerun.stand-in=\"host Go $(go env GOVERSION), made by scripts/image-test.sh\"" \
		- "$go_image" >/dev/null
	rm -rf "$root"
}

# file_is_static reports whether an executable is statically linked (ldd refuses it).
file_is_static() {
	! ldd "$1" >/dev/null 2>&1
}

if [[ ${REBUILD_GO_IMAGE:-0} == 1 ]] || ! podman image exists "$go_image"; then
	echo "image-test: importing $go_image from the host's Go toolchain ($(go env GOVERSION))"
	make_go_image
else
	echo "image-test: using $go_image already in podman's store (REBUILD_GO_IMAGE=1 to re-import)"
fi

# --- build -------------------------------------------------------------------------------

build_args=(--build-arg "VERSION=$VERSION" --build-arg "REVISION=$REVISION")
[[ -n ${GO_IMAGE:-} ]] && build_args+=(--build-arg "GO_IMAGE=$go_image")
# Module download settings the Dockerfile declares as ARGs: pass the host's, so a build
# behind a proxy or mirror downloads the way `go` on the host does.
while read -r v; do
	val=$(go env "$v" 2>/dev/null || true)
	[[ -n $val ]] && build_args+=(--build-arg "$v=$val")
done < <(sed -n 's/^ARG \(GO[A-Z]*\)$/\1/p' Dockerfile)

echo "image-test: podman build -t $IMAGE (VERSION=$VERSION REVISION=$REVISION)"
build_start=$SECONDS
if podman build --pull=never --network=host --layers -f Dockerfile -t "$IMAGE" \
	"${build_args[@]}" . >"$tmp/build.log" 2>&1; then
	pass "podman build $IMAGE ($((SECONDS - build_start))s)"
else
	show "$tmp/build.log"
	fatal "podman build $IMAGE"
fi

# --- image metadata --------------------------------------------------------------------

size=$(podman image inspect --format '{{.Size}}' "$IMAGE")
echo "image-test: image size $size bytes ($(awk -v s="$size" 'BEGIN { printf "%.2f MB", s / 1e6 }'))"
check "image size $size <= $MAX_IMAGE_BYTES bytes" test "$size" -le "$MAX_IMAGE_BYTES"

inspect() { podman image inspect --format "$1" "$IMAGE"; }
user=$(inspect '{{.Config.User}}')
check "image user is 65532:65532 (got '$user')" test "$user" = 65532:65532
entrypoint=$(inspect '{{json .Config.Entrypoint}}')
check "image entrypoint is exec form [\"/looker-rerun\"] (got $entrypoint)" test "$entrypoint" = '["/looker-rerun"]'
labels=$(inspect '{{json .Labels}}')
# shellcheck disable=SC2016 # $version and $revision are jq variables
check "image OCI labels present, version and revision match" jq -e \
	--arg version "$VERSION" --arg revision "$REVISION" '
	.["org.opencontainers.image.title"] == "looker-rerun"
	and (.["org.opencontainers.image.description"] | length > 0)
	and (.["org.opencontainers.image.source"] | startswith("https://"))
	and .["org.opencontainers.image.version"] == $version
	and .["org.opencontainers.image.revision"] == $revision
	and .["org.opencontainers.image.licenses"] == "Apache-2.0"' <<<"$labels"

# The runtime filesystem: the binary and the CA bundle, nothing else.
cid=$(podman create --name "looker-rerun-imagetest-files-$$" "$IMAGE")
containers+=("looker-rerun-imagetest-files-$$")
podman export "$cid" | tar -t | sed 's#^\./##' | grep -v '/$' | grep -v '^$' | sort >"$tmp/files"
podman cp "$cid:/looker-rerun" "$tmp/looker-rerun.bin"
podman rm --force "$cid" >/dev/null
binary_size=$(stat -c %s "$tmp/looker-rerun.bin")
echo "image-test: binary size $binary_size bytes"
printf 'etc/ssl/certs/ca-certificates.crt\nlooker-rerun\n' >"$tmp/files.want"
if diff -u "$tmp/files.want" "$tmp/files" >"$tmp/files.diff"; then
	pass "image holds only /looker-rerun and the CA bundle"
else
	show "$tmp/files.diff"
	fail "image holds only /looker-rerun and the CA bundle"
fi
if file_is_static "$tmp/looker-rerun.bin"; then
	pass "binary is statically linked"
else
	fail "binary is statically linked"
fi

# --- the stand-in Looker ---------------------------------------------------------------

echo "image-test: starting the stand-in Looker (cmd/lookertest)"
go build -o "$tmp/lookertest" ./cmd/lookertest || fatal "go build ./cmd/lookertest"
"$tmp/lookertest" -addr 127.0.0.1:0 -url-file "$tmp/url" -seed demo >"$tmp/lookertest.log" 2>&1 &
lookertest_pid=$!
url=
for _ in $(seq 1 100); do
	if ! kill -0 "$lookertest_pid" 2>/dev/null; then
		show "$tmp/lookertest.log"
		fatal "lookertest exited before writing its URL"
	fi
	if [[ -s $tmp/url ]]; then
		sleep 0.1 # the file may still be being written
		url=$(tr -d '[:space:]' <"$tmp/url")
		break
	fi
	sleep 0.1
done
[[ $url == http://* ]] || fatal "lookertest wrote no URL to $tmp/url within 10s (got '$url')"
echo "image-test: stand-in Looker at $url"

# run_image NAME ARGS...: podman run the image with a timeout, stdout and stderr to
# $tmp/NAME.out and $tmp/NAME.err; sets rc.
run_image() {
	local name=$1
	shift
	containers+=("looker-rerun-imagetest-$name-$$")
	rc=0
	timeout "$RUN_TIMEOUT" podman run --rm --name "looker-rerun-imagetest-$name-$$" \
		--network=host --read-only --cap-drop=ALL --security-opt=no-new-privileges \
		--memory="$RUN_MEMORY" \
		"$@" >"$tmp/$name.out" 2>"$tmp/$name.err" || rc=$?
	if ((rc >= 124)); then
		echo "image-test: podman run $name exited $rc (timeout or podman error):"
		show "$tmp/$name.err"
	fi
}

secret=demo-secret

# --- happy path: re-runs exactly the failed plans --------------------------------------

xcom=$tmp/xcom
mkdir -p "$xcom"
chmod 0777 "$xcom" # written by uid 65532
# RERUN_RESULT_FILE as the DAGs set it (dags/looker_rerun_common.py).
run_image happy --user 65532:65532 -v "$xcom:/airflow/xcom" \
	-e LOOKERSDK_BASE_URL="$url" -e LOOKERSDK_CLIENT_ID=demo-id -e LOOKERSDK_CLIENT_SECRET="$secret" \
	-e RERUN_RESULT_FILE=/airflow/xcom/return.json \
	"$IMAGE"
if [[ $rc -eq 0 ]]; then
	pass "happy path exits 0"
else
	show "$tmp/happy.err"
	fail "happy path exits 0 (got $rc)"
fi

last_line=$(tail -n1 "$tmp/happy.out")
# Plan ids are strings in Looker's 4.0 API; numbers are accepted too.
if jq -e '
	(.rerun | type == "array") and (.skipped | type == "array") and (.failed | type == "array")
	and ([.rerun[].plan_id | tostring] | sort) == ["101", "105"]
	and all(.rerun[]; .new_plan_id != null)
	and (.failed | length) == 0
	and .dry_run == false' <<<"$last_line" >/dev/null 2>&1; then
	pass "summary on stdout: plans 101 and 105 re-run, none failed, dry_run false"
else
	echo "    stdout last line: $last_line"
	fail "summary on stdout: plans 101 and 105 re-run, none failed, dry_run false"
fi

if [[ -f $xcom/return.json ]] &&
	[[ $(jq -cS . "$xcom/return.json" 2>/dev/null) == "$(jq -cS . <<<"$last_line" 2>/dev/null)" ]]; then
	pass "xcom return.json holds the summary"
else
	echo "    return.json: $(cat "$xcom/return.json" 2>/dev/null || echo '<missing>')"
	fail "xcom return.json holds the summary"
fi

reruns=$(curl -fsS "$url/lookertest/reruns" || true)
if jq -e '. == {"101": 1, "105": 1}' <<<"$reruns" >/dev/null 2>&1; then
	pass "stand-in saw exactly one re-run each of plans 101 and 105"
else
	fail "stand-in saw exactly one re-run each of plans 101 and 105 (got '$reruns')"
fi

if grep -q -F -- "$secret" "$tmp/happy.out" "$tmp/happy.err" "$xcom/return.json" 2>/dev/null; then
	fail "client secret appears in the output"
else
	pass "client secret appears nowhere in the output"
fi

# --- bad settings: exit 2 and say which -------------------------------------------------
# No --user here: the image's own USER must do.

run_image badconfig -e LOOKERSDK_CLIENT_ID=demo-id -e LOOKERSDK_CLIENT_SECRET="$secret" "$IMAGE"
if [[ $rc -eq 2 ]] && grep -q LOOKERSDK_BASE_URL "$tmp/badconfig.err"; then
	pass "without LOOKERSDK_BASE_URL: exit 2, stderr names it"
else
	show "$tmp/badconfig.err"
	fail "without LOOKERSDK_BASE_URL: exit 2, stderr names it (got exit $rc)"
fi

# --- --version -------------------------------------------------------------------------

run_image version "$IMAGE" --version
if [[ $rc -eq 0 ]] && grep -q -F -- "$VERSION" "$tmp/version.out"; then
	pass "--version prints $VERSION ($(head -n1 "$tmp/version.out"))"
else
	show "$tmp/version.out"
	show "$tmp/version.err"
	fail "--version prints $VERSION (got exit $rc)"
fi

# --- the stand-in saw only requests it knows --------------------------------------------
# On SIGTERM lookertest prints each request it did not expect as
# "lookertest: METHOD PATH: why".

kill -TERM "$lookertest_pid"
wait "$lookertest_pid" || true
lookertest_pid=
if grep -E '^lookertest: [A-Z]+ /' "$tmp/lookertest.log" >"$tmp/unexpected"; then
	show "$tmp/unexpected"
	fail "stand-in saw no unexpected requests"
else
	pass "stand-in saw no unexpected requests"
fi

summary
((failed == 0))
