#!/usr/bin/env bash
# The integration tests as two pytest sessions at once, which share no Docker engine:
#   fleet:   the migrate role (also on a Podman host, fleet-podman) and the delta benchmark's smoke
#            test, on the fleet's engines (fleet.sh);
#   modules: the modules and the benchmark suite's smoke test, on the classic, modern and
#            containerd2 engines, and the Podman tests on podman and podman-rootless.
# Each prints its own report, with its 25 slowest steps; the run fails if either does. Arguments go
# to both sessions.
#
# Other checks can share the stage (`make test` gives its lint, sanity and unit); their output follows
# the sessions' reports, and the run fails if one fails:
#   NICE_CHECKS  starts at once, at the lowest CPU priority: it runs on what the sessions leave idle
#                (only checks that never time themselves: they may wait long for a core);
#   CHECKS       starts as soon as either session ends, at normal priority, on the core it frees.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 2
PY=${PY:-.venv/bin/python}
NICE_CHECKS=${NICE_CHECKS:-}
CHECKS=${CHECKS:-}
LOGS=$(mktemp -d /tmp/airgap-integration.XXXXXX)
trap 'rm -rf "$LOGS"' EXIT
run() { "$PY" -m pytest -q --ansible-unit-inject-only -p no:cacheprovider --durations=25 "$@" tests/integration; }

# check NAME NICENESS COMMAND: run COMMAND into $LOGS/NAME.log; $LOGS/NAME.times says when it started and ended.
check() {
  local began=$((SECONDS - started))
  nice -n "$2" bash -c "$3" >"$LOGS/$1.log" 2>&1
  local rc=$?
  echo "$began $((SECONDS - started))" >"$LOGS/$1.times"
  return "$rc"
}

report() {
  local name=$1 command=$2 rc=$3 times
  read -r -a times <"$LOGS/$name.times"
  printf '\n==== %s: exit %d, from %d s to %d s ====\n' "$command" "$rc" "${times[0]}" "${times[1]}"
  cat "$LOGS/$name.log"
}

started=$SECONDS
run -m fleet "$@" >"$LOGS/fleet.log" 2>&1 &
fleet=$!
{ run -m "not fleet" "$@" 2>&1 | tee "$LOGS/modules.log"; exit "${PIPESTATUS[0]}"; } &
modules=$!
if [ -n "$NICE_CHECKS" ]; then
  check nice 19 "$NICE_CHECKS" &
  nice_checks=$!
fi
declare -A status=()
if [ -n "$CHECKS" ]; then
  wait -n -p first "$fleet" "$modules"
  status[$first]=$?
  check checks 0 "$CHECKS" &
  checks=$!
fi
for pid in "$modules" "$fleet"; do
  if [ -z "${status[$pid]:-}" ]; then
    wait "$pid"
    status[$pid]=$?
  fi
done
nice_status=0 checks_status=0
[ -z "$NICE_CHECKS" ] || { wait "$nice_checks"; nice_status=$?; }
[ -z "$CHECKS" ] || { wait "$checks"; checks_status=$?; }

printf '\n==== fleet session (the role and the delta benchmark smoke test) ====\n'
cat "$LOGS/fleet.log"
[ -z "$NICE_CHECKS" ] || report nice "$NICE_CHECKS (at the lowest CPU priority, from the start)" "$nice_status"
[ -z "$CHECKS" ] || report checks "$CHECKS (once the first session ended)" "$checks_status"
printf '\nintegration: modules exit %d, fleet exit %d, %d s in all\n' "${status[$modules]}" "${status[$fleet]}" $((SECONDS - started))
[ "${status[$modules]}" -eq 0 ] && [ "${status[$fleet]}" -eq 0 ] && [ "$nice_status" -eq 0 ] && [ "$checks_status" -eq 0 ]
