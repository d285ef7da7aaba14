#!/usr/bin/env bash
# demo.sh: the whole job end to end, without a Looker instance. Builds the
# binary and the stand-in Looker (cmd/lookertest), seeds a morning of failed
# deliveries, runs looker-rerun twice and shows that the second run re-sends
# nothing. Needs only Go.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

tmp=$(mktemp -d)
trap 'kill "$standin" 2>/dev/null || true; rm -rf "$tmp"' EXIT

go build -o "$tmp/looker-rerun" .
go build -o "$tmp/lookertest" ./cmd/lookertest
"$tmp/lookertest" -addr 127.0.0.1:0 -url-file "$tmp/url" -seed demo 2>"$tmp/standin.log" &
standin=$!
for _ in $(seq 50); do [[ -s $tmp/url ]] && break; sleep 0.1; done
[[ -s $tmp/url ]] || { cat "$tmp/standin.log"; echo "demo: the stand-in did not start" >&2; exit 1; }

export LOOKERSDK_BASE_URL=$(cat "$tmp/url") LOOKERSDK_CLIENT_ID=demo-id LOOKERSDK_CLIENT_SECRET=demo-secret
export LOG_FORMAT=console RERUN_RESULT_FILE="$tmp/return.json"

echo "== first run: re-runs what failed in the last 10 hours ($LOOKERSDK_BASE_URL, a stand-in Looker)"
code=0; "$tmp/looker-rerun" || code=$?
echo "== exit code $code"
echo
echo "== second run over the same window, as an Airflow retry would: sends nothing twice"
code2=0; "$tmp/looker-rerun" || code2=$?
echo "== exit code $code2"
echo
echo "== deliveries the stand-in received per plan: $(curl -fsS "$LOOKERSDK_BASE_URL/lookertest/reruns" 2>/dev/null || echo '(curl not installed)')"
exit $((code | code2))
