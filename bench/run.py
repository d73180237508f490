"""airgap.docker benchmark: image_archive and container_archive beside the Docker CLI and
community.docker, on both private engines, in interleaved rounds (A B C, B C A, C A B, ...).

    make bench                    # about 1 GB image, 5 rounds after a warm-up, `sync` before every timed step
    make bench BENCH_ARGS="--size 256M --rounds 7"
    make bench BENCH_ARGS="--cases delta"   # only the delta migration (bench/delta.py)
    # two cases, two tools each, paired against each other (what a progress file costs):
    make bench BENCH_ARGS="--engines classic --rounds 7 --output bench/results/progress --only 'cold save,cold load' \
        --tool 'image_archive zstd' --tool 'image_archive zstd, progress_file' \
        --tool 'image_archive from .tar.zst' --tool 'image_archive from .tar.zst, progress_file'"

Writes bench/results/latest.{json,md,png}; a run of only the suite or only the delta cases keeps
the other part's figures from the latest.json already there. The smoke variant (--smoke) runs
every case once on a small image, so the benchmark cannot rot; the test suite runs it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_venv import run_in_bench_venv
from delta import run_delta
from report import write_reports
from tools import Toolbox, run_case
from workload import build_context, build_image

REPO = Path(__file__).resolve().parents[1]
ROOT = Path(os.environ.get("AIRGAP_ENGINES_ROOT", "/var/tmp/airgap-engines"))
# The engines measured (tests/harness/engines.sh); AIRGAP_BENCH_<NAME>_HOST points one at another engine of
# its kind (the smoke test uses the fleet's, to stay off the engines of module tests that run meanwhile).
ENGINES = {name: os.environ.get("AIRGAP_BENCH_%s_HOST" % name.upper(), "unix://%s/run/%s.sock" % (ROOT, name))
           for name in ("classic", "modern", "containerd2")}
# The fleet's source engine (tests/harness/engines.sh): the sender of the delta migration; and the
# engines of the fleet's targets tgt-classic and tgt-modern (fleet.sh), its receivers at role level.
SOURCE = "unix://%s/run/source.sock" % ROOT
FLEET_TARGET_ENGINES = {name: "unix://%s/run/%s.sock" % (ROOT, name) for name in ("fleet-classic", "fleet-modern")}
IMAGE = "airgap-bench/data:1"
OURS = "airgap.docker"
THEIRS = "community.docker"


def parse_size(text):
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    return int(float(text[:-1]) * units[text[-1].upper()]) if text[-1].upper() in units else int(text)


def install_collection(work):
    target = work / "collections"
    shutil.rmtree(target, ignore_errors=True)
    galaxy = Path(sys.executable).parent / "ansible-galaxy"
    subprocess.run([str(galaxy), "collection", "build", "-f", "--output-path", str(work), str(REPO)], check=True, capture_output=True)
    artifact = next(work.glob("airgap-docker-*.tar.gz"))
    subprocess.run([str(galaxy), "collection", "install", "-f", "-p", str(target), str(artifact)], check=True, capture_output=True)
    return target


class Engine:
    def __init__(self, name, host):
        import docker  # from the benchmark's own virtualenv

        self.name, self.host = name, host
        self.client = docker.APIClient(base_url=host, version="auto", timeout=None)

    def docker(self, *args):
        return ["docker", "-H", self.host, *args]

    def remove_image(self, ref):
        subprocess.run(self.docker("rmi", "-f", ref), capture_output=True, check=False)

    def remove_untagged_copies(self, image):
        """Remove the untagged images that share a layer with `image`: earlier builds of it, left
        when a rebuild (after a cold load, the build cache misses) moved the tag. They would keep
        its layers, and every "cold" load would find them already there."""
        import docker  # from the benchmark's own virtualenv

        layers = set(image["RootFS"].get("Layers") or [])
        for summary in self.client.images(filters={"dangling": True}):
            other = self.client.inspect_image(summary["Id"])
            if other["Id"] != image["Id"] and layers & set(other["RootFS"].get("Layers") or []):
                try:
                    self.client.remove_image(other["Id"])
                except docker.errors.APIError as exc:
                    raise RuntimeError("%s keeps layers of the benchmark's image, and cannot be removed: %s" % (other["Id"], exc))

    def facts(self):
        version, info = self.client.version(), self.client.info()
        containerd = any(k == "driver-type" and "snapshotter" in str(v) for k, v in info.get("DriverStatus") or [])
        return {"version": version.get("Version"), "api": version.get("ApiVersion"),
                "storage": "containerd" if containerd else "classic", "driver": info.get("Driver")}


def rm(*paths):
    for path in paths:
        for candidate in (Path(path), Path(str(path) + ".airgap.json")):
            if candidate.exists():
                candidate.unlink()


def module(name, **args):
    return {name: args}


def nothing():
    pass


def playbook(*tasks):
    """A tool run: the module tasks in one ansible-playbook run."""
    def run(box):
        return box.play(list(tasks))
    return run


def command(argv):
    """A tool run: a command line, as a process."""
    def run(box):
        return box.cli(argv)
    return run


def removing(*paths):
    """A preparation: remove outputs (and their sidecars) so that the run is cold."""
    def prepare():
        rm(*paths)
    return prepare


def evict_from_page_cache(path):
    """Written to disk, then dropped from the page cache: the next reader reads it from the disk.
    Only this file's pages go, nothing else of the machine's cache."""
    fd = os.open(str(path), os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def container_cases(engine, files, container):
    """Container export/import, cold (outputs removed first) and warm."""
    host, d = engine.host, engine.docker
    ours = playbook(
        module(OURS + ".container_archive", container=container, path=str(files["c.tar.zst"]), docker_host=host),
        module(OURS + ".container_archive", state="imported", path=str(files["c.tar.zst"]), image="airgap-bench/imported:ours", docker_host=host))
    cli = command(" ".join(d("export", "-o", str(files["c.tar"]), container)) + " && "
                  + " ".join(d("import", str(files["c.tar"]), "airgap-bench/imported:cli")))

    def fresh_outputs():
        rm(files["c.tar"], files["c.tar.zst"])
        engine.remove_image("airgap-bench/imported:cli")
        engine.remove_image("airgap-bench/imported:ours")

    return [
        ("container cold", [("docker export + import", True, fresh_outputs, cli),
                            ("container_archive export + import", False, fresh_outputs, ours)]),
        ("container warm", [("docker export + import", True, nothing, cli),
                            ("container_archive export + import", False, nothing, ours)]),
    ]


def image_cases(engine, files, smoke=False):
    """Each case: (name, [(tool, reference?, prepare, run)]); prepare() runs untimed before each run."""
    host, d = engine.host, engine.docker

    # The same runs with a progress file (issue 15): it must cost nothing measurable.
    def ours_save(path, progress=False):
        return playbook(module(OURS + ".image_archive", images=[IMAGE], path=str(files[path]), docker_host=host,
                               **({"progress_file": str(files["progress"])} if progress else {})))

    def ours_load(path, progress=False):
        return playbook(module(OURS + ".image_archive", path=str(files[path]), state="loaded", docker_host=host,
                               **({"progress_file": str(files["progress"])} if progress else {})))

    def unloading(archive):
        """A cold load's preparation: the engine lacks the image, and the archive is read from the
        disk. The module writes its archives past the page cache and the CLI through it, so
        without this the CLI's loads would read theirs from memory and ours from the disk."""
        def prepare():
            engine.remove_image(IMAGE)
            evict_from_page_cache(files[archive])
        return prepare

    def progress_runs(tool, prepare, run):
        # A measurement only: the smoke run (the test suite's) checks the harness, and leaves them out.
        return [] if smoke else [(tool, False, prepare, run)]

    theirs_save = playbook(module(THEIRS + ".docker_image_export", names=[IMAGE], path=str(files["theirs.tar"]), docker_host=host))
    theirs_load = playbook(module(THEIRS + ".docker_image_load", path=str(files["cli.tar"]), docker_host=host))
    cli_load = command(d("load", "-i", str(files["cli.tar"])))
    return [
        ("cold save", [
            ("docker save -o", True, removing(files["cli.tar"]), command(d("save", "-o", str(files["cli.tar"]), IMAGE))),
            # The CLI does not fsync the archive it writes; the module does, before the rename that
            # makes the archive visible. This row prices that durability on the CLI's side.
            ("docker save -o, then sync FILE", False, removing(files["cli-synced.tar"]),
             command(" ".join(d("save", "-o", str(files["cli-synced.tar"]), IMAGE)) + " && sync " + str(files["cli-synced.tar"]))),
            ("community.docker docker_image_export", False, removing(files["theirs.tar"]), theirs_save),
            ("image_archive none", False, removing(files["ours.tar"]), ours_save("ours.tar")),
            ("image_archive zstd", False, removing(files["ours.tar.zst"]), ours_save("ours.tar.zst")),
        ] + progress_runs("image_archive zstd, progress_file", removing(files["ours.tar.zst"]), ours_save("ours.tar.zst", True))),
        ("warm save", [
            ("community.docker docker_image_export", True, nothing, theirs_save),
            ("image_archive", False, nothing, ours_save("ours.tar.zst")),
        ]),
        ("cold load", [
            ("docker load -i", True, unloading("cli.tar"), cli_load),
            ("community.docker docker_image_load", False, unloading("cli.tar"), theirs_load),
            ("image_archive from .tar", False, unloading("ours.tar"), ours_load("ours.tar")),
            ("image_archive from .tar.zst", False, unloading("ours.tar.zst"), ours_load("ours.tar.zst")),
        ] + progress_runs("image_archive from .tar.zst, progress_file", unloading("ours.tar.zst"), ours_load("ours.tar.zst", True))),
        ("warm load", [
            ("docker load -i", True, nothing, cli_load),
            ("community.docker docker_image_load", False, nothing, theirs_load),
            ("image_archive", False, nothing, ours_load("ours.tar.zst")),
        ]),
    ]


