#!/usr/bin/env bash
# The README demo: build a small image on the classic engine, then run examples/demo.yml twice.
# The first run saves and loads; the second changes nothing and streams nothing. Then the same
# image, built on the simulated fleet's source host, is relayed over SSH to its two targets with
# the migrate role (examples/migrate-relay.yml), twice: the second run sends nothing.
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV=${VENV:-.venv}
ROOT=${AIRGAP_ENGINES_ROOT:-/var/tmp/airgap-engines}

collections=.cache/demo-collections
rm -rf "$collections" .cache/demo-build && mkdir -p "$collections" .cache/demo-build
"$VENV/bin/ansible-galaxy" collection build -f --output-path .cache/demo-build . >/dev/null
"$VENV/bin/ansible-galaxy" collection install -f -p "$collections" .cache/demo-build/airgap-docker-*.tar.gz >/dev/null

build_hello() {
"$VENV/bin/python" - "$ROOT" "$1" <<'PY'
import pathlib, shutil, sys, tempfile
import docker
root, engine = sys.argv[1], sys.argv[2]
client = docker.APIClient(base_url="unix://%s/run/%s.sock" % (root, engine), version="auto")
with tempfile.TemporaryDirectory() as ctx:
    shutil.copy("/bin/busybox", ctx + "/busybox")
    pathlib.Path(ctx, "Dockerfile").write_text(
        "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n"
        "RUN echo 'hello from the other side of the air gap' > /hello.txt\nCMD [\"cat\", \"/hello.txt\"]\n")
    for line in client.build(path=ctx, tag="airgap-demo/hello:1", pull=False, rm=True, decode=True):
        if "error" in line:
            sys.exit(line["error"])
print("built airgap-demo/hello:1 on the %s engine" % engine)
PY
}
build_hello classic

export ANSIBLE_COLLECTIONS_PATH=$PWD/$collections ANSIBLE_LOCALHOST_WARNING=false ANSIBLE_PYTHON_INTERPRETER=$PWD/$VENV/bin/python
for run in first second; do
  echo "=== $run run ==="
  "$VENV/bin/ansible-playbook" -i localhost, -c local examples/demo.yml
done

tests/harness/fleet.sh start
build_hello source
tests/harness/fleet.sh inventory >.cache/demo-build/fleet.yml
for run in first second; do
  echo "=== migrate role, $run run ==="
  "$VENV/bin/ansible-playbook" -i .cache/demo-build/fleet.yml examples/migrate-relay.yml
done
