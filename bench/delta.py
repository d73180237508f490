"""Delta migration: an image updated in a small top layer, moved to receivers that hold its previous
version, as a full archive and as a thin one (image_archive's exclude_layers).

v1 and v2 are the benchmark's data image (workload.py) plus one small top layer each, built `FROM`
the same base on the fleet's source engine; each receiver holds v1, loaded from a full archive of
the source, and never v2 when a migration starts.

- Module level: the source engine saves and a bench engine (classic, modern) receives, one playbook
  (or one CLI pipeline) per migration: full archive against inventory + thin save + thin load.
- Role level: the migrate role relays v2 from the fleet host src to tgt-classic and tgt-modern in
  one playbook, with migrate_delta false and true, state reset between runs (v1 stays).
"""

from __future__ import annotations

import io
import json
import shutil
import statistics
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import yaml
from tools import run_case
from workload import build_image, build_version

REPO = Path(__file__).resolve().parents[1]
OURS = "airgap.docker"
THEIRS = "community.docker"
TOP_BYTES = 8 << 10  # the top layer that changes between versions: a few KB
SLACK = 1 << 20  # the target: bytes moved <= changed layers + 1 MiB

MODULE_CASE = "delta migration, modules"
ROLE_CASE = "delta migration, migrate role"
FULL = "image_archive full: save zstd + load"
CLI = "docker save | zstd, zstd -d | docker load"
THEIRS_FULL = "community.docker docker_image_export + docker_image_load"
DELTA = "image_archive delta: inventory + thin save + load"
CUT = "image_archive delta cut from a kept full archive (context)"
ROLE_FULL = "migrate role, migrate_delta false"
ROLE_DELTA = "migrate role, migrate_delta true"
ROLE_KEPT = "migrate role, migrate_delta true, source archive kept (context)"
# The fleet (tests/harness/fleet.sh): the source and the two targets, whose engines are the bench's.
SOURCE_HOST, TARGETS = "src", ("tgt-classic", "tgt-modern")


def rm(*paths):
    for path in paths:
        for candidate in (Path(path), Path(str(path) + ".airgap.json")):
            if candidate.exists():
                candidate.unlink()


def clear_directory(path):
    """Empty a directory, keeping it (as fleet_helper.Fleet.clear_staging does)."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    for entry in path.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def layers(engine, ref):
    try:
        return list(engine.client.inspect_image(ref)["RootFS"]["Layers"])
    except Exception:
        return None


def expect_layers(engine, ref, wanted):
    """The migration delivered ref as the source has it (checked after the timed run)."""
    held = layers(engine, ref)
    if held != wanted:
        raise RuntimeError("%s on the %s engine has layers %s after the migration, not the source's %s" % (ref, engine.name, held, wanted))


class _ChunkReader(io.RawIOBase):
    """A file-like view of an iterator of byte chunks, for tarfile's stream mode."""

    def __init__(self, chunks):
        self._chunks, self._buffer = iter(chunks), b""

    def readable(self):
        return True

    def readinto(self, target):
        while not self._buffer:
            try:
                self._buffer = next(self._chunks)
            except StopIteration:
                return 0
        size = min(len(target), len(self._buffer))
        target[:size], self._buffer = self._buffer[:size], self._buffer[size:]
        return size


def layer_sizes(engine, ref):
    """Bytes of each layer of ref as the engine's `docker save` writes it, bottom first (the
    uncompressed layer tar on the classic store): the size of what a receiver lacking a layer needs."""
    sizes, manifest = {}, None
    with tarfile.open(fileobj=io.BufferedReader(_ChunkReader(engine.client.get_image(ref)), 1 << 20), mode="r|") as archive:
        for member in archive:
            sizes[member.name] = member.size
            if member.name == "manifest.json":
                manifest = json.loads(archive.extractfile(member).read())
    (entry,) = [m for m in manifest if ref in (m.get("RepoTags") or [])]
    return [sizes[name] for name in entry["Layers"]]


