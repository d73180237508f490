"""The fleet benchmark's report (bench/fleet.py): each run's timeline from its task events, the
targets of issue 14 §3 with their verdicts, a Markdown page and a chart.

Pure functions of the raw results (bench/results/fleet.json), so that the report can be written
again from a JSON file and the logic is unit-tested (tests/unit/bench/test_fleet_report.py).
"""

from __future__ import annotations

import json
import re
import statistics
from pathlib import Path

from report import write_files

MIB = 1 << 20

# Phases of a run of the migrate role, from the names of its tasks (roles/migrate/tasks).
STARTUP = "start-up"
PREPARE = "prepare"
SAVE = "save and cut on the source"
FETCH = "source to controller"
STAR = "controller to hosts"
FILL = "controller fills in"
LOAD = "load"
WRAP = "after the transfers"
FANOUT_SETUP = "fan-out set-up"
FINISH = "verify and report"
TRANSFERS = (STAR, FILL)
ROUND = re.compile(r"round (\d+)")


def seed_phase():
    return round_phase(0)


def round_phase(number):
    return "round %d" % number + (" (seeds)" if number == 0 else "")


def is_round(phase):
    return phase.startswith("round ")


def _task_name(name):
    """The task's own name, without the role's prefix ("airgap.docker.migrate : ")."""
    return (name or "").split(" : ", 1)[-1]


def phase_of(name, ran, seen_transfer, seen_load, rounds_so_far):
    """The phase a task starts, from its name, whether any host ran it (`ran`: not only skipped) and
    what ran before it. rounds_so_far: how many 'who passes what to whom' tasks started before this
    one (for names left untemplated). A task no host ran belongs to the phase around it."""
    task = _task_name(name)
    if task.startswith("Source |") or (ran and task.startswith("Cut |")):
        return SAVE
    if task.startswith("Fetch |"):
        return FETCH
    if ran and task.startswith("Deliver | copy the archives this host lacks"):
        return STAR
    if ran and task.startswith("Fan-out | round 0"):
        return seed_phase()
    if task.startswith(("Fan-out | who passes what to whom", "Fan-out | receive from a peer")):
        match = ROUND.search(task)
        if match:
            return round_phase(int(match.group(1)))
        # An untemplated name: the planning task opens the next round, the fetch stays in it.
        return round_phase(rounds_so_far + (1 if task.startswith("Fan-out | who passes") else 0))
    if ran and task.startswith("Fan-out | the controller sends what is still missing"):
        return FILL
    if ran and task.startswith(("Deliver | load", "Deliver | import")):
        return LOAD
    if seen_load:
        return FINISH
    if seen_transfer:
        return WRAP
    if task.startswith(("Fan-out |", "Deliver | pass the archives on")):
        return FANOUT_SETUP
    return PREPARE


def _runs(events):
    """The events of the role's play: everything before the report collection's play starts (the
    benchmark's own play, not the role's), and when that play started (None without it)."""
    plays = [i for i, e in enumerate(events) if e.get("e") == "play"]
    if len(plays) > 1:
        return events[:plays[1]], events[plays[1]]["t"]
    return events, None


def _tasks(events):
    """[(task event, ran)]: ran is true when a host ran the task (ok, failed, unreachable), false
    when every host skipped it."""
    tasks, current = [], None
    for event in events:
        if event.get("e") == "task":
            current = [event, False]
            tasks.append(current)
        elif event.get("e") == "host" and current is not None and event.get("task") == current[0]["name"]:
            current[1] = current[1] or event.get("status") in ("ok", "failed", "unreachable")
    return [tuple(task) for task in tasks]


def play_end(events, ended):
    """When the role's play ended: the start of the report collection's play, else the process's end."""
    cut = _runs(events)[1]
    return cut if cut is not None else ended


