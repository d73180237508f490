# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The bundle module's manager: what it decides, that check mode writes nothing, its errors through run_manager."""

from __future__ import annotations

import os

import pytest
from module_fakes import Failed, run_module

from ansible_collections.airgap.docker.plugins.modules import bundle


def test_present_in_check_mode_writes_nothing(tmp_path, monkeypatch):
    result = run_module(monkeypatch, bundle, {"path": str(tmp_path), "state": "present"}, check_mode=True)
    assert result["changed"] is True
    assert result["msg"] == "would update the bundle %s (0 archive(s))" % tmp_path
    assert result["files"] == {"written": ["SHA256SUMS", "manifest.json"], "removed": []}
    assert "stats" not in result
    assert os.listdir(tmp_path) == []


def test_present_twice_changes_nothing_the_second_time(tmp_path, monkeypatch):
    first = run_module(monkeypatch, bundle, {"path": str(tmp_path), "state": "present", "source": {"site": "a"}})
    assert first["changed"] is True and first["msg"] == "updated the bundle %s (0 archive(s))" % tmp_path
    second = run_module(monkeypatch, bundle, {"path": str(tmp_path), "state": "present", "source": {"site": "a"}})
    assert second["changed"] is False
    assert second["msg"] == "up to date: the bundle %s (0 archive(s))" % tmp_path
    assert second["files"] == {"written": [], "removed": []}
    verified = run_module(monkeypatch, bundle, {"path": str(tmp_path)})
    assert verified["changed"] is False
    assert verified["msg"] == "the bundle %s is intact (0 archive(s))" % tmp_path
    assert verified["bytes_hashed"] == 0 and verified["signer"] is None
    assert "stats" not in verified


def test_verify_without_manifest_fails_in_one_sentence(tmp_path, monkeypatch):
    with pytest.raises(Failed) as failed:
        run_module(monkeypatch, bundle, {"path": str(tmp_path)})
    assert failed.value.result == {"msg": "%s is not a bundle: it has no manifest.json." % tmp_path}


def test_verify_of_a_missing_directory_fails(tmp_path, monkeypatch):
    path = str(tmp_path / "nowhere")
    with pytest.raises(Failed) as failed:
        run_module(monkeypatch, bundle, {"path": path})
    assert failed.value.result["msg"] == "The bundle directory %s does not exist." % path


def test_the_module_has_no_engine_options(monkeypatch):
    seen = {}

    def build_module(argument_spec, engine=True, **kwargs):
        seen.update(engine=engine, options=set(argument_spec))
        raise RuntimeError("stop")

    monkeypatch.setattr(bundle, "build_module", build_module)
    with pytest.raises(RuntimeError):
        bundle.main()
    assert seen["engine"] is False and "docker_host" not in seen["options"]