def prepare_versions(source, receivers, context, size, work):
    """Build base, v1 and v2 on the source; give every receiver v1 (from a full archive) and not v2."""
    label = "%dm" % max(1, size >> 20)
    base, v1, v2 = "airgap-bench/delta-base:%s" % label, "airgap-bench/delta:%s-v1" % label, "airgap-bench/delta:%s-v2" % label
    build_image(source.client, context, base)
    build_version(source.client, work / "release-1", base, v1, "1", TOP_BYTES)
    image = build_version(source.client, work / "release-2", base, v2, "2", TOP_BYTES)
    old, new = layers(source, v1), layers(source, v2)
    shared = next((i for i, (a, b) in enumerate(zip(old, new)) if a != b), min(len(old), len(new)))
    sizes = layer_sizes(source, v2)
    for engine in receivers.values():
        engine.remove_image(v2)
        if layers(engine, v1) != old:
            print("delta: loading %s into the %s engine (untimed)" % (v1, engine.name), flush=True)
            engine.remove_image(v1)
            pipe = "%s | %s" % (" ".join(source.docker("save", v1)), " ".join(engine.docker("load", "-q")))
            subprocess.run(["bash", "-o", "pipefail", "-c", pipe], check=True, capture_output=True)
        if layers(engine, v1) != old:
            raise RuntimeError("the %s engine does not hold %s with the source's layers after loading it" % (engine.name, v1))
    return {"base": base, "v1": v1, "v2": v2, "v1_layers": old, "v2_layers": new, "layers": len(new), "shared_layers": shared,
            "changed_layers": len(new) - shared, "changed_layer_bytes": sum(sizes[shared:]), "v2_layer_bytes": sum(sizes),
            "top_bytes": TOP_BYTES, "image_size": image.get("Size")}


# Module level --------------------------------------------------------------------------------


def _task(name, **args):
    return {name: args}


def module_tools(source, receiver, versions, files, kept_full, smoke):
    """Migrations of v2 from the source engine to `receiver`, one playbook (or pipeline) each. A smoke
    run leaves out community.docker (its modules run in the suite's cases) and the cut (kept_full)."""
    v2, wanted = versions["v2"], versions["v2_layers"]
    src, dst = source.host, receiver.host

    def resetting(*paths):
        def prepare():
            receiver.remove_image(v2)
            rm(*paths)
        return prepare

    def stats(result, key):
        return (result.get("stats") or {}).get(key)

    def ours_full(box):
        seconds, module_seconds, rss, _cpu = box.play([
            _task(OURS + ".image_archive", images=[v2], path=str(files["full"]), docker_host=src),
            _task(OURS + ".image_archive", path=str(files["full"]), state="loaded", docker_host=dst)])
        save, load = box.last_results
        expect_layers(receiver, v2, wanted)
        return seconds, module_seconds, rss, {
            "archive_bytes": save["archive"]["size"], "bytes_to_engine": stats(load, "bytes_to_engine"),
            "save_module_s": stats(save, "seconds"), "load_module_s": stats(load, "seconds")}

    def cli_full(box):
        pipeline = "%s | zstd -q -T0 -3 -f -o %s && zstd -q -dc %s | %s" % (
            " ".join(source.docker("save", v2)), files["cli"], files["cli"], " ".join(receiver.docker("load", "-q")))
        seconds, module_seconds, rss, _cpu = box.cli(["bash", "-o", "pipefail", "-c", pipeline])
        expect_layers(receiver, v2, wanted)
        return seconds, module_seconds, rss, {"archive_bytes": files["cli"].stat().st_size}

    def theirs_full(box):
        seconds, module_seconds, rss, _cpu = box.play([
            _task(THEIRS + ".docker_image_export", names=[v2], path=str(files["theirs"]), docker_host=src),
            _task(THEIRS + ".docker_image_load", path=str(files["theirs"]), docker_host=dst)])
        expect_layers(receiver, v2, wanted)
        return seconds, module_seconds, rss, {"archive_bytes": files["theirs"].stat().st_size}

    def thin(path, **save_args):
        def run(box):
            seconds, module_seconds, rss, _cpu = box.play([
                _task(OURS + ".image_info", inventory=True, docker_host=dst),
                _task(OURS + ".image_archive", images=[v2], path=str(path), exclude_layers="{{ r0.inventory.layers }}", **save_args),
                _task(OURS + ".image_archive", path=str(path), state="loaded", docker_host=dst)])
            info, save, load = box.last_results
            expect_layers(receiver, v2, wanted)
            (image,) = save["images"]
            return seconds, module_seconds, rss, {
                "archive_bytes": save["archive"]["size"], "bytes_to_engine": stats(load, "bytes_to_engine"),
                "bytes_from_engine": stats(save, "bytes_from_engine"), "archive_bytes_read": stats(save, "archive_bytes_read"),
                "omitted_layers": image.get("omitted_layers"), "carried_layer_bytes": image.get("size"),
                "inventory_layers": len(info["inventory"]["layers"]), "inventory_module_s": stats(info, "seconds"),
                "save_module_s": stats(save, "seconds"), "load_module_s": stats(load, "seconds")}
        return run

    listed = [(FULL, True, resetting(files["full"]), ours_full), (CLI, False, resetting(files["cli"]), cli_full)]
    if not smoke:
        listed.append((THEIRS_FULL, False, resetting(files["theirs"]), theirs_full))
    listed.append((DELTA, False, resetting(files["thin"]), thin(files["thin"], docker_host=src)))
    if not smoke:
        # The full archive exists beforehand: what a thin archive costs without the save of the whole image.
        listed.append((CUT, False, resetting(files["cut"]), thin(files["cut"], from_archive=str(kept_full))))
    return listed