def timeline(events, started, ended):
    """[{phase, start, seconds}] of the role's play in one ansible-playbook run, in order, from the
    callback's records ("task": name, t; "host": host, task, status); `started`/`ended`: the
    process's own start and end (epoch seconds). The play ends where the report collection's
    play starts. Consecutive tasks of the same phase make one segment; a task lasts until the
    next one starts."""
    events, cut = _runs(events)
    ended = cut if cut is not None else ended
    tasks = _tasks(events)
    segments = []
    seen_transfer = seen_load = False
    planned = 0
    if tasks:
        segments.append({"phase": STARTUP, "start": 0.0, "end": tasks[0][0]["t"] - started})
    for task, ran in tasks:
        phase = phase_of(task["name"], ran, seen_transfer, seen_load, planned)
        if _task_name(task["name"]).startswith("Fan-out | who passes what to whom"):
            planned += 1
        seen_transfer = seen_transfer or phase in TRANSFERS or is_round(phase)
        seen_load = seen_load or phase == LOAD
        offset = task["t"] - started
        if segments:
            segments[-1]["end"] = offset
        if segments and segments[-1]["phase"] == phase:
            continue
        segments.append({"phase": phase, "start": offset, "end": None})
    if segments:
        segments[-1]["end"] = ended - started
    return [{"phase": s["phase"], "start": round(s["start"], 3), "seconds": round(max(0.0, s["end"] - s["start"]), 3)} for s in segments]


def slowest_tasks(events, ended, count=10):
    """[[task name, seconds]] of the role's play, the slowest first (a task's time summed over the
    times it starts: the rounds' tasks once per round)."""
    events, cut = _runs(events)
    ended = cut if cut is not None else ended
    tasks = [event for event, _ran in _tasks(events)]
    totals = {}
    for task, after in zip(tasks, [*tasks[1:], None]):
        seconds = (after["t"] if after else ended) - task["t"]
        name = _task_name(task["name"])
        totals[name] = totals.get(name, 0.0) + seconds
    return [[name, round(seconds, 2)] for name, seconds in sorted(totals.items(), key=lambda kv: -kv[1])[:count]]


def phase_seconds(segments):
    """{phase: seconds}, phases that occur more than once summed, in the order they first occur."""
    totals = {}
    for segment in segments:
        totals[segment["phase"]] = round(totals.get(segment["phase"], 0.0) + segment["seconds"], 3)
    return totals


def transfers(events):
    """Per round: the peer fetches' own figures ("item" records of peer_fetch: round, bytes, seconds)."""
    rounds = {}
    for event in events:
        if event.get("e") == "item" and event.get("action", "").endswith("peer_fetch") and event.get("seconds") is not None:
            match = ROUND.search(event.get("task") or "")
            number = int(match.group(1)) if match else None
            rounds.setdefault(number, []).append({"host": event["host"], "bytes": event.get("bytes"), "seconds": event["seconds"]})
    return rounds


def rounds_of(reports):
    """The number of rounds of a fan-out (round 0 included), from the hosts' migrate_report sources."""
    numbers = [s["round"] for r in reports.values() if r for s in r.get("sources") or [] if s.get("round") is not None]
    return max(numbers) + 1 if numbers else 0


def case_figures(reports):
    """Controller egress, what the hosts passed on and what each host took in, from the migrate_reports."""
    into = {h: int(r["bytes_sent"]) + int(r.get("bytes_from_peers") or 0) for h, r in reports.items() if r}
    return {"controller_bytes": sum(int(r["bytes_sent"]) for r in reports.values() if r),
            "peer_bytes": sum(int(r.get("bytes_from_peers") or 0) for r in reports.values() if r),
            "rounds": rounds_of(reports), "bytes_into": into}


def transfer_seconds(size_bytes, rate_bits):
    """How long one copy of size_bytes takes at the link's nominal rate (bit/s)."""
    return size_bytes * 8 / rate_bits


def parse_rate(text):
    match = re.fullmatch(r"([0-9.]+)(bit|kbit|mbit|gbit)", text.strip().lower())
    if not match:
        raise ValueError("a rate is a number and bit, kbit, mbit or gbit (100mbit), not %r" % text)
    return float(match.group(1)) * {"bit": 1, "kbit": 1e3, "mbit": 1e6, "gbit": 1e9}[match.group(2)]


def _case(results, mode, n):
    return next((c for c in results["cases"] if c["mode"] == mode and c["n"] == n), None)


def _pick(sizes, wanted):
    """The size a target names (8) when it was run, else the largest one run."""
    return wanted if wanted in sizes else max(sizes)


