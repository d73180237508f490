"""How long a relay takes when every host is up to date: the cost of a re-run.

The source is the `source` test engine, the targets are N local-connection hosts spread over the
module engines (classic, modern, containerd2), all already holding the image. The first run
brings them up to date; the figure is the median wall time of the runs after it, with the number
of tasks each target host ran (and, for context, how long the first run took).

    bench/relay_noop.py --hosts 2,8 --runs 3
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid
from pathlib import Path

import docker
import yaml

CHECKOUT = Path(__file__).resolve().parents[1]
SOCKETS = Path(os.environ.get("AIRGAP_ENGINES_RUN", "/var/tmp/airgap-engines/run"))
TARGET_ENGINES = ["classic", "modern", "containerd2"]
RECAP = re.compile(r"^(\S+)\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)\s+skipped=(\d+)", re.M)


def engine_url(name):
    return "unix://%s" % (SOCKETS / ("%s.sock" % name))


def import_tiny_image(ref):
    """An image of one small file, imported on the source engine (nothing is pulled)."""
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as tar:
        payload = ref.encode()
        info = tarfile.TarInfo("marker.txt")
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    client = docker.DockerClient(base_url=engine_url("source"))
    repository, tag = ref.rsplit(":", 1)
    client.api.import_image_from_data(data.getvalue(), repository=repository, tag=tag)
    return client


def write_inventory(work, hosts, ref):
    python = sys.executable
    targets = {
        "t%d" % i: {"ansible_connection": "local", "ansible_python_interpreter": python,
                    "migrate_docker_host": engine_url(TARGET_ENGINES[i % len(TARGET_ENGINES)]),
                    "migrate_staging_dir": str(work / ("t%d" % i))}
        for i in range(hosts)}
    inventory = {"all": {
        "hosts": {"src": {"ansible_connection": "local", "ansible_python_interpreter": python,
                          "migrate_docker_host": engine_url("source"), "migrate_staging_dir": str(work / "src")}},
        "children": {"targets": {"hosts": targets}}}}
    (work / "inventory.yml").write_text(yaml.safe_dump(inventory))
    play = [{"hosts": "targets", "gather_facts": False,
             "vars": {"migrate_source": "src", "migrate_images": [ref], "migrate_bundle_dir": str(work / "bundle")},
             "roles": ["airgap.docker.migrate"]}]
    (work / "relay.yml").write_text(yaml.safe_dump(play))


def play(work, collections):
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(collections), ANSIBLE_FORKS="10",
               ANSIBLE_NOCOLOR="1", ANSIBLE_LOCALHOST_WARNING="false", ANSIBLE_INVENTORY_UNPARSED_WARNING="false")
    started = time.monotonic()
    proc = subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(work / "inventory.yml"),
                           str(work / "relay.yml")], env=env, capture_output=True, text=True, check=False)
    seconds = time.monotonic() - started
    if proc.returncode != 0:
        sys.exit("The relay failed:\n" + proc.stdout[-4000:] + proc.stderr[-2000:])
    recap = {m.group(1): [int(m.group(k)) for k in (2, 3, 6)] for m in RECAP.finditer(proc.stdout)}
    return seconds, recap


def measure(hosts, runs, collections):
    ref = "airgap-bench/noop-%s:1" % uuid.uuid4().hex[:8]
    client = import_tiny_image(ref)
    try:
        with tempfile.TemporaryDirectory(prefix="airgap-relay-noop-") as tmp:
            work = Path(tmp)
            write_inventory(work, hosts, ref)
            first, _recap = play(work, collections)  # brings every host up to date
            times, recap = [], {}
            for _run in range(runs):
                seconds, recap = play(work, collections)
                changed = {host: counts[1] for host, counts in recap.items() if counts[1]}
                if changed:
                    sys.exit("A re-run changed something: %s" % changed)
                times.append(seconds)
            tasks = recap["t0"][0] + recap["t0"][2]
            return {"hosts": hosts, "first_run_s": round(first, 2), "median_s": round(statistics.median(times), 2), "runs": [round(t, 2) for t in times],
                    "tasks_per_target": tasks, "tasks_ok_per_target": recap["t0"][0]}
    finally:
        for name in TARGET_ENGINES + ["source"]:
            engine = docker.DockerClient(base_url=engine_url(name))
            try:
                engine.images.remove(ref, force=True)
            except docker.errors.ImageNotFound:
                pass
        client.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", default="2,8", help="comma-separated target host counts")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--collections", default=str(CHECKOUT / ".cache/lint"),
                        help="a collections path holding airgap.docker (default: the checkout, as make lint links it)")
    args = parser.parse_args()
    link = Path(args.collections) / "ansible_collections/airgap/docker"
    if not link.exists():
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(CHECKOUT)
    results = [measure(int(n), args.runs, args.collections) for n in args.hosts.split(",")]
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
