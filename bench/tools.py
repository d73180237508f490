"""How each tool is run and timed: the Docker CLI as a process, modules as a whole
ansible-playbook run (with the module's own reported time where it reports one)."""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import time
import uuid
from pathlib import Path

import yaml


class Toolbox:
    """Runs CLI commands and single-task playbooks; measures wall time and peak RSS."""

    def __init__(self, bench_venv, collections_path, work):
        self.venv = Path(bench_venv)
        self.collections_path = Path(collections_path)
        self.work = Path(work)
        self.work.mkdir(parents=True, exist_ok=True)
        self.rss_file = self.work / "rss.txt"
        self.interpreter = self.work / "rss-python"
        # The module runs under GNU time, which appends its peak RSS (KiB) and CPU seconds (user,
        # system) to rss_file.
        self.interpreter.write_text('#!/bin/sh\nexec /usr/bin/time -f "%%M %%U %%S" -a -o "%s" "%s" "$@"\n'
                                    % (self.rss_file, self.venv / "bin/python"))
        self.interpreter.chmod(0o755)
        self.last_results = []  # what each task of the last play() registered, in order

    def cli(self, argv):
        """Run a shell command line; returns (seconds, None, None, {"cpu_seconds": its CPU time})."""
        cpu = _children_cpu()
        started = time.monotonic()
        subprocess.run(argv, shell=isinstance(argv, str), check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        return time.monotonic() - started, None, self._no_rss(), {"cpu_seconds": round(_children_cpu() - cpu, 3)}

    def play(self, tasks):
        """Run the module tasks in one playbook; returns (wall seconds, module seconds or None, peak RSS bytes)."""
        token = uuid.uuid4().hex
        results = self.work / ("results-%s.json" % token)
        play_tasks = []
        for index, task in enumerate(tasks):
            play_tasks.append(dict(task, register="r%d" % index, vars={"ansible_python_interpreter": str(self.interpreter)}))
        collect = "{{ [%s] | to_json }}" % ", ".join("r%d" % i for i in range(len(tasks)))
        play_tasks.append({"ansible.builtin.copy": {"content": collect, "dest": str(results), "mode": "0644"}})
        playbook = self.work / ("play-%s.yml" % token)
        playbook.write_text(yaml.safe_dump([{"hosts": "localhost", "gather_facts": False, "tasks": play_tasks}], sort_keys=False))
        env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(self.collections_path), ANSIBLE_LOCALHOST_WARNING="false",
                   ANSIBLE_PYTHON_INTERPRETER=str(self.venv / "bin/python"), ANSIBLE_NOCOLOR="1")
        self.rss_file.write_text("")
        started = time.monotonic()
        proc = subprocess.run([str(self.venv / "bin/ansible-playbook"), "-i", "localhost,", "-c", "local", str(playbook)],
                              env=env, capture_output=True, text=True, check=False)
        seconds = time.monotonic() - started
        if proc.returncode != 0:
            raise RuntimeError("playbook failed:\n%s\n%s" % (proc.stdout[-3000:], proc.stderr[-2000:]))
        registered = json.loads(results.read_text())
        self.last_results = registered
        module_seconds = [r.get("stats", {}).get("seconds") for r in registered]
        module_seconds = sum(module_seconds) if all(s is not None for s in module_seconds) else None
        for path in (results, playbook):
            path.unlink()
        metrics = {"cpu_seconds": self._module_cpu()}
        waits = [r.get("stats", {}).get("engine_wait_seconds") for r in registered]
        if any(wait is not None for wait in waits):
            metrics["engine_wait_seconds"] = sum(wait or 0 for wait in waits)
        return seconds, module_seconds, self._peak_rss(), metrics

    def run_playbook(self, playbook, inventory, extra_env=None):
        """Run a playbook file against an inventory file (the fleet); returns (wall seconds, completed process).
        The playbook's modules run on the managed hosts' own Python, so no peak RSS is measured."""
        env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(self.collections_path), ANSIBLE_LOCALHOST_WARNING="false",
                   ANSIBLE_INVENTORY_UNPARSED_WARNING="false", ANSIBLE_RETRY_FILES_ENABLED="false",
                   ANSIBLE_PYTHON_INTERPRETER=str(self.venv / "bin/python"), ANSIBLE_NOCOLOR="1")
        env.update(extra_env or {})
        started = time.monotonic()
        proc = subprocess.run([str(self.venv / "bin/ansible-playbook"), "-i", str(inventory), str(playbook)],
                              env=env, capture_output=True, text=True, check=False, cwd=str(self.work))
        return time.monotonic() - started, proc

    def _time_lines(self):
        """(peak RSS KiB, user s, system s) of each module run of the last playbook."""
        lines = [line.split() for line in self.rss_file.read_text().splitlines()]
        return [(int(f[0]), float(f[1]), float(f[2])) for f in lines if len(f) == 3 and f[0].isdigit()]

    def _peak_rss(self):
        values = [rss for rss, _user, _system in self._time_lines()]
        return max(values) * 1024 if values else None

    def _module_cpu(self):
        runs = self._time_lines()
        return round(sum(user + system for _rss, user, system in runs), 3) if runs else None

    @staticmethod
    def _no_rss():
        return None