def _phases_text(case):
    phases = phase_seconds(case["timeline"])
    return ", ".join("%s %.1f s" % (p, s) for p, s in phases.items() if s >= 0.05)


def _mib(value):
    return "%.1f MiB" % (value / MIB)


def targets(results):
    """[{id, target, measured, met, note}] for the five targets, from the raw results."""
    sizes = sorted({c["n"] for c in results["cases"]})
    unit = results["archive"]["delivery_bytes"]
    ideal = results["archive"]["transfer_seconds"]
    rows = []

    # 1. At N = 8, fan-out wall time <= 0.5 x star's.
    n = _pick(sizes, 8)
    star, fan = _case(results, "star", n), _case(results, "fanout", n)
    if star and fan:
        ratio = fan["seconds"] / star["seconds"]
        note = ""
        if ratio > 0.5:
            note = ("0.5x would be %.1f s. Fan-out: %s. Star: %s." % (0.5 * star["seconds"], _phases_text(fan), _phases_text(star)))
            moving = [_transfer_time(c) for c in (fan, star)]
            loads = [phase_seconds(c["timeline"]).get(LOAD, 0.0) for c in (fan, star)]
            note += (" The copies alone (controller to hosts, or the seeds and rounds): fan-out %.1f s, star %.1f s = %.2fx. The loads "
                     "(%d engines loading at once on this machine's %s cores): fan-out %.1f s, star %.1f s." % (
                         moving[0], moving[1], moving[0] / moving[1] if moving[1] else 0, n, results["machine"]["cores"], *loads))
            alone = phase_seconds(results["prime"]["timeline"]).get(LOAD) if results.get("prime", {}).get("timeline") else None
            if alone:
                own = [case["seconds"] - load + alone for case, load in zip((fan, star), loads)]
                note += (" One engine alone loads the archive in %.1f s (the untimed first relay), as each host of a real fleet would "
                         "on its own cores; with that load, fan-out would take about %.1f s and the star %.1f s (%.2fx)." % (
                             alone, own[0], own[1], own[0] / own[1]))
        rows.append({"id": 1, "target": "N = %d: fan-out wall time <= 0.5 x the star's" % n,
                     "measured": "%.1f s / %.1f s = %.2fx" % (fan["seconds"], star["seconds"], ratio), "met": ratio <= 0.5, "note": note})

    # 2. From N = 4 to N = 12, fan-out adds at most 2 rounds of one transfer each.
    low, high = 4 if 4 in sizes else min(sizes), _pick(sizes, 12)
    small, large = _case(results, "fanout", low), _case(results, "fanout", high)
    if small and large and low != high:
        added = large["rounds"] - small["rounds"]
        # One peer round at the smallest N that has one: a round of one transfer, before any growth.
        with_rounds = [c for c in sorted(fans_by_n(results), key=lambda c: c["n"]) if _median_round_seconds(c) is not None]
        reference = with_rounds[0] if with_rounds else small
        one_round = _median_round_seconds(reference)
        extra = large["seconds"] - small["seconds"]
        budget = 2 * one_round if one_round is not None else None
        met = added <= 2 and budget is not None and extra <= budget
        round_times = ", ".join("%s %.1f s" % (p, s) for p, s in phase_seconds(large["timeline"]).items() if is_round(p))
        moving = [_transfer_time(c) for c in (small, large)]
        figures = (ideal, reference["n"], one_round or 0, high, round_times, moving[0], low, moving[1], high, moving[1] - moving[0])
        note = ("one transfer of the archive at the link's rate takes %.1f s; a peer round at N = %d took %.1f s (from the start of "
                "its planning to the next task). Round times at N = %d: %s. The seeds and rounds together: %.1f s at N = %d, %.1f s at "
                "N = %d (+%.1f s)." % figures)
        if not met and budget is not None and extra > budget:
            note += " The other phases that grew most: %s." % _growth(small, large, exclude_transfers=True)
        rows.append({"id": 2, "target": "N = %d -> %d: fan-out adds <= 2 rounds, of one transfer each" % (low, high),
                     "measured": "%d -> %d rounds (+%d); wall %.1f s -> %.1f s (+%.1f s, 2 rounds = %s)" % (
                         small["rounds"], large["rounds"], added, small["seconds"], large["seconds"], extra,
                         "%.1f s" % budget if budget is not None else "?"),
                     "met": met, "note": note})

    # 3. Controller egress <= 2 x the archive size at every N (fan-out).
    fans = [c for c in results["cases"] if c["mode"] == "fanout"]
    if fans:
        worst = max(fans, key=lambda c: c["controller_bytes"])
        over = [c for c in fans if c["controller_bytes"] > 2 * unit]
        rows.append({"id": 3, "target": "controller egress <= 2 x the archive at every N (fan-out)",
                     "measured": ", ".join("N = %d: %s (%.2fx)" % (c["n"], _mib(c["controller_bytes"]), c["controller_bytes"] / unit) for c in fans),
                     "met": not over,
                     "note": ("the archive as a host receives it: %s (the archive %s bytes and its sidecar %s bytes)" % (
                         _mib(unit), "{:,}".format(results["archive"]["bytes"]), "{:,}".format(unit - results["archive"]["bytes"])))
                     + ("" if not over else "; most at N = %d: %s" % (worst["n"], _mib(worst["controller_bytes"])))})

    # 4. A relay with nothing to do at N = 8 costs <= 2 x what it costs at N = 1.
    noop = results.get("noop")
    if noop:
        one, many = statistics.median(noop["one"]["seconds"]), statistics.median(noop["many"]["seconds"])
        ratio = many / one
        note = "median of %d runs each, interleaved; N = 1: %s" % (len(noop["one"]["seconds"]), noop["one"]["hosts"][0])
        if ratio > 2:
            note += ". Median phases, N = %d: %s; N = 1: %s" % (noop["n"], noop["many"].get("phases_text", ""), noop["one"].get("phases_text", ""))
        rows.append({"id": 4, "target": "nothing to do: N = %d costs <= 2 x N = 1" % noop["n"],
                     "measured": "%.1f s / %.1f s = %.2fx" % (many, one, ratio), "met": ratio <= 2, "note": note})

    # 5. Delta over real links.
    delta = results.get("delta")
    if delta:
        budget = delta["changed_layer_bytes"] + delta["slack_bytes"]
        into = delta["bytes_into"]
        biggest = max(into.values())
        rows.append({"id": "5a", "target": "delta at N = %d: bytes into each host <= changed layers + 1 MiB" % delta["n"],
                     "measured": "at most {:,} B per host (budget {:,} B)".format(biggest, budget), "met": biggest <= budget,
                     "note": "changed layers %s B as `docker save` writes them; thin archives: %d host(s), fallbacks: %d" % (
                         "{:,}".format(delta["changed_layer_bytes"]), delta["thin_hosts"], delta["fallback_hosts"])})
        full = _case(results, "fanout", delta["n"])
        if full:
            speedup = full["seconds"] / delta["seconds"]
            note = "the full delivery is fan-out at N = %d (%s)" % (delta["n"], "star: %.1f s" % _case(results, "star", delta["n"])["seconds"]
                                                                    if _case(results, "star", delta["n"]) else "no star run")
            if speedup < 10:
                note += ("; 10x would be %.1f s. The delta run: %s. Its slowest tasks: %s" % (
                    full["seconds"] / 10, _phases_text(delta), "; ".join("%s %.1f s" % (name, sec) for name, sec in (delta.get("slowest_tasks") or [])[:4])))
            rows.append({"id": "5b", "target": "delta at N = %d >= 10x faster than the full delivery" % delta["n"],
                         "measured": "%.1f s / %.1f s = %.1fx" % (full["seconds"], delta["seconds"], speedup), "met": speedup >= 10,
                         "note": note})
    return rows


