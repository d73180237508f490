"""The fleet benchmark's report (bench/fleet_report.py): timelines from task events, the figures
taken from the hosts' migrate_reports, and the verdicts on the targets of issue 14 §3."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "bench"))

import fleet_report as fr

ROLE = "airgap.docker.migrate : "
MIB = 1 << 20


def events(*tasks, collect_at=None):
    """Callback records: (seconds, task name, host statuses) per task, the role's play first."""
    records = [{"e": "play", "name": "migrate", "t": 100.0}]
    for offset, name, statuses in tasks:
        records.append({"e": "task", "name": ROLE + name, "t": 100.0 + offset})
        records += [{"e": "host", "host": "h%d" % i, "task": ROLE + name, "status": s, "t": 100.0 + offset + 0.01} for i, s in enumerate(statuses)]
    if collect_at is not None:
        records.append({"e": "play", "name": "collect reports", "t": 100.0 + collect_at})
        records.append({"e": "task", "name": "ansible.builtin.copy", "t": 100.0 + collect_at})
    return records


FANOUT_RUN = events(
    (1, "Validate | the settings", ["ok"]),
    (2, "Source | save the images (an up-to-date archive is kept as it is)", ["ok"]),
    (4, "Probe | compare the engine's images with the archives'", ["ok", "ok"]),
    (6, "Cut | thin archives on the source", ["skipped"]),
    (7, "Fetch | copy archives from the source to the controller", ["ok"]),
    (8, "Deliver | copy the archives this host lacks", ["skipped", "skipped"]),
    (9, "Deliver | pass the archives on from host to host", ["ok", "ok"]),
    (10, "Fan-out | share what this host will hold with the other hosts of the batch", ["ok", "ok"]),
    (12, "Fan-out | round 0 | receive the seeds from the controller", ["ok", "skipped"]),
    (40, "Fan-out | rounds", ["ok", "ok"]),
    (41, "Fan-out | who passes what to whom in round 1", ["ok"]),
    (42, "Fan-out | receive from a peer in round 1", ["skipped", "ok"]),
    (72, "Fan-out | stop sharing", ["ok", "ok"]),
    (74, "Fan-out | the controller sends what is still missing", ["skipped", "skipped"]),
    (75, "Deliver | load the full image archives", ["ok", "ok"]),
    (90, "Deliver | read the engine's images", ["ok", "ok"]),
    collect_at=95,
)


def test_timeline_phases_of_a_fanout_run_end_where_the_report_collection_starts():
    segments = fr.timeline(FANOUT_RUN, started=99.0, ended=200.0)
    assert [s["phase"] for s in segments] == [
        fr.STARTUP, fr.PREPARE, fr.SAVE, fr.PREPARE, fr.FETCH, fr.PREPARE, fr.FANOUT_SETUP, "round 0 (seeds)", fr.WRAP, "round 1", fr.WRAP,
        fr.LOAD, fr.FINISH]
    phases = fr.phase_seconds(segments)
    assert phases["round 0 (seeds)"] == 28.0
    assert phases["round 1"] == 31.0  # planning and fetch
    assert phases[fr.WRAP] == 1.0 + 3.0  # the rounds' include, then stop sharing and the skipped fill-in
    assert phases[fr.LOAD] == 15.0
    assert phases[fr.FINISH] == 5.0  # up to the report collection's play, not the process's end
    assert sum(s["seconds"] for s in segments) == pytest.approx(96.0)
    assert fr.play_end(FANOUT_RUN, 200.0) == 195.0


def test_a_task_every_host_skipped_is_no_transfer_and_a_star_copy_is():
    star = events((1, "Deliver | copy the archives this host lacks", ["ok", "ok"]), (30, "Deliver | load the full image archives", ["ok", "ok"]))
    assert [s["phase"] for s in fr.timeline(star, 100.0, 140.0)] == [fr.STARTUP, fr.STAR, fr.LOAD]
    skipped = events((1, "Deliver | copy the archives this host lacks", ["skipped"]), (2, "Deliver | load the full image archives", ["skipped"]))
    assert [s["phase"] for s in fr.timeline(skipped, 100.0, 103.0)] == [fr.STARTUP, fr.PREPARE]


def test_untemplated_round_names_are_numbered_in_order():
    run = events((1, "Fan-out | who passes what to whom in round {{ __migrate_round_number }}", ["ok"]),
                 (2, "Fan-out | receive from a peer in round {{ __migrate_round_number }}", ["ok"]),
                 (5, "Fan-out | who passes what to whom in round {{ __migrate_round_number }}", ["ok"]),
                 (6, "Fan-out | receive from a peer in round {{ __migrate_round_number }}", ["ok"]))
    assert [s["phase"] for s in fr.timeline(run, 100.0, 110.0)] == [fr.STARTUP, "round 1", "round 2"]


def test_slowest_tasks_sum_the_rounds():
    slowest = fr.slowest_tasks(FANOUT_RUN, 200.0, count=3)
    assert slowest[0] == ["Fan-out | receive from a peer in round 1", 30.0]
    assert slowest[1][0] == "Fan-out | round 0 | receive the seeds from the controller"


