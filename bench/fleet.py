"""Fan-out against the star on the simulated fleet (tests/harness/fleet.sh): the migrate role relays
a 1 GiB image of real files (bench/workload.py) from `src` to N target hosts over shaped links.

    make bench-fleet                                   # N = 4, 8, 12, 1 GiB, 100 Mbit/s: about an hour
    make bench-fleet BENCH_FLEET_ARGS="--quick"        # N = 2, 3, 64 MiB: a smoke run of a few minutes
    make bench-fleet BENCH_FLEET_ARGS="--sizes 4,8 --rate 200mbit"
    make bench-fleet BENCH_FLEET_ARGS="--resume"        # go on with an interrupted run (same options)

The cases run interleaved (star N=4, fan-out N=4, star N=8, ...) on one fleet started at the largest
size; after the fan-out at N = 8 (every host holds v1) come the relay with nothing to do (N = 1
against N = 8) and a delta relay of v2. Writes bench/results/fleet.{json,md,png} (a --quick run:
.cache/bench-fleet/quick/); bench/fleet_report.py judges the targets of issue 14 §3. Nothing else
may use the fleet meanwhile. At the end the fleet runs at its default size and rate again, and the
images built here are gone from every engine.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests/integration"))

import yaml
from bench_venv import run_in_bench_venv
from fleet_report import case_figures, parse_rate, phase_seconds, play_end, slowest_tasks, timeline, transfer_seconds, transfers, write_reports
from run import install_collection, machine_facts
from workload import build_context, build_image, build_version

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
FLEET_SH = REPO / "tests/harness/fleet.sh"
ROOT = Path(os.environ.get("AIRGAP_ENGINES_ROOT", "/var/tmp/airgap-engines"))
DEFAULT_SIZE, DEFAULT_RATE = 4, "100mbit"  # fleet.sh's defaults, restored at the end
TOP_BYTES = 8 << 10  # the top layer that differs between v1 and v2
SLACK = 1 << 20  # target 5: bytes into each host <= changed layers + 1 MiB
OURS = "airgap.docker"
# The full runs: every host gets the same full archive, and fan-out whatever the archive's size.
FULL_VARS = {"migrate_delta": False, "migrate_fanout_min_bytes": 0, "migrate_fanout_seeds": 1, "migrate_fanout_relay": True}

# Records each task's start and each host's result with a timestamp, one JSON line each, and the
# peer fetches' and copies' own figures (bytes, seconds): the runs' timelines (fleet_report.timeline).
CALLBACK = '''
import json, os, time
from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "bench_timeline"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._out = open(os.environ["BENCH_TIMELINE_FILE"], "a")

    def _write(self, **record):
        record["t"] = time.time()
        self._out.write(json.dumps(record, default=str) + "\\n")
        self._out.flush()

    def v2_playbook_on_play_start(self, play):
        self._write(e="play", name=play.get_name())

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._write(e="task", name=task.get_name(), action=task.action)

    def _host(self, result, status):
        self._write(e="host", host=result._host.get_name(), task=result._task.get_name(), status=status)

    def v2_runner_on_ok(self, result):
        self._host(result, "ok")

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._host(result, "failed")

    def v2_runner_on_skipped(self, result):
        self._host(result, "skipped")

    def v2_runner_on_unreachable(self, result):
        self._host(result, "unreachable")

    def _item(self, result, status):
        action = result._task.action or ""
        if action.endswith(("peer_fetch", "push_archive")):
            r = result._result
            self._write(e="item", host=result._host.get_name(), task=result._task.get_name(), action=action, status=status,
                        bytes=r.get("bytes"), seconds=r.get("seconds"))

    def v2_runner_item_on_ok(self, result):
        self._item(result, "ok")

    def v2_runner_item_on_failed(self, result):
        self._item(result, "failed")

    def v2_playbook_on_stats(self, stats):
        self._write(e="end")
'''

REPORT_DUMP = ("{% set ns = namespace(d={}) %}{% for h in groups['all'] %}"
               "{% set ns.d = ns.d | combine({h: hostvars[h].migrate_report | default(none)}) %}{% endfor %}{{ ns.d | to_json }}")


def log(text):
    print("[%s] %s" % (time.strftime("%H:%M:%S"), text), flush=True)


# The fleet ---------------------------------------------------------------------------------


def fleet_sh(*args, env=None, timeout=1800):
    run = subprocess.run([str(FLEET_SH), *args], env=dict(os.environ, **(env or {})), capture_output=True, text=True,
                         timeout=timeout, check=False)
    if run.returncode != 0:
        raise RuntimeError("fleet.sh %s exited %d:\n%s%s" % (" ".join(args), run.returncode, run.stdout[-3000:], run.stderr[-3000:]))
    return run.stdout


def fleet_state():
    """(size, rate, delay, every host up) as `fleet.sh status` reports them."""
    try:
        text = fleet_sh("status", timeout=300)
    except RuntimeError:
        return None, None, None, False
    first = text.splitlines()[0]  # "size 4, rate 100mbit, delay none"
    fields = dict(part.strip().split(" ", 1) for part in first.split(","))
    hosts = [line for line in text.splitlines()[1:] if line.split(":")[0] not in ("switch", "controller", "unreachable")]
    up = bool(hosts) and all(": up on " in line and "namespace airgap-" in line for line in hosts)
    return int(fields["size"]), fields["rate"], "" if fields["delay"] == "none" else fields["delay"], up


def ensure_fleet(size, rate):
    """The fleet running at `size` hosts and `rate`, without delay; True if it had to be (re)started."""
    current = fleet_state()
    if current == (size, rate, "", True):
        log("fleet: %d hosts at %s already running" % (size, rate))
        return False
    log("fleet: starting %d hosts at %s (was: size %s, rate %s, delay %s, all up %s)" % (size, rate, *current))
    fleet_sh("start", env={"AIRGAP_FLEET_SIZE": str(size), "AIRGAP_FLEET_RATE": rate, "AIRGAP_FLEET_DELAY": ""})
    state = fleet_state()
    if state != (size, rate, "", True):
        raise RuntimeError("the fleet did not come up as asked (%d hosts, %s): %s" % (size, rate, state))
    return True


class Engines:
    """The Docker engine of each fleet host, through the Docker SDK (bench venv)."""

    def __init__(self, fleet):
        import docker

        self.docker = docker
        self.clients = {host: docker.APIClient(base_url=info["docker_host"], version="auto", timeout=600)
                        for host, info in fleet.hosts.items()}

    def layers(self, host, ref):
        try:
            return list(self.clients[host].inspect_image(ref)["RootFS"]["Layers"])
        except self.docker.errors.NotFound:
            return None

    def remove(self, host, *refs):
        for ref in refs:
            try:
                self.clients[host].remove_image(ref, force=True)
            except self.docker.errors.NotFound:
                pass
            if self.layers(host, ref) is not None:
                raise RuntimeError("%s still holds %s after removing it" % (host, ref))


# The runs ----------------------------------------------------------------------------------


class Bench:
    def __init__(self, args, venv, work, resume=False):
        from fleet_helper import Fleet

        self.args, self.venv, self.work = args, venv, work
        self.fleet = Fleet()
        self.targets = [h for h in self.fleet.hosts if h != "src"]
        self.engines = Engines(self.fleet)
        self.collections = install_collection(work)
        self.logs = work / "logs"
        if not resume:
            shutil.rmtree(self.logs, ignore_errors=True)
        self.logs.mkdir(parents=True, exist_ok=True)
        callbacks = work / "callback_plugins"
        callbacks.mkdir(exist_ok=True)
        (callbacks / "bench_timeline.py").write_text(CALLBACK)
        self.relay_dir, self.delta_dir = work / "relay", work / "relay-delta"
        self.inventory = self.fleet.inventory(work / "inventory.yml", include=list(self.fleet.hosts))
        self.forks = len(self.fleet.hosts) + 2
        self.env = {"ANSIBLE_COLLECTIONS_PATH": str(self.collections), "ANSIBLE_PIPELINING": "True", "ANSIBLE_FORKS": str(self.forks),
                    "ANSIBLE_CALLBACK_PLUGINS": str(callbacks), "ANSIBLE_CALLBACKS_ENABLED": "bench_timeline",
                    "ANSIBLE_NOCOLOR": "1", "ANSIBLE_RETRY_FILES_ENABLED": "false", "ANSIBLE_LOCALHOST_WARNING": "false",
                    "ANSIBLE_INVENTORY_UNPARSED_WARNING": "false", "XDG_CACHE_HOME": str(work / "xdg-cache")}
        # Logs are numbered in the order of the runs, a resumed run's after the earlier ones'.
        self.count = max((int(p.name.split("-", 1)[0]) for p in self.logs.glob("*.log") if p.name[:2].isdigit()), default=0)

    def reset(self, hosts, refs):
        """None of `hosts` holds any of `refs`, and their staging directories are empty."""
        for host in hosts:
            self.engines.remove(host, *refs)
            self.fleet.clear_staging(host)

    def play(self, label, hosts, image, role_vars, bundle=None):
        """One ansible-playbook run of the role relaying `image` to `hosts` (through the controller's
        relay bundle `bundle`, default self.relay_dir); returns its record."""
        self.count += 1
        name = "%02d-%s" % (self.count, label)
        report, events = self.work / ("%s.reports.json" % name), self.logs / ("%s.timeline.jsonl" % name)
        for path in (report, events):
            path.unlink(missing_ok=True)
        variables = dict({"migrate_source": "src", "migrate_images": [image], "migrate_bundle_dir": str(bundle or self.relay_dir)}, **role_vars)
        playbook = [
            {"name": "migrate", "hosts": ",".join(hosts), "gather_facts": False, "vars": variables,
             "tasks": [{"ansible.builtin.import_role": {"name": OURS + ".migrate"}}]},
            {"name": "collect reports", "hosts": "localhost", "gather_facts": False, "connection": "local",
             "tasks": [{"ansible.builtin.copy": {"content": REPORT_DUMP, "dest": str(report), "mode": "0644"}}]},
        ]
        path = self.work / ("%s.yml" % name)
        path.write_text(yaml.safe_dump(playbook, sort_keys=False))
        env = dict(os.environ, BENCH_TIMELINE_FILE=str(events), **self.env)
        load_before = os.getloadavg()
        log("%s: %d host(s), %s" % (label, len(hosts), ", ".join("%s=%s" % kv for kv in role_vars.items())))
        samples, done = [], threading.Event()
        sampler = threading.Thread(target=sample_load, args=(samples, done), daemon=True)
        sampler.start()
        started = time.time()
        proc = subprocess.run([str(self.venv / "bin/ansible-playbook"), "-i", str(self.inventory), str(path)], env=env,
                              capture_output=True, text=True, check=False, cwd=str(self.work))
        ended = time.time()
        done.set()
        sampler.join()
        (self.logs / ("%s.log" % name)).write_text(proc.stdout + proc.stderr)
        if proc.returncode != 0 or not report.exists():
            raise RuntimeError("%s: the relay failed (rc %d), see %s:\n%s\n%s" % (
                label, proc.returncode, self.logs / ("%s.log" % name), proc.stdout[-5000:], proc.stderr[-2000:]))
        reports = {h: r for h, r in json.loads(report.read_text()).items() if h in hosts}
        recorded = [json.loads(line) for line in events.read_text().splitlines() if line.strip()]
        # The role's play: from the start of ansible-playbook to the start of the report collection's play.
        record = {"label": label, "n": len(hosts), "hosts": list(hosts), "seconds": round(play_end(recorded, ended) - started, 3),
                  "process_seconds": round(ended - started, 3), "slowest_tasks": slowest_tasks(recorded, ended),
                  "load_before": [round(x, 2) for x in load_before], "load_after": [round(x, 2) for x in os.getloadavg()],
                  "load_during": {"mean": round(statistics.mean(samples), 2), "max": round(max(samples), 2)} if samples else None,
                  "other_runs": other_runs(),
                  "timeline": timeline(recorded, started, ended), "transfers": transfers(recorded),
                  "summary": [line.strip().strip('"') for line in proc.stdout.splitlines() if "controller sent" in line],
                  "reports": reports, "log": str(self.logs / ("%s.log" % name))}
        record.update(case_figures(reports))
        log("%s: %.1f s; controller sent %.1f MiB, peers %.1f MiB, %d round(s); phases: %s" % (
            label, record["seconds"], record["controller_bytes"] / 2**20, record["peer_bytes"] / 2**20, record["rounds"],
            ", ".join("%s %.1f" % kv for kv in phase_seconds(record["timeline"]).items())))
        return record

    def expect(self, hosts, image, layers):
        for host in hosts:
            held = self.engines.layers(host, image)
            if held != layers:
                raise RuntimeError("%s holds %s with layers %s, not the source's %s" % (host, image, held, layers))


def other_runs():
    """Test and benchmark runs of others on this machine (pytest, ansible-test, bench/run.py), which
    share its cores with the fleet's engines: their command lines, shortened."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        text = " ".join(a.decode(errors="replace") for a in argv if a)
        if any(marker in text for marker in (" -m pytest", "bin/pytest", "ansible-test", "bench/run.py")):
            found.append(text[:160])
    return sorted(found)


