#!/usr/bin/env bash
# Everything the tests and the demo need on a fresh Debian/Ubuntu machine: system packages,
# the project's virtualenv, the private Docker engines, and the offline pip bootstrap for
# ansible-test. Safe to run again; it only does what is missing.
set -euo pipefail
cd "$(dirname "$0")/../.."
mkdir -p .cache

VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}

if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi

# The engines (Debian packages fetched and unpacked, dockerd's started: network and disk) start
# while pip fills the virtualenv (CPU).
tests/harness/engines.sh start &
engines=$!
# The benchmark's virtualenv (its smoke tests run in the fleet session) on the other core meanwhile:
# some 70 s of pip on a fresh machine that would otherwise lengthen that session.
"$PYTHON" bench/bench_venv.py >.cache/bench-venv.log 2>&1 &
bench_venv=$!
if ! "$VENV/bin/python" -c 'import ansible, docker, zstandard, pytest' 2>/dev/null || \
   [ requirements-dev.txt -nt "$VENV/.installed" ]; then
  "$VENV/bin/pip" install --disable-pip-version-check -q -r requirements-dev.txt
  touch "$VENV/.installed"
fi
wait "$engines" || { echo "bootstrap: the engines did not start" >&2; exit 1; }
wait "$bench_venv" || { echo "bootstrap: the benchmark's virtualenv failed; its log follows" >&2; cat .cache/bench-venv.log >&2; exit 1; }

# ansible-test fetches a pip bootstrap script from the internet; use the offline stand-in.
mkdir -p ~/.ansible/test/cache
cp tests/harness/get_pip_stand_in.py ~/.ansible/test/cache/get_pip_24_2.py

# A Python that an unprivileged user can run, as on a managed host (the project's venv may live
# under /root): used by the tests that run a task through `become` as nobody.
MANAGED_VENV=${AIRGAP_ENGINES_ROOT:-/var/tmp/airgap-engines}/managed-venv
if [ ! -x "$MANAGED_VENV/bin/python" ] || ! "$MANAGED_VENV/bin/python" -c 'import docker, zstandard' 2>/dev/null; then
  /usr/bin/python3 -m venv "$MANAGED_VENV"
  "$MANAGED_VENV/bin/pip" install --disable-pip-version-check -q 'docker>=7' zstandard
  chmod -R a+rX "$MANAGED_VENV"
fi

# The simulated fleet of managed hosts (sshd per host, each with its own engine); after the
# managed venv, which the hosts' Ansible modules run with.
tests/harness/fleet.sh start
