# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import pytest
from archive_factory import ImageSpec, layer_tar

from ansible_collections.airgap.docker.plugins.module_utils.archive_layout import ArchiveImage
from ansible_collections.airgap.docker.plugins.module_utils.errors import ArchiveError, MissingLayers
from ansible_collections.airgap.docker.plugins.module_utils.image_plans import engine_tags
from ansible_collections.airgap.docker.plugins.module_utils.layer_inventory import LayerInventory

A, B, C, D, E = ("sha256:" + c * 64 for c in "abcde")


def inventory(*stacks):
    return LayerInventory([{"id": "sha256:%064d" % n, "tags": [], "diff_ids": list(stack)} for n, stack in enumerate(stacks)])


# held_run -----------------------------------------------------------------------------------


@pytest.mark.parametrize("stacks, diff_ids, expected", [
    ([[A, B, C]], [A, B, C], 3),
    ([[A, B, C]], [A, B], 2),  # a shorter stack is held as the bottom of a longer one
    ([[A, B]], [A, B, C], 2),
    ([[A, B, C]], [A, C], 1),
    ([[A, B, C]], [A, D, C], 1),  # C matches its position, but above a layer the stack lacks
    ([[A, B, C]], [D, B, C], 0),
    ([[A, B, C]], [B, C], 0),  # B and C are held only above A: not this stack
    ([[A, B, C]], [C], 0),
    ([[A]], [], 0),
    ([], [A], 0),
    ([[A, B], [A, C, D]], [A, C, D, E], 3),  # the best of several stacks
    ([[A, C, D], [A, B]], [A, B, E], 2),
    ([[D, A, B], [C]], [A, B], 0),  # the same layers in the middle of a stack do not count
    ([[]], [A], 0),
])
def test_held_run(stacks, diff_ids, expected):
    assert inventory(*stacks).held_run(diff_ids) == expected


def test_held_run_does_not_mix_stacks():
    # A then B exist, but never as one stack
    assert inventory([A, C], [B, A, B]).held_run([A, B]) == 1


def test_layers_lists_every_diff_id_once_sorted():
    assert inventory([C, A], [A, B], []).layers() == [A, B, C]
    assert inventory().layers() == []


# from_engine --------------------------------------------------------------------------------


class FakeEngine:
    def __init__(self, infos, vanished=()):
        self.infos = {info["Id"]: info for info in infos}
        self.vanished = set(vanished)
        self.inspected = []

    def list_images(self):
        return [{"Id": image_id} for image_id in list(self.infos) + sorted(self.vanished)]

    def inspect(self, image_id):
        self.inspected.append(image_id)
        return None if image_id in self.vanished else self.infos[image_id]


def spec(tags, *contents):
    return ImageSpec(tags=tags, layers=[layer_tar({"f": content}) for content in contents], runtime={"Cmd": list(tags) or ["x"]})


def test_from_engine_reads_ids_tags_and_layers():
    base, app = spec(["busybox:latest", "docker.io/library/busybox:1"], b"base"), spec(["app:1"], b"base", b"app")
    engine = FakeEngine([base.inspect(), app.inspect()])
    inv = LayerInventory.from_engine(engine.list_images, engine.inspect, engine_tags)
    assert inv.images == [
        {"id": base.config_digest, "tags": ["busybox:1", "busybox:latest"], "diff_ids": base.diff_ids},
        {"id": app.config_digest, "tags": ["app:1"], "diff_ids": app.diff_ids},
    ]
    assert inv.held_run(app.diff_ids) == 2
    assert inv.layers() == sorted(set(app.diff_ids))


def test_from_engine_skips_an_image_removed_between_list_and_inspect():
    kept = spec(["app:1"], b"one")
    engine = FakeEngine([kept.inspect()], vanished=["sha256:" + "9" * 64])
    inv = LayerInventory.from_engine(engine.list_images, engine.inspect, engine_tags)
    assert "sha256:" + "9" * 64 in engine.inspected  # it was looked for
    assert [image["id"] for image in inv.images] == [kept.config_digest]


def test_from_engine_uses_the_inspected_id_and_tolerates_missing_rootfs():
    info = {"Id": "sha256:" + "1" * 64, "RepoTags": None}
    asked = []

    def inspect(ref):
        asked.append(ref)
        return info

    def list_images():
        return [{"Id": "1" * 12}]  # a listing may name an image by a short ID

    inv = LayerInventory.from_engine(list_images, inspect, engine_tags)
    assert asked == ["1" * 12]
    assert inv.images == [{"id": "sha256:" + "1" * 64, "tags": [], "diff_ids": []}]
    info["RootFS"] = {"Type": "layers", "Layers": None}
    assert LayerInventory.from_engine(list_images, inspect, engine_tags).images[0]["diff_ids"] == []


def test_from_engine_of_an_empty_engine():
    inv = LayerInventory.from_engine(lambda: [], lambda ref: pytest.fail("nothing to inspect"), engine_tags)
    assert inv.images == [] and inv.layers() == [] and inv.held_run([A]) == 0


# check_holds --------------------------------------------------------------------------------


def thin_image(diff_ids, omitted, tags=("app:2",)):
    return ArchiveImage("sha256:" + "c" * 64, tags=list(tags), diff_ids=list(diff_ids), omitted_layers=omitted)


@pytest.mark.parametrize("stacks, omitted", [
    ([[A, B]], 2),
    ([[A, B, C, D]], 2),
    ([[A]], 1),
    ([[E], [A, B, E]], 2),
    ([], 0),  # a full archive needs nothing
])
def test_check_holds_passes_when_the_engine_holds_the_left_out_layers(stacks, omitted):
    assert inventory(*stacks).check_holds(thin_image([A, B, C], omitted), "node1") is None


def test_check_holds_names_the_first_missing_layer_and_the_host():
    with pytest.raises(MissingLayers) as info:
        inventory([A, C]).check_holds(thin_image([A, B, C], 3), "node1.example.com")
    message = info.value.msg
    assert isinstance(info.value, ArchiveError)
    assert "node1.example.com" in message
    assert "lacks layer 2 (%s)" % B in message
    assert "and the 1 above it" in message
    assert "bottom 3 layer(s) of app:2" in message


def test_check_holds_missing_the_bottom_layer():
    with pytest.raises(MissingLayers) as info:
        inventory([B, A]).check_holds(thin_image([A, B], 2), "h")
    assert "lacks layer 1 (%s) and the 1 above it" % A in info.value.msg


def test_check_holds_missing_only_the_top_required_layer():
    with pytest.raises(MissingLayers) as info:
        inventory([A, B]).check_holds(thin_image([A, B, C, D], 3), "h")
    assert "lacks layer 3 (%s) on top of the 2 below it." % C in info.value.msg
    assert "above it" not in info.value.msg


def test_check_holds_names_an_untagged_image_by_config_digest():
    with pytest.raises(MissingLayers) as info:
        inventory().check_holds(thin_image([A], 1, tags=()), "h")
    assert "sha256:" + "c" * 64 in info.value.msg


def test_check_holds_ignores_layers_above_the_left_out_ones():
    # the engine holds A but not B: enough for an image that leaves out only A
    inventory([A]).check_holds(thin_image([A, B, C], 1), "h")
    with pytest.raises(MissingLayers):
        inventory([A]).check_holds(thin_image([A, B, C], 2), "h")