# Role level ----------------------------------------------------------------------------------


def load_fleet():
    sys.path.insert(0, str(REPO / "tests/integration"))
    from fleet_helper import Fleet

    return Fleet()


class Relay:
    """The migrate role on the fleet: src -> tgt-classic and tgt-modern, one playbook per migration.

    Each host stages archives in its own directory under the bench's work directory (not the
    fleet's default staging directory, which the integration tests empty while they run); the
    controller's relay bundle lives there too. Between runs: v2 leaves the targets, the bundle and
    every staging directory are emptied, v1 stays."""

    def __init__(self, box, work, versions, receivers):
        self.box, self.versions, self.work = box, versions, Path(work)
        self.fleet = load_fleet()
        self.engines = {host: next(e for e in receivers.values() if e.host == self.fleet.hosts[host]["docker_host"]) for host in TARGETS}
        self.relay = self.work / "relay"
        self.staging = {host: self.work / "staging" / host for host in (SOURCE_HOST, *TARGETS)}
        self.report = self.work / "reports.json"
        self.env = {"ANSIBLE_PIPELINING": "True", "XDG_CACHE_HOME": str(self.work / "xdg-cache")}
        self.work.mkdir(parents=True, exist_ok=True)
        self.inventory = self.fleet.inventory(self.work / "inventory.yml", include=[SOURCE_HOST, *TARGETS])
        data = yaml.safe_load(self.inventory.read_text())
        for name, hostvars in data["all"]["children"]["fleet"]["hosts"].items():
            hostvars["migrate_staging_dir"] = str(self.staging[name])
        self.inventory.write_text(yaml.safe_dump(data, sort_keys=False, width=1000))
        self.playbooks = {delta: self._playbook(delta) for delta in (False, True)}
        floor = [{"hosts": "fleet", "gather_facts": False, "tasks": [{"ansible.builtin.ping": {}}]}]
        self.floor_playbook = self.work / "floor.yml"
        self.floor_playbook.write_text(yaml.safe_dump(floor, sort_keys=False))

    def _playbook(self, delta):
        role = {"ansible.builtin.import_role": {"name": OURS + ".migrate"}}
        role_vars = {"migrate_source": SOURCE_HOST, "migrate_images": [self.versions["v2"]], "migrate_bundle_dir": str(self.relay),
                     "migrate_delta": delta}
        dump = ("{% set ns = namespace(d={}) %}{% for h in groups['all'] %}"
                "{% set ns.d = ns.d | combine({h: hostvars[h].migrate_report | default(none)}) %}{% endfor %}{{ ns.d | to_json }}")
        playbook = [
            {"name": "migrate", "hosts": ",".join(TARGETS), "gather_facts": False, "vars": role_vars, "tasks": [role]},
            {"name": "collect reports", "hosts": "localhost", "gather_facts": False, "connection": "local",
             "tasks": [{"ansible.builtin.copy": {"content": dump, "dest": str(self.report), "mode": "0644"}}]},
        ]
        path = self.work / ("migrate-delta-%s.yml" % str(delta).lower())
        path.write_text(yaml.safe_dump(playbook, sort_keys=False))
        return path

    def reset(self, keep_source=False):
        for host in TARGETS:
            self.engines[host].remove_image(self.versions["v2"])
        shutil.rmtree(self.relay, ignore_errors=True)
        shutil.rmtree(self.work / "xdg-cache", ignore_errors=True)
        for host, path in self.staging.items():
            if not (keep_source and host == SOURCE_HOST):
                clear_directory(path)

    def migrate(self, delta):
        """One run of the role; returns (seconds, {target: migrate_report})."""
        rm(self.report)
        seconds, proc = self.box.run_playbook(self.playbooks[delta], self.inventory, self.env)
        if proc.returncode != 0 or not self.report.exists():
            raise RuntimeError("the migrate role failed (rc %d):\n%s\n%s" % (proc.returncode, proc.stdout[-5000:], proc.stderr[-2000:]))
        reports = json.loads(self.report.read_text())
        for host in TARGETS:
            expect_layers(self.engines[host], self.versions["v2"], self.versions["v2_layers"])
        return seconds, {host: reports[host] for host in TARGETS}

    def tool(self, delta):
        def run(_box):
            seconds, reports = self.migrate(delta)
            metrics = {}
            for host, report in reports.items():
                metrics["bytes_sent %s" % host] = int(report["bytes_sent"])
                metrics["bytes_full %s" % host] = int(report["bytes_full"])
                metrics["thin %s" % host] = len(report["thin"])
                metrics["fallback %s" % host] = len(report["fallback"])
            return seconds, None, None, metrics
        return run

    def tools(self, smoke):
        """Full and delta, interleaved; a smoke run (which checks the harness, not the speed) runs the
        delta only: its migrate_report still says what the full archives weigh (bytes_full)."""
        if smoke:
            return [(ROLE_DELTA, False, self.reset, self.tool(True))]
        # ROLE_KEPT right after ROLE_DELTA, whose source archive of v2 stays on src: the save is skipped.
        return [(ROLE_FULL, True, self.reset, self.tool(False)), (ROLE_DELTA, False, self.reset, self.tool(True)),
                (ROLE_KEPT, False, lambda: self.reset(keep_source=True), self.tool(True))]

    def floor(self, runs):
        """An ansible-playbook run that pings the three fleet hosts: start-up, inventory, ssh."""
        times = []
        for _run in range(runs):
            seconds, proc = self.box.run_playbook(self.floor_playbook, self.inventory, self.env)
            if proc.returncode != 0:
                raise RuntimeError("the fleet does not answer (tests/harness/fleet.sh start):\n%s" % proc.stdout[-3000:])
            times.append(seconds)
        return statistics.median(times)

    def up_to_date(self, runs):
        """The role when every target holds v2 already and the source's archive is current: its fixed cost."""
        times = []
        for _run in range(runs):
            seconds, reports = self.migrate(True)
            if any(int(r["bytes_sent"]) for r in reports.values()):
                raise RuntimeError("an up-to-date run of the role sent bytes: %s" % reports)
            times.append(seconds)
        return statistics.median(times)