def test_transfers_per_round_from_the_peer_fetch_items():
    records = [{"e": "item", "host": "b", "task": ROLE + "Fan-out | receive from a peer in round 1", "action": "airgap.docker.peer_fetch",
                "bytes": 10, "seconds": 2.5},
               {"e": "item", "host": "c", "task": ROLE + "Fan-out | round 0 | receive the seeds from the controller",
                "action": "airgap.docker.push_archive", "bytes": 10, "seconds": None}]
    assert fr.transfers(records) == {1: [{"host": "b", "bytes": 10, "seconds": 2.5}]}


def report(sent, peers=0, rounds=()):
    return {"bytes_sent": sent, "bytes_from_peers": peers, "sources": [{"path": "a", "source": "x", "round": r} for r in rounds]}


def test_case_figures_from_the_reports():
    figures = fr.case_figures({"a": report(100, rounds=[0]), "b": report(100, rounds=[0]), "c": report(0, 100, rounds=[1]),
                               "d": report(0, 100, rounds=[1]), "e": None})
    assert figures == {"controller_bytes": 200, "peer_bytes": 200, "rounds": 2, "bytes_into": {"a": 100, "b": 100, "c": 100, "d": 100}}
    assert fr.case_figures({"a": report(100)})["rounds"] == 0  # no fan-out


def test_parse_rate_and_one_transfer():
    assert fr.parse_rate("100mbit") == 100e6
    assert fr.parse_rate("1.5Gbit") == 1.5e9
    assert fr.transfer_seconds(100 * 10**6 // 8, 100e6) == 1.0
    with pytest.raises(ValueError):
        fr.parse_rate("100mb")


def segments(*phases):
    out, start = [], 0.0
    for phase, seconds in phases:
        out.append({"phase": phase, "start": start, "seconds": seconds})
        start += seconds
    return out


def case(mode, n, seconds, controller, rounds=0, round_seconds=()):
    timeline = segments((fr.PREPARE, 10.0), *[(fr.round_phase(i + 1), s) for i, s in enumerate(round_seconds)], (fr.LOAD, 5.0))
    return {"mode": mode, "n": n, "seconds": seconds, "controller_bytes": controller, "peer_bytes": 0, "rounds": rounds,
            "bytes_into": {"h%d" % i: 100 * MIB for i in range(n)}, "timeline": timeline, "load_before": [1.0], "load_after": [1.0]}


def results(**overrides):
    unit = 100 * MIB + 2000
    base = {
        "started": "now", "quick": False, "sizes": [4, 8, 12], "image_mib": 1024, "forks": 15, "role_vars": {"migrate_delta": False},
        "machine": {"cpu": "cpu", "cores": 2, "memory_gib": 8}, "fleet": {"size": 13, "rate": "100mbit"},
        "archive": {"bytes": 100 * MIB, "delivery_bytes": unit, "transfer_seconds": 8.4},
        "load_start": [1.0], "load_end": [1.0],
        "cases": [case("star", 4, 60, 4 * unit), case("fanout", 4, 40, 2 * unit, 2, [10]),
                  case("star", 8, 100, 8 * unit), case("fanout", 8, 50, 2 * unit, 3, [10, 10]),
                  case("star", 12, 140, 12 * unit), case("fanout", 12, 60, 2 * unit, 4, [10, 10, 10])],
        "noop": {"n": 8, "one": {"hosts": ["h0"], "seconds": [10, 11, 12]}, "many": {"hosts": ["h%d" % i for i in range(8)], "seconds": [20, 22, 30]}},
        "delta": dict(case("delta", 8, 5, 8 * 13000), changed_layer_bytes=10752, slack_bytes=MIB, thin_hosts=8, fallback_hosts=0,
                      bytes_into={"h%d" % i: 13000 for i in range(8)}, thin={}, fallback={}),
    }
    base.update(overrides)
    return base


def verdicts(data):
    return {row["id"]: row["met"] for row in fr.targets(data)}


def test_every_target_met():
    assert verdicts(results()) == {1: True, 2: True, 3: True, 4: True, "5a": True, "5b": True}


def test_targets_missed():
    data = results()
    data["cases"][3]["seconds"] = 51  # fan-out at N = 8 over half the star's 100 s
    data["cases"][5]["controller_bytes"] += 1  # a byte over 2 archives
    data["cases"][5]["rounds"] = 5  # 3 rounds more than at N = 4
    data["noop"]["many"]["seconds"] = [23, 23, 23]  # 23 / 11 > 2
    data["delta"]["bytes_into"]["h3"] = 10752 + MIB + 1
    data["delta"]["seconds"] = 5.2  # 51 / 5.2 < 10
    rows = {row["id"]: row for row in fr.targets(data)}
    assert {k: r["met"] for k, r in rows.items()} == {1: False, 2: False, 3: False, 4: False, "5a": False, "5b": False}
    assert "0.5x would be 50.0 s" in rows[1]["note"] and "The copies alone" in rows[1]["note"]
    assert "10x would be 5.1 s" in rows["5b"]["note"]


def test_added_rounds_must_each_last_one_round():
    data = results()
    # Two rounds more, but N = 12 takes longer than two rounds of N = 4 (10 s each) beyond N = 4's 40 s.
    data["cases"][5]["seconds"] = 61
    assert verdicts(data)[2] is False


def test_markdown_names_every_case_and_target():
    text = fr.markdown(results())
    assert text.count("| met |") == 6
    for mode, n in (("star", 4), ("fanout", 12), ("delta", 8)):
        assert "| %s | %d |" % (mode, n) in text
