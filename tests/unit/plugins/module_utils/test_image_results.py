# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

from types import SimpleNamespace

from ansible_collections.airgap.docker.plugins.module_utils.archive_layout import ArchiveImage
from ansible_collections.airgap.docker.plugins.module_utils.image_results import (
    info_result,
    load_message,
    omitted_map,
    records_result,
    steps_result,
    tag_map,
    wanted_result,
)

KEYS = ["id", "tags", "config_digest", "manifest_digest", "fingerprint", "size", "diff_ids", "omitted_layers"]


def test_records_fill_defaults():
    assert records_result(None) == []
    entry = records_result([{"tags": None, "config_digest": "sha256:c"}])[0]
    assert list(entry) == KEYS
    assert entry == {"id": None, "tags": [], "config_digest": "sha256:c", "manifest_digest": None, "fingerprint": None,
                     "size": 0, "diff_ids": [], "omitted_layers": 0}


def test_wanted_and_steps_have_the_same_shape():
    image = ArchiveImage.from_dict({"config_digest": "sha256:c", "tags": ["a:1"], "diff_ids": ["sha256:l"], "size": 5,
                                    "fingerprint": "sha256:f", "omitted_layers": 1})
    want = SimpleNamespace(id="sha256:i", tags=["a:1"], archive_image=image, fingerprint="sha256:f", size=5,
                           diff_ids=["sha256:l"], omitted=1)
    step = SimpleNamespace(engine_id="sha256:i", image=image)
    assert wanted_result([want]) == steps_result([step])
    assert list(wanted_result([want])[0]) == KEYS
    no_image = wanted_result([SimpleNamespace(id="sha256:i", tags=[], archive_image=None, fingerprint=None, size=0,
                                              diff_ids=[], omitted=0)])[0]
    assert no_image["config_digest"] is None and no_image["manifest_digest"] is None


def test_diff_maps():
    images = [{"tags": ["a:1", "a:2"], "engine_id": "sha256:e", "omitted_layers": 2},
              {"tags": [], "config_digest": "sha256:" + "c" * 64}]
    assert tag_map(None) == {}
    assert tag_map(images) == {"a:1": "sha256:e", "a:2": "sha256:e",
                               "<untagged sha256:cccccccccccc>": "sha256:" + "c" * 64}
    assert omitted_map(images) == {"a:1": 2, "a:2": 2}


def test_load_message():
    image = SimpleNamespace(tags=["a:1"], config_digest="sha256:" + "c" * 64)
    missing = SimpleNamespace(engine_id=None, image=image, needs_load=True)
    assert load_message([missing], [], False, done=False) == "load the archive (not in the engine: a:1)"
    present = SimpleNamespace(engine_id="sha256:e", image=image, needs_load=False)
    assert load_message([present], [], True, done=True) == "loaded the archive (force is set)"
    assert load_message([], [("a:1", "sha256:e"), ("a:2", "sha256:e")], False, done=True) == "re-tagged a:1, a:2"


def test_info_result_describes_without_an_engine():
    image = ArchiveImage("sha256:c", tags=["app:1"], diff_ids=["sha256:a", "sha256:b"], os="linux", architecture="arm64",
                         size=1234, omitted_layers=1, created="2024-03-01T12:00:00Z")
    entry = info_result([image])[0]
    assert "id" not in entry
    assert (entry["platform"], entry["layers"], entry["omitted_layers"], entry["size"]) == ("linux/arm64", 2, 1, 1234)
    assert (entry["tags"], entry["diff_ids"], entry["created"]) == (["app:1"], ["sha256:a", "sha256:b"], "2024-03-01T12:00:00Z")
    assert info_result([ArchiveImage("sha256:d")])[0]["platform"] is None
