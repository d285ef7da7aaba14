#!/usr/bin/env bash
# dag-test.sh: test the Airflow DAGs in dags/ with the pinned Airflow 3.3 and providers.
#
# Creates .venv-dags/ in the repo root from requirements-dags.txt when it is missing or
# the requirements changed since it was made, then runs pytest on tests/dags/. Extra
# arguments go to pytest (e.g. scripts/dag-test.sh -k render -v).
#
# The end-to-end tests run against the stand-in Looker: tests/dags/test_e2e_podman.py
# plays the rendered pod with `podman kube play`; tests/dags/test_e2e_{docker,guards,
# deadline}.py have Airflow (`airflow dags test`, SQLite in a temporary AIRFLOW_HOME) run
# the DockerOperator DAG against `podman system service` (part of the podman package):
# a normal run, the refusals before anything runs, a run without a logical date, a
# check over several instances, a run stopped at its deadline. They need podman
# (scripts/podman-setup.sh), the image (scripts/image-test.sh builds IMAGE, default
# looker-rerun:test) and Go. Missing any of them fails the tests. DAG_E2E=0 skips them.
#
# Settings (environment):
#   PYTHON    interpreter for the venv (python3; the pins are resolved for 3.11)
#   IMAGE     image the end-to-end test runs (looker-rerun:test)
#   DAG_E2E   0 skips the end-to-end tests
#
# Exits non-zero if anything fails, including when pytest collects no tests.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

PYTHON=${PYTHON:-python3}
venv=.venv-dags
requirements=requirements-dags.txt
stamp=$venv/.requirements.sha256

command -v "$PYTHON" >/dev/null || {
	echo "dag-test.sh: $PYTHON not found" >&2
	exit 1
}

want=$(sha256sum "$requirements" | cut -d' ' -f1)
if [[ ! -x $venv/bin/python || ! -f $stamp || $(<"$stamp") != "$want" ]]; then
	# Debian's python3 has no ensurepip without python3-venv; a fresh CI machine runs this
	# as root, so install it there.
	if ! "$PYTHON" -c 'import ensurepip, venv' 2>/dev/null; then
		if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
			pyver=$("$PYTHON" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
			echo "dag-test.sh: installing python$pyver-venv"
			export DEBIAN_FRONTEND=noninteractive
			apt-get update -qq
			apt-get install -y -qq --no-install-recommends "python$pyver-venv" >/dev/null ||
				apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
		else
			echo "dag-test.sh: $PYTHON cannot create a venv (apt-get install python3-venv)" >&2
			exit 1
		fi
	fi
	echo "dag-test.sh: creating $venv from $requirements ($("$PYTHON" --version))"
	rm -rf "$venv"
	"$PYTHON" -m venv "$venv"
	"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input --upgrade pip
	start=$SECONDS
	"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input -r "$requirements"
	"$venv/bin/python" -m pip check
	echo "$want" >"$stamp"
	echo "dag-test.sh: installed in $((SECONDS - start))s"
fi

"$venv/bin/python" -c 'import airflow, sys; print(f"dag-test.sh: Airflow {airflow.__version__}, Python {sys.version.split()[0]}")'

rc=0
# No cache directory in the repo; -rs lists why anything was skipped.
"$venv/bin/python" -m pytest -p no:cacheprovider -rs tests/dags "$@" || rc=$?
case $rc in
0) ;;
5)
	echo "dag-test.sh: FAIL: pytest collected no tests" >&2
	exit 1
	;;
*)
	echo "dag-test.sh: FAIL: pytest exited $rc" >&2
	;;
esac
exit "$rc"
