# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import pytest

from ansible_collections.airgap.docker.plugins.module_utils.archive_layout import ArchiveImage
from ansible_collections.airgap.docker.plugins.module_utils.thin_plan import plan_omissions, skippable_members

# plan_omissions -----------------------------------------------------------------------------


@pytest.mark.parametrize("diff_id_lists, held, expected", [
    ([["a", "b", "c"]], ["a", "b"], [2]),
    ([["a", "b", "c"]], ["a", "b", "c"], [3]),
    ([["a", "b", "c"]], [], [0]),
    ([["a", "b", "c"]], None, [0]),
    ([["a", "b", "c"]], ["b", "c"], [0]),  # held, but not at the bottom
    ([["a", "b", "c"]], ["a", "c"], [1]),  # the run stops at the first layer not held
    ([[]], ["a"], [0]),
    ([], ["a"], []),
    # two images over one held base: both leave it out
    ([["a", "b"], ["a", "c"]], ["a"], [1, 1]),
    # the second image carries b (its bottom layer is not held), so the first cannot leave b out
    ([["a", "b", "c"], ["x", "b"]], ["a", "b"], [1, 0]),
    # the first image carries a above an unheld layer: the second cannot leave a out at all
    ([["z", "a"], ["a", "b"]], ["a", "b"], [0, 0]),
    # narrowing cascades: c (third) carries a, so the first carries a and b, so the second carries b
    ([["a", "b"], ["b", "c"], ["z", "a"]], ["a", "b", "c"], [0, 0, 0]),
    # a layer repeated higher up in the same image (an empty layer) is carried by that image
    ([["a", "e", "x", "e"]], ["a", "e"], [1]),
    ([["a", "e", "f", "e"]], ["a", "e", "f"], [4]),
    # identical stacks
    ([["a", "b"], ["a", "b"]], ["a", "b"], [2, 2]),
])
def test_plan_omissions(diff_id_lists, held, expected):
    assert plan_omissions(diff_id_lists, held) == expected


def test_plan_omissions_result_is_self_consistent():
    """No image leaves out a layer that some image of the archive carries."""
    lists = [["a", "b", "c", "d"], ["a", "b", "x"], ["y", "c"], ["a", "q", "d"]]
    held = ["a", "b", "c", "d", "q"]
    counts = plan_omissions(lists, held)
    carried = {d for ids, n in zip(lists, counts) for d in ids[n:]}
    for ids, n in zip(lists, counts):
        assert set(ids[:n]) <= set(held)
        assert not set(ids[:n]) & carried
    # the third image carries c, so the first carries c and d, so the fourth carries d
    assert counts == [2, 2, 0, 2]


def test_plan_omissions_accepts_any_iterable_of_held_layers():
    assert plan_omissions([["a", "b"]], iter(["a"])) == [1]
    assert plan_omissions([["a", "b"]], ("a", "b")) == [2]


# skippable_members --------------------------------------------------------------------------


def image(tag, members_and_diff_ids):
    return ArchiveImage("sha256:" + tag, tags=[tag], layers=[m for m, _d in members_and_diff_ids],
                        diff_ids=[d for _m, d in members_and_diff_ids])


APP = image("app:2", [("base/layer.tar", "sha256:base"), ("lib/layer.tar", "sha256:lib"), ("app/layer.tar", "sha256:app")])
TOOL = image("tool:1", [("base/layer.tar", "sha256:base"), ("tool/layer.tar", "sha256:tool")])


def test_skippable_members_are_the_left_out_layers_no_image_carries():
    # both leave out the shared base: its member is skippable
    assert skippable_members([APP, TOOL], [1, 1]) == {"base/layer.tar"}
    # tool carries the base: nothing of it is skippable though app leaves it out
    assert skippable_members([APP, TOOL], [2, 0]) == {"lib/layer.tar"}
    assert skippable_members([APP, TOOL], [0, 0]) == set()
    assert skippable_members([APP, TOOL], [3, 2]) == set(APP.layers) | set(TOOL.layers)


def test_skippable_members_of_an_oci_archive_are_blob_paths():
    app = image("app:2", [("blobs/sha256/base", "sha256:base"), ("blobs/sha256/lib", "sha256:lib"), ("blobs/sha256/app", "sha256:app")])
    assert skippable_members([app], [2]) == {"blobs/sha256/base", "blobs/sha256/lib"}


def test_skippable_members_without_recorded_layers_is_empty():
    """A sidecar from before layers were recorded: nothing can be skipped safely."""
    old = ArchiveImage(APP.config_digest, tags=APP.tags, diff_ids=APP.diff_ids)
    assert skippable_members([old], [2]) == set()
    assert skippable_members([APP, old], [2, 2]) == set()