def chosen_cases(cases, only, tools):
    """The cases named in only (all when empty), each with the tools named in tools (all when empty).
    A case whose reference tool is left out is measured against the first tool kept."""
    kept = []
    for case, entries in cases:
        if only and case not in only:
            continue
        entries = [entry for entry in entries if not tools or entry[0] in tools]
        if entries and not any(reference for _name, reference, _p, _r in entries):
            entries = [(entries[0][0], True) + tuple(entries[0][2:])] + entries[1:]
        if entries:
            kept.append((case, entries))
    return kept


def run_cases(box, cases, args, results, engine_name):
    cases = chosen_cases(cases, args.only, args.tool)
    for case, tools in cases:
        print("%s: %s" % (engine_name, case), flush=True)
        # Each tool's preparation sets up its own run, so the order rotates from round to round.
        for entry in run_case(box, tools, args.rounds, args.warmup, rotate=True):
            results["cases"].append(dict(entry, engine=engine_name, case=case))


def playbook_floor(box, runs=3):
    """Median wall time of a playbook whose one task does nothing: the part of every module
    run that is ansible-playbook itself (start-up, inventory, module transfer)."""
    return statistics.median(box.play([{"ansible.builtin.ping": {}}])[0] for _run in range(runs))


def machine_facts(work):
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")), "")
    disk = subprocess.run(["df", "-h", "--output=source,fstype,size,avail", str(work)], capture_output=True, text=True, check=False).stdout
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / (1 << 30), 1),
            "disk": disk.strip().splitlines()[-1] if disk else "", "kernel": platform.release(), "python": platform.python_version()}


