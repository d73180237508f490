"""The fan-out's filters (plugins/filter/fanout.py): what they check of their input, and that they
read each host's plan and results from hostvars and hand on what module_utils.fanout_plan decides."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.airgap.docker.plugins.filter import fanout

PATH = "images/a.tar"
ARCHIVES = [{"path": PATH, "size": 10, "sha256": "1" * 64, "sidecar": {"path": PATH + ".airgap.json", "sha256": "2" * 64}}]


def hostvars(count):
    found = {"h%d" % i: {"__migrate_plan": {"deliveries": [{"file": PATH, "logical": PATH}]},
                         "__migrate_share": {"address": "198.18.77.%d" % (10 + i), "port": 4000 + i, "changed": True}}
             for i in range(1, count + 1)}
    found["idle"] = {"__migrate_plan": {"deliveries": []}}
    return found


def test_every_filter_is_registered():
    assert set(fanout.FilterModule().filters()) == {"migrate_fanout_wanted", "migrate_fanout_plan", "migrate_fanout_advance",
                                                    "migrate_fanout_lacking", "migrate_fanout_host"}


@pytest.mark.parametrize("call, message", [
    (lambda: fanout.migrate_fanout_plan({}, [], ARCHIVES, 0), "migrate_fanout_plan expects migrate_fanout_seeds to be a whole number"),
    (lambda: fanout.migrate_fanout_plan({}, [], ARCHIVES, "two"), "migrate_fanout_plan expects migrate_fanout_seeds"),
    (lambda: fanout.migrate_fanout_plan([], [], ARCHIVES, 2), "migrate_fanout_plan expects hostvars."),
    (lambda: fanout.migrate_fanout_plan({}, [], [{"path": "a"}], 2), "migrate_fanout_plan expects the manifest's archives."),
    (lambda: fanout.migrate_fanout_wanted({}, [], ARCHIVES, 2, -1), "migrate_fanout_wanted expects migrate_fanout_min_bytes"),
    (lambda: fanout.migrate_fanout_advance({}, {}, [], ARCHIVES, 2), "migrate_fanout_advance expects the batch's fan-out state"),
    (lambda: fanout.migrate_fanout_lacking([], "h1"), "migrate_fanout_lacking expects the batch's fan-out state"),
    (lambda: fanout.migrate_fanout_host([], "h1"), "migrate_fanout_host expects the batch's fan-out state"),
])
def test_misuse_fails_with_one_sentence(call, message):
    with pytest.raises(AnsibleFilterError) as failure:
        call()
    assert str(failure.value).startswith(message)


def test_wanted_only_when_more_hosts_lack_it_than_are_seeded_and_it_weighs_enough():
    batch = ["h1", "h2", "h3", "idle"]
    assert fanout.migrate_fanout_wanted(hostvars(3), batch, ARCHIVES, 2, 30) is True
    assert fanout.migrate_fanout_wanted(hostvars(3), batch, ARCHIVES, 2, 31) is False
    assert fanout.migrate_fanout_wanted(hostvars(3), batch, ARCHIVES, 3, 0) is False


def test_plan_counts_only_hosts_that_lack_something_and_seeds_round_0():
    state = fanout.migrate_fanout_plan(hostvars(8), ["h%d" % i for i in range(1, 9)] + ["idle"], ARCHIVES, "2")
    assert state["rounds"] == 3 and state["spare_rounds"] == 2 and state["round_number"] == 0
    assert "idle" not in state["hosts"]
    assert state["round"] == {h: [{"path": PATH, "source": "controller", "sha256": "1" * 64, "size": 10, "sidecar_sha256": "2" * 64}]
                              for h in ("h1", "h2")}
    assert fanout.migrate_fanout_host(state, "h3", True)["got"] == [{"path": PATH, "source": "h1", "round": 1}]
    assert fanout.migrate_fanout_host(state, "h3", False)["got"] == []


def test_advance_records_each_round_once_and_hands_failed_receivers_to_another_holder():
    found, batch = hostvars(4), ["h1", "h2", "h3", "h4"]
    state = fanout.migrate_fanout_plan(found, batch, ARCHIVES, 1)
    found["h1"]["__migrate_round_pushed"] = {"results": [{"item": state["round"]["h1"][0], "bytes": 12}]}
    state = fanout.migrate_fanout_advance(state, found, batch, ARCHIVES, 1)
    assert state["round_number"] == 1 and list(state["round"]) == ["h2"]
    assert (state["round"]["h2"][0]["address"], state["round"]["h2"][0]["port"]) == ("198.18.77.11", 4001)
    found["h2"]["__migrate_round_fetched"] = {"results": [{"item": state["round"]["h2"][0], "failed": True, "msg": "refused"}]}
    state = fanout.migrate_fanout_advance(state, found, batch, ARCHIVES, 1, False)
    assert state["failures"] == 1 and state["round"] == {} and state["hosts"]["h2"]["failed"][0]["reason"] == "refused"
    again = fanout.migrate_fanout_advance(state, found, batch, ARCHIVES, 1, False)
    assert again["hosts"] == state["hosts"]
    spare = fanout.migrate_fanout_advance(state, found, batch, ARCHIVES, 1)
    assert "h2" not in spare["round"] and spare["round_number"] == 2
    assert fanout.migrate_fanout_lacking(spare, "h2") == [PATH] and fanout.migrate_fanout_lacking(spare, "h1") == []


def test_a_host_that_left_the_batch_neither_sends_nor_receives():
    found, batch = hostvars(3), ["h1", "h2", "h3"]
    state = fanout.migrate_fanout_plan(found, batch, ARCHIVES, 1)
    found["h1"]["__migrate_round_pushed"] = {"results": [{"item": state["round"]["h1"][0], "bytes": 12}]}
    state = fanout.migrate_fanout_advance(state, found, ["h2", "h3"], ARCHIVES, 1)
    assert "h1" not in state["hosts"] and state["round"] == {}


def test_a_host_whose_share_failed_is_no_sender():
    found, batch = hostvars(3), ["h1", "h2", "h3"]
    found["h1"]["__migrate_share"] = {"failed": True, "msg": "Cannot serve"}
    state = fanout.migrate_fanout_plan(found, batch, ARCHIVES, 1)
    assert list(state["round"]) == ["h2"]  # the seed goes to a host that can pass it on
    found["h2"]["__migrate_round_pushed"] = {"results": [{"item": state["round"]["h2"][0], "bytes": 12}]}
    state = fanout.migrate_fanout_advance(state, found, batch, ARCHIVES, 1)
    assert {t["source"] for ts in state["round"].values() for t in ts} == {"h2"}


def test_a_relay_keeps_to_the_plays_order_in_every_round():
    found, batch = hostvars(5), ["h4", "h2", "h5", "h1", "h3"]
    state = fanout.migrate_fanout_plan(found, batch, ARCHIVES, 1, True)
    assert state["relay"] is True and state["rounds"] == 2 and list(state["round"]) == ["h4"]
    found["h4"]["__migrate_round_pushed"] = {"results": [{"item": state["round"]["h4"][0], "bytes": 12}]}
    state = fanout.migrate_fanout_advance(state, found, batch, ARCHIVES, 1)
    assert {receiver: items[0]["source"] for receiver, items in state["round"].items()} == {"h2": "h4", "h5": "h2", "h1": "h5", "h3": "h1"}


def test_relay_must_be_a_boolean():
    with pytest.raises(AnsibleFilterError, match="migrate_fanout_plan expects relay to be true or false, not 'yes'"):
        fanout.migrate_fanout_plan(hostvars(2), ["h1", "h2"], ARCHIVES, 1, "yes")
