# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""container_archive's manager with a fake engine: what it decides, and that check mode writes nothing."""

from __future__ import annotations

import os

import pytest
from archive_factory import layer_tar
from module_fakes import Failed, FakeEngine, run_module

from ansible_collections.airgap.docker.plugins.modules import container_archive

STOPPED = {"Running": False, "Paused": False, "Status": "exited", "StartedAt": "2024-05-01T10:00:00.1Z",
           "FinishedAt": "2024-05-01T11:00:00.2Z"}


def _container(state=None):
    return {"Id": "c" * 64, "Name": "/legacy", "Image": "sha256:" + "1" * 64, "Config": {"Image": "legacy:1", "Cmd": ["run"]},
            "State": dict(STOPPED, **(state or {}))}


def test_export_in_check_mode_writes_nothing(tmp_path, monkeypatch):
    path = str(tmp_path / "legacy.tar")
    engine = FakeEngine(containers={"legacy": _container()})
    result = run_module(monkeypatch, container_archive, {"path": path, "container": "legacy"}, check_mode=True, engine=engine)
    assert result["changed"] is True
    assert result["msg"] == "would export: the archive does not exist"
    assert result["actions"] == ["exported"]
    assert result["container"] == {"id": "c" * 64, "name": "legacy", "image": "legacy:1", "image_id": "sha256:" + "1" * 64,
                                   "started_at": STOPPED["StartedAt"], "finished_at": STOPPED["FinishedAt"], "running": False}
    assert "archive" not in result
    assert not os.path.exists(path)


def test_export_of_a_missing_container_fails_in_one_sentence(tmp_path, monkeypatch):
    with pytest.raises(Failed) as failed:
        run_module(monkeypatch, container_archive, {"path": str(tmp_path / "x.tar"), "container": "nope"}, engine=FakeEngine())
    assert failed.value.result == {"msg": "No container nope in the engine at %s." % FakeEngine.host}


def test_export_of_a_dead_container_fails(tmp_path, monkeypatch):
    engine = FakeEngine(containers={"legacy": _container({"Status": "dead", "Dead": True})})
    with pytest.raises(Failed) as failed:
        run_module(monkeypatch, container_archive, {"path": str(tmp_path / "x.tar"), "container": "legacy"}, engine=engine)
    assert failed.value.result["msg"] == "Container legacy is dead; its filesystem cannot be exported."


def test_import_of_a_missing_archive_fails(tmp_path, monkeypatch):
    path = str(tmp_path / "missing.tar")
    with pytest.raises(Failed) as failed:
        run_module(monkeypatch, container_archive, {"path": path, "state": "imported", "image": "legacy:snap"},
                   engine=FakeEngine())
    assert failed.value.result["msg"] == "The archive %s does not exist." % path


def test_import_decides_from_the_engine(tmp_path, monkeypatch):
    path = tmp_path / "plain.tar"
    path.write_bytes(layer_tar({"etc/hostname": b"legacy\n"}))
    params = {"path": str(path), "state": "imported", "image": "legacy:snap"}
    engine = FakeEngine()

    # Check mode predicts the import, and the engine gets nothing.
    predicted = run_module(monkeypatch, container_archive, params, check_mode=True, engine=engine)
    assert predicted["changed"] is True
    assert predicted["msg"] == "would import: no image from this archive and configuration in the engine"
    assert predicted["actions"] == ["imported"]
    assert predicted["image"]["id"] is None and predicted["image"]["tags"] == ["legacy:snap"]
    assert predicted["archive"]["path"] == str(path) and predicted["archive"]["compression"] == "none"

    # The image built from this archive and configuration is there with its tag: nothing to do.
    digest = predicted["image"]["config_digest"]
    engine.add_image({"Id": digest, "RepoTags": ["legacy:snap"]})
    result = run_module(monkeypatch, container_archive, params, engine=engine)
    assert result["changed"] is False
    assert result["msg"] == "image legacy:snap already exists, built from this archive with this configuration"
    assert result["image"]["id"] == digest
    assert not engine.calls


def test_import_with_another_checksum_fails(tmp_path, monkeypatch):
    path = tmp_path / "plain.tar"
    path.write_bytes(layer_tar({"etc/hostname": b"legacy\n"}))
    with pytest.raises(Failed) as failed:
        run_module(monkeypatch, container_archive, {"path": str(path), "state": "imported", "image": "legacy:snap",
                                                    "checksum": "0" * 64}, engine=FakeEngine())
    assert failed.value.result["msg"].endswith(
        "but checksum asks for %s: it is not the expected archive. Nothing was imported." % ("0" * 64))


def test_absent_without_archive_changes_nothing(tmp_path, monkeypatch):
    result = run_module(monkeypatch, container_archive, {"path": str(tmp_path / "x.tar"), "state": "absent"},
                        engine=FakeEngine())
    assert (result["changed"], result["msg"]) == (False, "the archive does not exist")
