"""The fan-out's rounds (module_utils/fanout_plan.py): seeding, doubling, one transfer per link and
round, and what a failed transfer changes."""

from __future__ import annotations

import pytest

from ansible_collections.airgap.docker.plugins.module_utils import fanout_plan
from ansible_collections.airgap.docker.plugins.module_utils.fanout_plan import CONTROLLER


def hosts(count, paths=("a.tar",)):
    return {"h%02d" % i: list(paths) for i in range(1, count + 1)}


def run_rounds(state, sizes, seeds=2, fail=lambda receiver, transfer: False, can_send=None, relay=False):
    """Apply next_round until it has nothing left, failing the transfers `fail` picks. With relay, a
    receiver whose sender failed in the same round fails too, as it does on the wire."""
    number = 0
    while True:
        transfers = fanout_plan.next_round(state, sizes, seeds, can_send, seeding=number == 0, relay=relay)
        if not transfers:
            return number
        broken = set()
        for receiver, items in transfers.items():  # in the play's order: a sender before its receivers
            for item in items:
                failed = fail(receiver, item) or (item["source"], item["path"]) in broken
                if failed:
                    broken.add((receiver, item["path"]))
                state[receiver]["failed" if failed else "got"].append(dict(item, round=number))
        number += 1


def fresh(needs):
    return {name: {"needs": list(paths), "got": [], "failed": []} for name, paths in needs.items()}


@pytest.mark.parametrize("count, seeds, rounds", [(1, 2, 1), (2, 2, 1), (3, 2, 2), (4, 2, 2), (8, 2, 3), (12, 2, 4), (16, 2, 4),
                                                  (8, 1, 4), (100, 2, 7)])
def test_holders_double_each_round(count, seeds, rounds):
    plan = fanout_plan.schedule(hosts(count), {"a.tar": 10}, seeds)
    assert plan["rounds"] == rounds == fanout_plan.ideal_rounds(count, seeds)
    assert plan["controller_copies"] == min(seeds, count)
    assert sorted(plan["receipts"]) == sorted(hosts(count))


def test_controller_sends_each_archive_at_most_seeds_times_whatever_the_fleet():
    for count in (4, 8, 12, 40):
        plan = fanout_plan.schedule(hosts(count, ("a.tar", "b.tar", "c.tar")), {"a.tar": 300, "b.tar": 200, "c.tar": 1}, 2)
        controller = [r for receipts in plan["receipts"].values() for r in receipts if r["source"] == CONTROLLER]
        assert len(controller) == 6
        assert all(len(receipts) == 3 for receipts in plan["receipts"].values())


def test_a_host_sends_and_receives_at_most_one_archive_per_round():
    plan = fanout_plan.schedule(hosts(12, ("a.tar", "b.tar")), {"a.tar": 5, "b.tar": 3}, 2)
    received, sent = {}, {}
    for receiver, receipts in plan["receipts"].items():
        for r in receipts:
            received.setdefault((receiver, r["round"]), []).append(r)
            if r["source"] != CONTROLLER:
                sent.setdefault((r["source"], r["round"]), []).append(r)
    assert max(len(v) for v in received.values()) == 1
    assert max(len(v) for v in sent.values()) == 1


def test_only_holders_of_a_checked_copy_pass_it_on():
    plan = fanout_plan.schedule(hosts(8), {"a.tar": 1}, 2)
    got_in = {host: receipts[0]["round"] for host, receipts in plan["receipts"].items()}
    for host, receipts in plan["receipts"].items():
        source = receipts[0]["source"]
        if source != CONTROLLER:
            assert got_in[source] < receipts[0]["round"], (host, source)


def test_thin_archives_fan_out_among_the_hosts_that_need_them():
    needs = {"h1": ["thin.tar"], "h2": ["thin.tar"], "h3": ["thin.tar"], "h4": ["full.tar"], "h5": ["full.tar"], "h6": ["full.tar"]}
    plan = fanout_plan.schedule(needs, {"thin.tar": 1, "full.tar": 9}, 1)
    for host, receipts in plan["receipts"].items():
        for r in receipts:
            assert r["source"] == CONTROLLER or needs[r["source"]] == needs[host]


