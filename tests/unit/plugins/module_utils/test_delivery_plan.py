"""Which file each host gets (delivery_plan): full, an existing thin archive, a thin one to cut, or refused."""

from __future__ import annotations

import pytest

from ansible_collections.airgap.docker.plugins.module_utils.delivery_plan import baseline_plan, plan, thin_name

BASE = ("sha256:b1", "sha256:b2", "sha256:b3")
APP = BASE + ("sha256:top",)
FULL = "images/app_2.tar.zst"


def record(archive=FULL, state="missing", held=0, omitted=0, delta_of=None, kind="images", diff_ids=APP, tags=("app:2",)):
    item = {"archive": archive, "state": state, "held_layers": held, "omitted_layers": omitted, "kind": kind,
            "diff_ids": list(diff_ids), "tags": list(tags), "config_digest": "sha256:cfg"}
    if delta_of:
        item["delta_of"] = delta_of
    return item


@pytest.mark.parametrize("path, count, expected", [
    ("images/app_2.tar.zst", 3, "images/app_2+delta3.tar.zst"),
    ("images/app_2.tar.gz", 1, "images/app_2+delta1.tar.gz"),
    ("images/app_2.tar", 2, "images/app_2+delta2.tar"),
    ("images/app", 2, "images/app+delta2"),
])
def test_thin_name(path, count, expected):
    assert thin_name(path, count) == expected


def test_present_image_needs_nothing():
    assert plan([record(state="present", held=4)], build=True) == {"deliveries": [], "refused": []}


def test_host_without_the_layers_gets_the_full_archive():
    (delivery,) = plan([record(held=0)], build=True)["deliveries"]
    assert delivery["file"] == FULL and delivery["omitted"] == 0 and not delivery["build"]


def test_relay_asks_for_a_thin_archive_of_what_the_host_holds():
    (delivery,) = plan([record(held=3)], build=True)["deliveries"]
    assert delivery["build"] and delivery["file"] == "images/app_2+delta3.tar.zst"
    assert delivery["exclude_layers"] == list(BASE) and delivery["images"] == ["app:2"] and delivery["logical"] == FULL


def test_existing_thin_archive_that_fits_is_chosen_over_cutting_a_new_one():
    thin = "images/app_2+delta3.tar.zst"
    records = [record(held=3), record(archive=thin, held=3, omitted=3, delta_of=FULL)]
    (delivery,) = plan(records, build=True)["deliveries"]
    assert delivery["file"] == thin and not delivery["build"]


def test_thin_archive_leaving_out_more_than_the_host_holds_does_not_fit():
    thin = "images/app_2+delta3.tar.zst"
    records = [record(held=2), record(archive=thin, held=2, omitted=3, delta_of=FULL)]
    (delivery,) = plan(records, build=False)["deliveries"]
    assert delivery["file"] == FULL
    (cut,) = plan(records, build=True)["deliveries"]
    assert cut["file"] == "images/app_2+delta2.tar.zst" and cut["build"]


def test_delta_off_always_chooses_the_full_archive():
    thin = "images/app_2+delta3.tar.zst"
    records = [record(held=3), record(archive=thin, held=3, omitted=3, delta_of=FULL)]
    (delivery,) = plan(records, delta=False, build=True)["deliveries"]
    assert delivery["file"] == FULL and not delivery["build"]


def test_bundle_with_only_a_thin_archive_refuses_a_host_without_the_baseline():
    thin = "images/app_2+delta3.tar.zst"
    result = plan([record(archive=thin, held=1, omitted=3, delta_of=FULL)])
    assert result["deliveries"] == []
    assert result["refused"] == [{"logical": FULL, "tags": ["app:2"], "needs": 3, "holds": 1, "reason": "layers"}]


def test_bundle_with_only_a_thin_archive_and_delta_off_says_so():
    thin = "images/app_2+delta3.tar.zst"
    (refused,) = plan([record(archive=thin, held=3, omitted=3, delta_of=FULL)], delta=False)["refused"]
    assert refused["reason"] == "delta off"


def test_container_snapshots_are_never_cut():
    snapshot = "containers/web.tar.zst"
    (delivery,) = plan([record(archive=snapshot, kind="container", held=1, diff_ids=["sha256:x"])], build=True)["deliveries"]
    assert delivery["file"] == snapshot and not delivery["build"]


def test_baseline_plan_cuts_what_the_baseline_holds():
    other = "images/tool_1.tar.zst"
    records = [record(), record(archive=other, diff_ids=["sha256:z"], tags=["tool:1"])]
    items = {i["logical"]: i for i in baseline_plan(records, [list(BASE) + ["sha256:old-top"]])}
    assert items[FULL]["build"] and items[FULL]["omitted"] == 3 and items[FULL]["exclude_layers"] == list(BASE)
    assert items[other] == {"logical": other, "file": other, "omitted": 0, "build": False}


def test_baseline_plan_counts_a_stack_not_scattered_layers():
    # The baseline holds b2 and b3 but on another bottom layer: nothing of app's stack is held.
    (item,) = baseline_plan([record()], [["sha256:other", "sha256:b2", "sha256:b3"]])
    assert not item["build"] and item["file"] == FULL


def test_cut_is_named_after_what_it_leaves_out_when_a_layer_repeats():
    # The empty layer e is held at the bottom and repeated above x: its data stays in the archive,
    # so only a is left out, and a re-run recognises the same cut instead of asking again.
    diff_ids = ["sha256:a", "sha256:e", "sha256:x", "sha256:e"]
    (cut,) = plan([record(held=2, diff_ids=diff_ids)], build=True)["deliveries"]
    assert (cut["omitted"], cut["file"], cut["exclude_layers"]) == (1, "images/app_2+delta1.tar.zst", ["sha256:a"])
    existing = record(archive=cut["file"], held=2, omitted=1, delta_of=FULL, diff_ids=diff_ids)
    (again,) = plan([record(held=2, diff_ids=diff_ids), existing], build=True)["deliveries"]
    assert again["file"] == cut["file"] and not again["build"]
