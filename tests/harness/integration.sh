#!/usr/bin/env bash
# The integration tests as two pytest sessions at once, which share no Docker engine:
#   fleet:   the migrate role and the benchmark smoke test, on the fleet's engines (fleet.sh);
#   modules: the modules, on the classic, modern and containerd2 engines.
# Each prints its own report; the run fails if either does. Arguments go to both sessions.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 2
PY=${PY:-.venv/bin/python}
LOGS=$(mktemp -d /tmp/airgap-integration.XXXXXX)
trap 'rm -rf "$LOGS"' EXIT
run() { "$PY" -m pytest -q --ansible-unit-inject-only -p no:cacheprovider "$@" tests/integration; }

started=$SECONDS
run -m fleet "$@" >"$LOGS/fleet.log" 2>&1 &
fleet=$!
run -m "not fleet" "$@" 2>&1 | tee "$LOGS/modules.log"
modules=${PIPESTATUS[0]}
wait "$fleet"
fleet_status=$?
printf '\n==== fleet session (the role and the benchmark smoke test) ====\n'
cat "$LOGS/fleet.log"
printf '\nintegration: modules exit %d, fleet exit %d, %d s in all\n' "$modules" "$fleet_status" $((SECONDS - started))
[ "$modules" -eq 0 ] && [ "$fleet_status" -eq 0 ]
