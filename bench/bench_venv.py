"""The benchmark's own virtualenv (.cache/bench-venv): the comparison tools' Python, with
ansible-core, community.docker, the Docker SDK, zstandard and matplotlib. Standard library only,
so that `python3 bench/bench_venv.py` can build it before the project's virtualenv exists
(tests/harness/bootstrap.sh does, beside its other set-up).
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
VENV = REPO / ".cache/bench-venv"


def bench_venv(path):
    """A virtualenv with the comparison tools: ansible-core with community.docker, the Docker SDK
    and zstandard for our modules, matplotlib for the chart."""
    python = path / "bin/python"
    path.parent.mkdir(parents=True, exist_ok=True)
    # Two may start at once (bootstrap and a benchmark run): one builds, the other waits.
    with open(path.parent / (path.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not python.exists():
            subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
        probe = "import ansible_collections.community.docker, docker, zstandard, matplotlib"
        if subprocess.run([str(python), "-c", probe], capture_output=True, check=False).returncode:
            install_bench_tools(path)
    return path


def install_bench_tools(venv):
    """community.docker as the `ansible` package ships it, without the package's other collections:
    installing all of them unpacks some 700 MB and takes a minute of CPU on every fresh machine."""
    pip = [str(venv / "bin/pip"), "--disable-pip-version-check"]
    with tempfile.TemporaryDirectory() as download:
        subprocess.run([*pip, "download", "-q", "--no-deps", "-d", download, "ansible"], check=True)
        (wheel,) = Path(download).glob("ansible-*.whl")
        with zipfile.ZipFile(wheel) as archive:
            metadata = archive.read(next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))).decode()
            # The ansible-core release this community.docker was shipped (and tested) with.
            core = next(line.split(":", 1)[1].strip() for line in metadata.splitlines() if line.startswith("Requires-Dist: ansible-core"))
            subprocess.run([*pip, "install", "-q", core, "docker>=7", "zstandard", "matplotlib"], check=True)
            site = subprocess.run([str(venv / "bin/python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                  capture_output=True, text=True, check=True).stdout.strip()
            wanted = [n for n in archive.namelist() if n.startswith("ansible_collections/community/docker/")]
            # ansible-core looks for collections in an ansible_collections package on sys.path.
            archive.extractall(site, wanted)


def run_in_bench_venv(script):
    """Go on in the benchmark's own virtualenv (made first if need be): the comparison tools'
    Python, with ansible-core, community.docker, the Docker SDK and matplotlib. Returns its path."""
    venv = bench_venv(VENV)
    if Path(sys.prefix).resolve() != venv.resolve():
        python = str(venv / "bin/python")
        os.execv(python, [python, script, *sys.argv[1:]])
    return venv


if __name__ == "__main__":
    bench_venv(VENV)