def _growth(small, large, exclude_transfers=False, count=4):
    """The phases that took most longer in `large` than in `small`, as text."""
    before, after = phase_seconds(small["timeline"]), phase_seconds(large["timeline"])
    grown = sorted(((after.get(p, 0.0) - before.get(p, 0.0), p) for p in after
                    if not (exclude_transfers and (p in TRANSFERS or is_round(p)))), reverse=True)[:count]
    return ", ".join("%s %.1f s -> %.1f s" % (p, before.get(p, 0.0), after[p]) for _diff, p in grown if _diff > 0)


def _transfer_time(case):
    """Seconds of the phases that move the archive to the hosts: the star's copies, or the seeds,
    the rounds and the controller's fill-in."""
    return sum(s for p, s in phase_seconds(case["timeline"]).items() if p in TRANSFERS or is_round(p))


def fans_by_n(results):
    return [c for c in results["cases"] if c["mode"] == "fanout"]


def _median_round_seconds(case):
    rounds = [s for p, s in phase_seconds(case["timeline"]).items() if is_round(p) and p != seed_phase()]
    return statistics.median(rounds) if rounds else None


def _cell(text):
    return str(text).replace("|", "\\|")


def _load(case):
    """The machine's 1-minute load average before / during (mean) / after a run."""
    if not case.get("load_before"):
        return ""
    during = (case.get("load_during") or {}).get("mean")
    return "%.1f / %s / %.1f" % (case["load_before"][0], "%.1f" % during if during is not None else "-", case["load_after"][0])


