# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""image_info's manager with a fake engine: it reads, and changes nothing."""

from __future__ import annotations

from archive_factory import ImageSpec
from module_fakes import FakeEngine, run_module

from ansible_collections.airgap.docker.plugins.modules import image_info


def test_reports_present_and_missing_images(monkeypatch):
    spec = ImageSpec(tags=["busybox:latest"])
    engine = FakeEngine(images=[(spec.inspect(), ())])
    result = run_module(monkeypatch, image_info, {"images": ["busybox:latest", "absent:1"], "inventory": True}, engine=engine)
    assert result["changed"] is False
    present, absent = result["images"]
    assert present["present"] is True and present["id"] == spec.config_digest and present["diff_ids"] == spec.diff_ids
    assert absent == {"request": "absent:1", "present": False, "id": None, "tags": [], "fingerprint": None, "diff_ids": [],
                      "created": None, "size": 0}
    assert result["missing"] == 0 and result["inventory"]["layers"] == spec.diff_ids
    assert "seconds" in result["stats"]
    assert not engine.calls


def test_wanted_image_missing_from_the_engine(monkeypatch):
    spec = ImageSpec(tags=["app:1"])
    record = {"tags": ["app:1"], "config_digest": spec.config_digest, "diff_ids": spec.diff_ids, "fingerprint": "sha256:" + "f" * 64}
    result = run_module(monkeypatch, image_info, {"wanted": [record]}, engine=FakeEngine())
    assert result["missing"] == 1
    assert result["wanted"][0]["state"] == "missing" and result["wanted"][0]["held_layers"] == 0