# The whole delta benchmark -------------------------------------------------------------------


def run_delta(box, args, work, context, size, engines, selected, playbook_floor):
    """Both levels; returns the `delta` section of the results. `engines`: the source and every
    receiver (those of the module level, `selected`, and those of the fleet's targets)."""
    source = engines["source"]
    receivers = {name: engine for name, engine in engines.items() if name != "source"}
    work = Path(work) / "delta"
    work.mkdir(parents=True, exist_ok=True)
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    print("delta: building v1 and v2 on the source engine", flush=True)
    versions = prepare_versions(source, receivers, context, size, work)
    kept_full = None if args.smoke else work / "kept-v2.tar.zst"
    if kept_full:
        box.play([_task(OURS + ".image_archive", images=[versions["v2"]], path=str(kept_full), docker_host=source.host)])
    section = {"size_bytes": size, "rounds": args.rounds, "warmup": args.warmup, "smoke": args.smoke, "started": started,
               "source": dict(source.facts(), host=SOURCE_HOST), "receivers": {n: e.facts() for n, e in receivers.items()},
               "versions": {k: v for k, v in versions.items() if k not in ("v1_layers", "v2_layers")},
               "target": {"slack_bytes": SLACK, "speedup": 10.0}, "module": [], "role": [], "floors": {}}
    for name in selected:
        receiver = receivers[name]
        files = {key: work / ("%s-v2-%s" % (name, suffix)) for key, suffix in (
            ("full", "full.tar.zst"), ("cli", "cli.tar.zst"), ("theirs", "theirs.tar"), ("thin", "thin.tar.zst"), ("cut", "cut.tar.zst"))}
        print("%s: %s" % (name, MODULE_CASE), flush=True)
        try:
            for entry in run_case(box, module_tools(source, receiver, versions, files, kept_full, args.smoke), args.rounds, args.warmup):
                section["module"].append(dict(entry, engine=name, case=MODULE_CASE))
        finally:
            rm(*files.values())
            receiver.remove_image(versions["v2"])
    if kept_full:
        rm(kept_full)
    relay = Relay(box, work / "fleet", versions, receivers)
    print("fleet: %s" % ROLE_CASE, flush=True)
    section["floors"]["playbook_seconds"] = round(playbook_floor, 3)
    section["floors"]["fleet_playbook_seconds"] = round(relay.floor(1 if args.smoke else 3), 3)
    try:
        for entry in run_case(box, relay.tools(args.smoke), args.rounds, args.warmup):
            section["role"].append(dict(entry, engine="fleet", case=ROLE_CASE))
        if not args.smoke:
            section["floors"]["role_up_to_date_seconds"] = round(relay.up_to_date(2), 3)
    finally:
        relay.reset()
    return section