def sample_load(samples, done, every=5.0):
    """The machine's 1-minute load average every few seconds until `done` is set."""
    while not done.wait(every):
        samples.append(os.getloadavg()[0])


def changed_layer_bytes(client, old, new):
    """Bytes of the layers of `new` above those it shares with `old`, as `docker save` writes them."""
    from delta import layer_sizes

    class Source:
        pass

    source = Source()
    source.client = client
    old_layers, new_layers = client.inspect_image(old)["RootFS"]["Layers"], client.inspect_image(new)["RootFS"]["Layers"]
    shared = next((i for i, (a, b) in enumerate(zip(old_layers, new_layers)) if a != b), min(len(old_layers), len(new_layers)))
    return sum(layer_sizes(source, new)[shared:]), len(new_layers) - shared


def resumable(args, work, sizes):
    """The results of an interrupted run of the same settings (work/partial.json), or None."""
    path = Path(work) / "partial.json"
    if not args.resume:
        return None
    if not path.exists():
        raise SystemExit("--resume: no interrupted run to resume (%s does not exist)" % path)
    results = json.loads(path.read_text())
    ran = (results["sizes"], results["image_mib"], results["fleet"]["rate"], results["quick"])
    if ran != (sizes, args.image_mib, args.rate, args.quick):
        raise SystemExit("--resume: the interrupted run had sizes %s, %d MiB, %s, quick %s; run with the same options" % ran)
    return results