def markdown(results):
    archive = results["archive"]
    fleet = results["fleet"]
    lines = ["# Fan-out against the star on the shaped fleet", "",
             "`make bench-fleet` (bench/fleet.py), started %s%s.%s" % (
                 results["started"], ", resumed %s" % ", ".join(results["resumed"]) if results.get("resumed") else ", %.0f minutes" % results.get("minutes", 0),
                 " **Quick run (a smoke test, not a measurement).**" if results.get("quick") else ""), "",
             *(["Interrupted after %s and resumed (`--resume`) at %s: the cases after that point ran then, on the same image, after a new "
                "untimed first relay." % (", ".join("%s N=%d" % (c["mode"], c["n"]) for c in results["cases"][:results.get("resumed_after", 0)]),
                                          ", ".join(results["resumed"])), ""] if results.get("resumed") else []),
             "The image: %.0f MiB of real files in 3 layers (bench/workload.py) plus an 8 KiB top layer, %s as a zstd archive "
             "(%s bytes; %s bytes with its sidecar). One transfer of it at %s takes %.1f s at the nominal rate." % (
                 results["image_mib"], _mib(archive["bytes"]), "{:,}".format(archive["bytes"]), "{:,}".format(archive["delivery_bytes"]),
                 fleet["rate"], archive["transfer_seconds"]), "",
             "The fleet (tests/harness/fleet.sh): %d hosts, `src` and %d targets, each its own network namespace, sshd and Docker engine "
             "(classic 20.10, containerd store 26, containerd 2 store 28.5, in turn), every link (the controller's too) shaped to %s "
             "each way. All of it runs on one machine: %s, %s cores, %s GiB; the loads of all targets share its cores." % (
                 fleet["size"], fleet["size"] - 1, fleet["rate"], results["machine"]["cpu"], results["machine"]["cores"],
                 results["machine"]["memory_gib"]), "",
             "Each case is one `ansible-playbook` run of the role (installed from a built collection, ANSIBLE_PIPELINING=True, forks %d) "
             "whose play's hosts are the first N targets, none of which holds the image beforehand (removed through the Docker API, "
             "staging directories emptied). The source's archive and the controller's relay copy are made once beforehand (an untimed "
             "first relay to one host), so every case times the delivery itself: the role's probes and plan, the copies, the loads "
             "and the checks. Role variables: %s; star: `migrate_fanout: false`. Cases interleaved: star N, fan-out N, for N = %s." % (
                 results["forks"], ", ".join("`%s: %s`" % (k, json.dumps(v)) for k, v in results["role_vars"].items()),
                 ", ".join(str(n) for n in results["sizes"])), "",
             "Load average (1 min) of the machine (%s cores): %s before the first case, %s at the end; per case below (before / mean during / after). %s" % (
                 results["machine"]["cores"], "%.2f" % results["load_start"][0], "%.2f" % results["load_end"][0], results.get("load_note", "")), ""]
    lines += ["## Targets", "", "| # | target | measured | | where the time goes |", "|---|---|---|---|---|"]
    for row in targets(results):
        lines.append("| %s | %s | %s | %s | %s |" % (row["id"], _cell(row["target"]), _cell(row["measured"]),
                                                     "met" if row["met"] else "**MISSED**", _cell(row["note"])))
    lines += ["", "## Cases", "",
              "| case | N | wall s | controller egress | hosts passed on | rounds | into each host (min - max) | load avg |",
              "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for case in results["cases"]:
        into = case["bytes_into"].values()
        lines.append("| %s | %d | %.1f | %s | %s | %s | %s - %s | %s |" % (
            case["mode"], case["n"], case["seconds"], _mib(case["controller_bytes"]), _mib(case["peer_bytes"]), case["rounds"] or "",
            _mib(min(into)), _mib(max(into)), _load(case)))
    lines += ["", "## Timelines", "",
              "Phases from the start of each task (a phase lasts until the next one starts); `round k`: the planning of the round and the "
              "peer fetches, all hosts at once; the load phase loads the archive on every host at once.", "",
              "| case | N | " + " | ".join(_all_phases(results)) + " |", "|---|---:|" + "---:|" * len(_all_phases(results))]
    for case in results["cases"] + ([dict(results["delta"], mode="delta")] if results.get("delta") else []):
        phases = phase_seconds(case["timeline"])
        lines.append("| %s | %d | %s |" % (case["mode"], case["n"], " | ".join(
            "%.1f" % phases[p] if p in phases else "" for p in _all_phases(results))))
    rounds = [(c, n, figures) for c in results["cases"] if c["mode"] == "fanout" for n, figures in sorted(
        (c.get("transfers") or {}).items(), key=lambda kv: int(kv[0]) if str(kv[0]).isdigit() else 99)]
    if rounds:
        lines += ["", "Peer transfers per round (peer_fetch's own figures):", "",
                  "| N | round | transfers | round wall s | each transfer s (min - max) |", "|---:|---:|---:|---:|---:|"]
        for case, number, figures in rounds:
            seconds = [f["seconds"] for f in figures]
            wall = phase_seconds(case["timeline"]).get(round_phase(int(number)) if str(number).isdigit() else "", 0)
            lines.append("| %d | %s | %d | %.1f | %.1f - %.1f |" % (case["n"], number, len(figures), wall, min(seconds), max(seconds)))
    noop = results.get("noop")
    if noop:
        lines += ["", "## Nothing to do", "",
                  "The relay again when every host holds the image: N = 1 (%s) and N = %d, interleaved." % (noop["one"]["hosts"][0], noop["n"]),
                  "", "| hosts | runs s | median s |", "|---:|---|---:|"]
        for key in ("one", "many"):
            entry = noop[key]
            runs = ", ".join("%.2f" % s for s in entry["seconds"])
            lines.append("| %d | %s | %.2f |" % (len(entry["hosts"]), runs, statistics.median(entry["seconds"])))
    delta = results.get("delta")
    if delta:
        lines += ["", "## Delta over the links", "",
                  "After the full delivery at N = %d (every host holds v1), v2 (v1's base plus another 8 KiB top layer) relayed with "
                  "`migrate_delta: true` and the role's other defaults (the thin archive is below `migrate_fanout_min_bytes`, so the "
                  "controller copies it to every host). The run includes the source's save of v2 and the cut of the thin archive. "
                  "%.1f s, load average %s." % (delta["n"], delta["seconds"], _load(delta)), "",
                  "| host | bytes in | thin | fallback |", "|---|---:|---|---|"]
        for host in delta.get("hosts") or delta["bytes_into"]:
            value = delta["bytes_into"][host]
            thin = ", ".join(delta["thin"].get(host) or []) or "no"
            fallback = ", ".join(delta["fallback"].get(host) or []) or "no"
            lines.append("| %s | %s | %s | %s |" % (host, "{:,}".format(value), thin, fallback))
    slow = [c for c in results["cases"] if c["n"] == _pick(results["sizes"], 8)] + ([dict(delta, mode="delta")] if delta else [])
    if any(c.get("slowest_tasks") for c in slow):
        lines += ["", "## Slowest tasks", "", "Each task lasts from its start to the next one's (all hosts at once); "
                  "a task that runs in every round counts once per round.", ""]
        for case in slow:
            lines.append("- **%s, N = %d** (%.1f s): %s" % (case["mode"], case["n"], case["seconds"], "; ".join(
                "%s %.1f s" % (_cell(name), seconds) for name, seconds in case.get("slowest_tasks") or [])))
    lines += ["", "## Bytes into each host", "", "| case | N | " + " | ".join(_all_hosts(results)) + " |",
              "|---|---:|" + "---:|" * len(_all_hosts(results))]
    for case in results["cases"]:
        lines.append("| %s | %d | %s |" % (case["mode"], case["n"], " | ".join(
            "%.1f" % (case["bytes_into"][h] / MIB) if h in case["bytes_into"] else "" for h in _all_hosts(results))))
    lines += ["", "MiB, archive and sidecar, from each host's `migrate_report` (`bytes_sent` + `bytes_from_peers`).", ""]
    return "\n".join(lines)


def _all_phases(results):
    seen = {}
    for case in results["cases"] + ([results["delta"]] if results.get("delta") else []):
        for segment in case["timeline"]:
            seen.setdefault(segment["phase"], None)
    order = [STARTUP, PREPARE, SAVE, FETCH, STAR, FANOUT_SETUP]
    rounds = sorted((p for p in seen if is_round(p)), key=lambda p: int(ROUND.search(p).group(1)))
    order += rounds + [FILL, WRAP, LOAD, FINISH]
    return [p for p in order if p in seen] + [p for p in seen if p not in order]


def _all_hosts(results):
    seen = {}
    for case in results["cases"]:
        for host in case.get("hosts") or case["bytes_into"]:  # the play's order: the first N targets of the inventory
            seen.setdefault(host, None)
    return list(seen)


def chart(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (wall, egress, phases) = plt.subplots(1, 3, figsize=(17, 6), gridspec_kw={"width_ratios": [1, 1, 1.6]})
    colors = {"star": "#868e96", "fanout": "#2b8a3e"}
    role_vars = results.get("role_vars") or {}
    names = {"star": "star (migrate_fanout: false)",
             "fanout": "fan-out (%s seed(s), %s)" % (role_vars.get("migrate_fanout_seeds", 2),
                                                     "relay" if role_vars.get("migrate_fanout_relay") else "doubling rounds")}
    for mode in ("star", "fanout"):
        cases = sorted((c for c in results["cases"] if c["mode"] == mode), key=lambda c: c["n"])
        if not cases:
            continue
        ns = [c["n"] for c in cases]
        wall.plot(ns, [c["seconds"] for c in cases], "o-", color=colors[mode], label=names[mode])
        egress.plot(ns, [c["controller_bytes"] / MIB for c in cases], "o-", color=colors[mode], label=names[mode])
    unit = results["archive"]["delivery_bytes"] / MIB
    egress.axhline(2 * unit, color="#e03131", linestyle="--", linewidth=1, label="2 x the archive (target)")
    wall.set_title("wall time of the play against N (%s links)" % results["fleet"]["rate"])
    wall.set_xlabel("target hosts N")
    wall.set_ylabel("seconds")
    egress.set_title("controller egress against N")
    egress.set_xlabel("target hosts N")
    egress.set_ylabel("MiB")
    for axis in (wall, egress):
        axis.set_xticks(results["sizes"])
        axis.set_ylim(bottom=0)
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    order = _all_phases(results)
    palette = plt.get_cmap("tab20")
    shown = results["cases"] + ([dict(results["delta"], mode="delta")] if results.get("delta") else [])
    for index, case in enumerate(shown):
        for segment in case["timeline"]:
            phases.barh(index, segment["seconds"], left=segment["start"], color=palette(order.index(segment["phase"]) % 20), height=0.6)
    phases.set_yticks(range(len(shown)))
    phases.set_yticklabels(["%s N=%d" % (c["mode"], c["n"]) for c in shown])
    phases.invert_yaxis()
    phases.set_xlabel("seconds since ansible-playbook started")
    phases.set_title("timeline of each run")
    handles = [plt.Rectangle((0, 0), 1, 1, color=palette(i % 20)) for i in range(len(order))]
    phases.legend(handles, order, fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=5)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def write_reports(results, directory):
    write_files(results, directory, "fleet", markdown, chart)


if __name__ == "__main__":
    import sys

    # Write the Markdown and the chart again from a fleet.json: fleet_report.py bench/results/fleet.json
    source = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parent / "results/fleet.json")
    write_reports(json.loads(source.read_text()), source.parent)