def test_a_failed_sender_is_never_asked_again_by_that_receiver():
    state = fresh(hosts(4))
    run_rounds(state, {"a.tar": 1}, seeds=1, fail=lambda receiver, item: receiver == "h02" and item["source"] == "h01")
    assert [f["source"] for f in state["h02"]["failed"]] == ["h01"]
    assert [g["source"] for g in state["h02"]["got"]] not in (["h01"], [])
    assert all(fanout_plan.still_lacking(s) == [] for s in state.values())


def test_a_receiver_that_no_holder_can_reach_is_left_to_the_controller():
    state = fresh(hosts(3))
    run_rounds(state, {"a.tar": 1}, seeds=1, fail=lambda receiver, item: receiver == "h03" and item["source"] != CONTROLLER)
    assert fanout_plan.still_lacking(state["h03"]) == ["a.tar"]
    assert sorted(f["source"] for f in state["h03"]["failed"]) == ["h01", "h02"]
    report = fanout_plan.sources_report(state["h03"], {"a.tar": 7}, {"a.tar": 1})
    assert report == [{"path": "a.tar", "source": CONTROLLER, "round": None, "bytes": 7, "replacing": ["h01", "h02"]}]


def test_hosts_whose_share_did_not_start_only_receive():
    state = fresh(hosts(4))
    run_rounds(state, {"a.tar": 1}, seeds=1, can_send={"h02", "h03", "h04"})
    sources = {s["got"][0]["source"] for s in state.values() if s["got"]}
    assert "h01" not in sources
    assert all(not fanout_plan.still_lacking(s) for s in state.values())


def test_round_records_count_a_missing_or_skipped_result_as_failed():
    transfers = [{"path": "a", "source": "h1"}, {"path": "b", "source": "h2"}, {"path": "c", "source": CONTROLLER}]
    results = [{"bytes": 5, "seconds": 0.5}, {"failed": True, "msg": "refused"}]
    outcome = fanout_plan.round_records(transfers, results, 3)
    assert outcome["got"] == [{"path": "a", "source": "h1", "round": 3, "bytes": 5, "seconds": 0.5}]
    assert [(f["path"], f["reason"]) for f in outcome["failed"]] == [("b", "refused"), ("c", "the transfer did not run")]


def test_with_details_carries_the_manifest_checksums_and_the_peers_share():
    archives = [{"path": "a", "size": 3, "sha256": "1" * 64, "sidecar": {"path": "a.airgap.json", "sha256": "2" * 64}}]
    described = fanout_plan.with_details({"h2": [{"path": "a", "source": "h1"}], "h1": [{"path": "a", "source": CONTROLLER}]},
                                         archives, {"h1": {"address": "198.18.77.11", "port": 4000}})
    assert described["h2"][0] == {"path": "a", "source": "h1", "sha256": "1" * 64, "size": 3, "sidecar_sha256": "2" * 64,
                                  "address": "198.18.77.11", "port": 4000}
    assert "address" not in described["h1"][0]


def test_nothing_to_do_is_no_round():
    assert fanout_plan.schedule({}, {}, 2) == {"rounds": 0, "receipts": {}, "controller_copies": 0}
    assert fanout_plan.ideal_rounds(0, 2) == 0


def test_an_archive_not_written_yet_has_no_size_or_checksums_in_check_mode():
    described = fanout_plan.with_details({"h1": [{"path": "new", "source": CONTROLLER}]}, [], {})
    assert described == {"h1": [{"path": "new", "source": CONTROLLER, "sha256": None, "size": None, "sidecar_sha256": None}]}