def keep_previous(results, path, ran_suite, ran_delta):
    """A run of only the suite or only the delta cases keeps the other part from the previous latest.json."""
    path = Path(path)
    if (ran_suite and ran_delta) or not path.exists():
        return results
    previous = json.loads(path.read_text())
    if ran_suite:
        if previous.get("delta"):
            results["delta"] = previous["delta"]
        return results
    return dict(previous, delta=results["delta"])


def main():
    venv = run_in_bench_venv(__file__)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="1G", help="image size, e.g. 1G or 256M (default 1G)")
    parser.add_argument("--rounds", type=int, default=5, help="recorded rounds per case (default 5)")
    parser.add_argument("--warmup", type=int, default=1, help="unrecorded rounds first (default 1)")
    parser.add_argument("--engines", default="classic,modern,containerd2")
    parser.add_argument("--output", default=str(REPO / "bench/results"), help="directory for latest.{json,md,png}")
    parser.add_argument("--work", default=str(REPO / ".cache/bench"), help="scratch directory (archives, context)")
    parser.add_argument("--smoke", action="store_true", help="24 MiB, one round, no warm-up: checks the harness, not the speed")
    parser.add_argument("--cases", default="all", choices=["all", "suite", "delta"],
                        help="suite: save, load and container cases; delta: delta migration (modules and migrate role); default all")
    parser.add_argument("--only", type=lambda text: [case.strip() for case in text.split(",")], default=[],
                        help="suite cases to run, by name, comma-separated (e.g. 'cold save,cold load'); implies --cases suite")
    parser.add_argument("--tool", action="append", default=[],
                        help="a tool to run, by its full name; repeat for more. Without it every tool runs. A case whose "
                             "reference is left out is measured against the first tool kept")
    args = parser.parse_args()
    if args.only:
        args.cases = "suite"
    ran_suite, ran_delta = args.cases in ("all", "suite"), args.cases in ("all", "delta")
    if args.smoke:
        args.size, args.rounds, args.warmup = "24M", 1, 0
    size = parse_size(args.size)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    box = Toolbox(venv, install_collection(work), work / "plays")
    context = build_context(work / ("context-%d" % size), size)
    floor = playbook_floor(box, runs=1 if args.smoke else 3)  # a smoke run checks no timing
    results = {"size_bytes": size, "rounds": args.rounds, "warmup": args.warmup, "smoke": args.smoke, "rotated": True,
               "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "engines": {}, "cases": [],
               "machine": dict(machine_facts(work), playbook_floor_seconds=round(floor, 3))}
    for name in args.engines.split(",") if ran_suite else ():
        engine = Engine(name, ENGINES[name])
        results["engines"][name] = engine.facts()
        image = build_image(engine.client, context, IMAGE)
        engine.remove_untagged_copies(image)
        results["engines"][name]["image_size"] = image.get("Size")
        container = "airgap-bench-%s" % name
        keys = ("cli.tar", "cli-synced.tar", "theirs.tar", "ours.tar", "ours.tar.zst", "c.tar", "c.tar.zst", "progress")
        files = {key: work / ("%s-%s" % (name, key)) for key in keys}
        try:
            run_cases(box, image_cases(engine, files, args.smoke), args, results, name)
            if chosen_cases(container_cases(engine, files, container), args.only, args.tool):
                engine.remove_untagged_copies(build_image(engine.client, context, IMAGE))  # the cold loads removed it
                # The container exists only now: a container keeps its image, which would make the loads above warm.
                subprocess.run(engine.docker("rm", "-f", container), capture_output=True, check=False)
                subprocess.run(engine.docker("create", "--pull", "never", "--network", "none", "--name", container, IMAGE),
                               check=True, capture_output=True)
                run_cases(box, container_cases(engine, files, container), args, results, name)
            results["engines"][name]["archive_sizes"] = {k: v.stat().st_size for k, v in files.items() if v.exists()}
        finally:
            subprocess.run(engine.docker("rm", "-f", container), capture_output=True, check=False)
            rm(*files.values())
    if ran_delta:
        selected = args.engines.split(",")
        hosts = dict({name: ENGINES[name] for name in selected}, source=SOURCE)
        # The role part relays to the fleet's targets, whose engines must hold v1 as well.
        for name, host in FLEET_TARGET_ENGINES.items():
            if host not in hosts.values():
                hosts[name] = host
        engines = {name: Engine(name, host) for name, host in hosts.items()}
        results["delta"] = run_delta(box, args, work, context, size, engines, selected, floor)
    results = keep_previous(results, Path(args.output) / "latest.json", ran_suite, ran_delta)
    write_reports(results, Path(args.output))
    print("results in %s" % args.output)


if __name__ == "__main__":
    main()
