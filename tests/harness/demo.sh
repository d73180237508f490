#!/usr/bin/env bash
# The README demo: build a small image on the classic engine, then run examples/demo.yml twice.
# The first run saves and loads; the second changes nothing and streams nothing.
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV=${VENV:-.venv}
ROOT=${AIRGAP_ENGINES_ROOT:-/var/tmp/airgap-engines}

collections=.cache/demo-collections
rm -rf "$collections" .cache/demo-build && mkdir -p "$collections" .cache/demo-build
"$VENV/bin/ansible-galaxy" collection build -f --output-path .cache/demo-build . >/dev/null
"$VENV/bin/ansible-galaxy" collection install -f -p "$collections" .cache/demo-build/airgap-docker-*.tar.gz >/dev/null

"$VENV/bin/python" - "$ROOT" <<'PY'
import pathlib, shutil, sys, tempfile
import docker
root = sys.argv[1]
client = docker.APIClient(base_url="unix://%s/run/classic.sock" % root, version="auto")
with tempfile.TemporaryDirectory() as ctx:
    shutil.copy("/bin/busybox", ctx + "/busybox")
    pathlib.Path(ctx, "Dockerfile").write_text(
        "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n"
        "RUN echo 'hello from the other side of the air gap' > /hello.txt\nCMD [\"cat\", \"/hello.txt\"]\n")
    for line in client.build(path=ctx, tag="airgap-demo/hello:1", pull=False, rm=True, decode=True):
        if "error" in line:
            sys.exit(line["error"])
print("built airgap-demo/hello:1 on the classic engine")
PY

export ANSIBLE_COLLECTIONS_PATH=$PWD/$collections ANSIBLE_LOCALHOST_WARNING=false ANSIBLE_PYTHON_INTERPRETER=$PWD/$VENV/bin/python
for run in first second; do
  echo "=== $run run ==="
  "$VENV/bin/ansible-playbook" -i localhost, -c local examples/demo.yml
done