@pytest.mark.parametrize("count, seeds", [(2, 1), (4, 1), (8, 1), (12, 1), (100, 1), (8, 2), (40, 3)])
def test_a_relay_round_serves_every_host_whatever_the_fleet(count, seeds):
    plan = fanout_plan.schedule(hosts(count), {"a.tar": 10}, seeds, relay=True)
    assert plan["rounds"] == fanout_plan.ideal_rounds(count, seeds, relay=True) == 2
    assert plan["controller_copies"] == seeds
    assert sorted(plan["receipts"]) == sorted(hosts(count))


def test_relay_chains_run_in_the_plays_order_and_a_host_sends_once():
    order = ["h09", "h03", "h07", "h01", "h05", "h02", "h08", "h04", "h06"]
    state = {name: {"needs": ["a.tar"], "got": [], "failed": []} for name in order}
    state["h09"]["got"].append({"path": "a.tar", "source": CONTROLLER, "round": 0})
    state["h03"]["got"].append({"path": "a.tar", "source": CONTROLLER, "round": 0})
    transfers = fanout_plan.next_round(state, {"a.tar": 1}, 2, seeding=False, relay=True)
    sources = {receiver: items[0]["source"] for receiver, items in transfers.items()}
    # Two chains, growing in turn: h09 > h07 > h05 > h08 > h06 and h03 > h01 > h02 > h04.
    assert sources == {"h07": "h09", "h01": "h03", "h05": "h07", "h02": "h01", "h08": "h05", "h04": "h02", "h06": "h08"}
    for receiver, source in sources.items():
        assert order.index(source) < order.index(receiver), (receiver, source)
    assert len(set(sources.values())) == len(sources)


def test_a_broken_link_fails_the_rest_of_its_chain_and_the_next_round_serves_them():
    state = fresh(hosts(8))
    # Round 1 is one chain, h01 > h02 > ... > h08; h03's first fetch fails.
    rounds = run_rounds(state, {"a.tar": 1}, seeds=1, relay=True,
                        fail=lambda receiver, item: receiver == "h03" and not state["h03"]["failed"])
    assert [name for name, s in state.items() if s["failed"]] == ["h03", "h04", "h05", "h06", "h07", "h08"]
    assert rounds == 3 and all(not fanout_plan.still_lacking(s) for s in state.values())
    # Round 2 never asks a receiver's failed sender again.
    for s in state.values():
        assert not {f["source"] for f in s["failed"]} & {g["source"] for g in s["got"]}


def test_in_a_relay_a_host_whose_share_did_not_start_ends_a_chain():
    state = fresh(hosts(5))
    state["h01"]["got"].append({"path": "a.tar", "source": CONTROLLER, "round": 0})
    transfers = fanout_plan.next_round(state, {"a.tar": 1}, 1, can_send={"h01", "h03", "h04", "h05"}, seeding=False, relay=True)
    sources = {receiver: items[0]["source"] for receiver, items in transfers.items()}
    # The chain passes over h02, which could only take a sender before it in the play's order (h01,
    # busy): Ansible may start h02's fetch before a later host's, which would then not be there yet.
    assert sources == {"h03": "h01", "h04": "h03", "h05": "h04"}
    for receiver, items in transfers.items():
        state[receiver]["got"].extend(items)
    assert fanout_plan.next_round(state, {"a.tar": 1}, 1, can_send={"h01", "h03", "h04", "h05"}, seeding=False,
                                  relay=True) == {"h02": [{"path": "a.tar", "source": "h01"}]}


def test_a_relay_round_moves_one_archive_into_each_host():
    plan = fanout_plan.schedule(hosts(6, ("a.tar", "b.tar")), {"a.tar": 5, "b.tar": 3}, 1, relay=True)
    per_round = {}
    for receiver, receipts in plan["receipts"].items():
        for r in receipts:
            per_round.setdefault((receiver, r["round"]), []).append(r)
    assert max(len(v) for v in per_round.values()) == 1
    assert all(len(receipts) == 2 for receipts in plan["receipts"].values())