def run_bench(args, venv):
    sizes = sorted(int(n) for n in args.sizes.split(","))
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    began = time.time()
    results = resumable(args, work, sizes)
    if results is None:
        results = {"started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "quick": args.quick, "sizes": sizes,
                   "other_runs_start": other_runs(), "image_mib": args.image_mib, "machine": machine_facts(work),
                   "load_start": [round(x, 2) for x in os.getloadavg()], "role_vars": dict(FULL_VARS), "cases": [], "minutes": 0}
    else:
        log("resuming the run started %s: %s done" % (results["started"], ", ".join("%s-n%d" % (c["mode"], c["n"]) for c in results["cases"])))
        results.setdefault("resumed", []).append(time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        results["resumed_after"] = len(results["cases"])
    wanted_size = max(sizes) + 1
    restarted = ensure_fleet(wanted_size, args.rate)
    bench = None
    label = "%dm" % args.image_mib
    base, v1, v2 = ("airgap-bench/fleet-base:%s" % label, "airgap-bench/fleet:%s-v1" % label, "airgap-bench/fleet:%s-v2" % label)
    try:
        bench = Bench(args, venv, work, resume=bool(results.get("resumed")))
        results["forks"] = bench.forks
        results["fleet"] = {"size": len(bench.fleet.hosts), "rate": args.rate, "hosts": {h: i["engine"] for h, i in bench.fleet.hosts.items()}}
        targets = bench.targets
        if len(targets) < max(sizes):
            raise RuntimeError("the fleet has %d targets, %d wanted" % (len(targets), max(sizes)))
        source = bench.engines.clients["src"]
        log("building %s, %s and %s on src (%d MiB of real files; the build cache makes a second run quick)" % (base, v1, v2, args.image_mib))
        context = build_context(work / ("context-%d" % (args.image_mib << 20)), args.image_mib << 20)
        build_image(source, context, base)
        build_version(source, work / "release-1", base, v1, "fleet-1", TOP_BYTES)
        v1_layers = bench.engines.layers("src", v1)
        results["machine"]["playbook"] = str(venv / "bin/ansible-playbook")
        bench.reset(targets, [v1, v2])
        for directory in (bench.relay_dir, bench.delta_dir, work / "xdg-cache"):
            shutil.rmtree(directory, ignore_errors=True)
        bench.fleet.clear_staging("src")

        # The source's archive and the controller's copy, made once: the cases time the delivery.
        prime = bench.play("prime", targets[:1], v1, dict(FULL_VARS, migrate_fanout=False))
        bench.expect(targets[:1], v1, v1_layers)
        archive = next(a for a in json.loads((bench.relay_dir / "manifest.json").read_text())["archives"] if "delta_of" not in a)
        delivery = prime["controller_bytes"]
        if results.get("archive"):  # resumed: the same image, so the same archive as before
            results["prime_resumed"] = prime
            if abs(delivery - results["archive"]["delivery_bytes"]) > results["archive"]["delivery_bytes"] // 100:
                raise RuntimeError("the archive weighs %d bytes now, %d in the interrupted run" % (delivery, results["archive"]["delivery_bytes"]))
        else:
            results["prime"] = prime
            results["archive"] = {"path": archive["path"], "bytes": archive["size"], "delivery_bytes": delivery,
                                  "transfer_seconds": round(transfer_seconds(delivery, parse_rate(args.rate)), 2)}
        delta_n = 8 if 8 in sizes else max(sizes)
        done = {(c["mode"], c["n"]) for c in results["cases"]}
        for n in sizes:
            hosts = targets[:n]
            for mode, fanout in (("star", False), ("fanout", True)):
                if (mode, n) in done:
                    continue
                bench.reset(hosts, [v1, v2])
                record = bench.play("%s-n%d" % (mode, n), hosts, v1, dict(FULL_VARS, migrate_fanout=fanout))
                bench.expect(hosts, v1, v1_layers)
                record["mode"] = mode
                results["cases"].append(record)
                save_partial(results, work)
            if n == delta_n and "noop" not in results:
                results["noop"] = noop_runs(bench, hosts, v1, args.noop_runs)
                save_partial(results, work)
            if n == delta_n and "delta" not in results:
                results["delta"] = delta_run(bench, hosts, base, v1, v2, work)
                save_partial(results, work)
        results["load_end"] = [round(x, 2) for x in os.getloadavg()]
        shared = [c["label"] for c in [*results["cases"], results.get("delta") or {}] if c.get("other_runs")]
        results["load_note"] = ("Other test runs (pytest, ansible-test or bench/run.py) were running on this machine during: %s; their "
                                "timings suffer." % ", ".join(shared) if shared else "No other test run was seen on this machine during the cases.")
        results["minutes"] = round(results.get("minutes", 0) + (time.time() - began) / 60, 1)
        return results
    except BaseException:
        # What the interrupted run took so far, for --resume.
        if results.get("cases"):
            save_partial(dict(results, minutes=round(results.get("minutes", 0) + (time.time() - began) / 60, 1)), work)
        raise
    finally:
        if bench is not None:
            log("removing %s, %s and %s from every engine; emptying the staging directories" % (base, v1, v2))
            for host in bench.fleet.hosts:
                try:
                    bench.reset([host], [v2, v1, base] if host == "src" else [v2, v1])
                except Exception as error:  # an engine stopped meanwhile (the fleet resized by someone else)
                    log("%s: could not remove the images or empty the staging directory: %s" % (host, error))
            for directory in (bench.relay_dir, bench.delta_dir):
                shutil.rmtree(directory, ignore_errors=True)
        if restarted or wanted_size != DEFAULT_SIZE or args.rate != DEFAULT_RATE:
            ensure_fleet(DEFAULT_SIZE, DEFAULT_RATE)


def save_partial(results, work):
    """The results so far, for a run that does not finish (bench/results is written only at the end)."""
    (Path(work) / "partial.json").write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")


def noop_runs(bench, hosts, image, runs):
    """The relay again when every host holds the image: the first host alone and all, interleaved."""
    entry = {"n": len(hosts), "one": {"hosts": hosts[:1], "seconds": [], "phases": []}, "many": {"hosts": hosts, "seconds": [], "phases": []}}
    for index in range(runs):
        for key in ("one", "many"):
            record = bench.play("noop-%s-%d" % (key, index + 1), entry[key]["hosts"], image, dict(FULL_VARS, migrate_fanout=True))
            if record["controller_bytes"] or record["peer_bytes"]:
                raise RuntimeError("a relay with nothing to do moved bytes: %s" % record["summary"])
            entry[key]["seconds"].append(record["seconds"])
            entry[key]["phases"].append(phase_seconds(record["timeline"]))
    for key in ("one", "many"):
        phases = entry[key]["phases"]
        medians = {p: statistics.median(ph.get(p, 0) for ph in phases) for p in phases[0]}
        entry[key]["phases_text"] = ", ".join("%s %.1f s" % kv for kv in medians.items())
    return entry


def delta_run(bench, hosts, base, v1, v2, work):
    """v2 (v1's base + another small top layer) relayed with migrate_delta to hosts that hold v1."""
    source = bench.engines.clients["src"]
    log("building %s on src" % v2)
    build_version(source, work / "release-2", base, v2, "fleet-2", TOP_BYTES)
    # A bundle of its own: a relay bundle lists only the last run's images, and the full cases after
    # this one must find v1's archive on the controller still.
    record = bench.play("delta-n%d" % len(hosts), hosts, v2, {"migrate_delta": True}, bundle=bench.delta_dir)
    bench.expect(hosts, v2, bench.engines.layers("src", v2))
    changed, count = changed_layer_bytes(source, v1, v2)
    record.update(mode="delta", changed_layer_bytes=changed, changed_layers=count, slack_bytes=SLACK,
                  thin={h: r["thin"] for h, r in record["reports"].items()}, fallback={h: r["fallback"] for h, r in record["reports"].items()},
                  thin_hosts=sum(1 for r in record["reports"].values() if r["thin"]),
                  fallback_hosts=sum(1 for r in record["reports"].values() if r["fallback"]))
    return record


def main():
    venv = run_in_bench_venv(__file__)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="4,8,12", help="target host counts N (default 4,8,12); the fleet gets max + 1 hosts")
    parser.add_argument("--image-mib", type=int, default=1024, help="size of the image's files in MiB (default 1024)")
    parser.add_argument("--rate", default=DEFAULT_RATE, help="every link's rate, each way, for fleet.sh (default 100mbit)")
    parser.add_argument("--noop-runs", type=int, default=3, help="runs of the relay with nothing to do, per N (default 3)")
    parser.add_argument("--quick", action="store_true", help="N = 2, 3 and a 64 MiB image: a smoke run")
    parser.add_argument("--resume", action="store_true",
                        help="go on with an interrupted run of the same options (its results so far: <work>/partial.json)")
    parser.add_argument("--output", help="directory for fleet.{json,md,png} (default bench/results; --quick: .cache/bench-fleet/quick)")
    parser.add_argument("--work", default=str(REPO / ".cache/bench-fleet"), help="scratch directory")
    args = parser.parse_args()
    # A SIGTERM (a killed make) still removes the images and restores the fleet (the finally blocks).
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    if args.quick:
        args.sizes, args.image_mib = "2,3", 64
    parse_rate(args.rate)
    output = Path(args.output or (Path(args.work) / "quick" if args.quick else BENCH / "results"))
    log("bench-fleet: sizes %s, %d MiB, %s; results in %s" % (args.sizes, args.image_mib, args.rate, output))
    results = run_bench(args, venv)
    write_reports(results, output)
    (Path(args.work) / "partial.json").unlink(missing_ok=True)  # nothing left to resume
    log("results in %s" % output)
    print((output / "fleet.md").read_text())


if __name__ == "__main__":
    main()