def _children_cpu():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_case(box, tools, rounds, warmup, label="", rotate=False):
    """Interleave the tools round by round; the first `warmup` rounds are not recorded.

    Each tool is (name, reference?, prepare, run): prepare() runs untimed before each run, and
    run(box) returns (seconds, module seconds or None, peak RSS or None[, {metric: value}]).
    `sync` runs before every timed step, so that the writeback of one step's files does not land
    on the next. Each round is printed as it ends, in the order it ran. With `rotate` (for tools
    that do not depend on each other's runs), round r starts with tool r: what one run leaves the
    engine to do in the background (a containerd store deletes a removed image's files after
    `docker rmi` returns) then falls on each tool in turn, not always on the same ones."""
    figures = {name: {"tool": name, "reference": ref, "seconds": [], "module_seconds": [], "peak_rss": [], "metrics": {}}
               for name, ref, _p, _r in tools}
    for round_index in range(warmup + rounds):
        times = []
        start = round_index % len(tools) if rotate else 0
        for name, _ref, prepare, run in tools[start:] + tools[:start]:
            prepare()
            subprocess.run(["sync"], check=True)
            seconds, module_seconds, rss, *extra = run(box)
            times.append("%s %.2f s" % (name, seconds))
            if round_index >= warmup:
                entry = figures[name]
                entry["seconds"].append(round(seconds, 4))
                if module_seconds is not None:
                    entry["module_seconds"].append(round(module_seconds, 4))
                if rss is not None:
                    entry["peak_rss"].append(rss)
                for key, value in (extra[0] if extra else {}).items():
                    if value is not None:
                        entry["metrics"].setdefault(key, []).append(value)
        kind = "warm-up round" if round_index < warmup else "round %d" % (round_index - warmup + 1)
        print("  %s%s: %s" % (label, kind, "; ".join(times)), flush=True)
    # Without a reference tool (a smoke run may leave it out) there are no ratios.
    reference = next((f for f in figures.values() if f["reference"]), {"seconds": []})
    for entry in figures.values():
        runs = entry["seconds"]
        entry.update(min=min(runs), median=statistics.median(runs), max=max(runs),
                     ratios=[round(a / b, 4) for a, b in zip(runs, reference["seconds"])])
        entry["ratio_median"] = statistics.median(entry["ratios"]) if entry["ratios"] else None
        entry["peak_rss"] = max(entry["peak_rss"]) if entry["peak_rss"] else None
        entry["module_median"] = statistics.median(entry["module_seconds"]) if entry["module_seconds"] else None
        if entry["metrics"]:
            entry["metrics_median"] = {key: statistics.median(values) for key, values in entry["metrics"].items()}
        else:
            del entry["metrics"]
    return list(figures.values())
