# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""image_archive's manager with a fake engine: what it decides, and that check mode writes nothing."""

from __future__ import annotations

import os

import pytest
from archive_factory import ImageSpec, legacy_archive
from module_fakes import Failed, FakeEngine, run_module

from ansible_collections.airgap.docker.plugins.modules import image_archive


def _archive(tmp_path, name="app.tar"):
    spec = ImageSpec(tags=["busybox:latest"])
    path = tmp_path / name
    path.write_bytes(legacy_archive([spec]))
    return spec, str(path)


def _engine_with(spec):
    return FakeEngine(images=[(spec.inspect(), ())])


def test_load_of_images_the_engine_holds_changes_nothing(tmp_path, monkeypatch):
    spec, path = _archive(tmp_path)
    engine = _engine_with(spec)
    result = run_module(monkeypatch, image_archive, {"path": path, "state": "loaded"}, engine=engine)
    assert result["changed"] is False
    assert result["msg"] == "all 1 image(s) of the archive are in the engine with their tags"
    assert result["actions"] == ["skipped"]
    assert result["images"][0]["id"] == spec.config_digest
    assert result["images"][0]["tags"] == ["busybox:latest"]
    assert result["archive"]["layout"] == "legacy" and result["archive"]["compression"] == "none"
    assert result["stats"]["archive_bytes_read"] == os.path.getsize(path)
    assert "seconds" in result["stats"] and "peak_rss_bytes" in result["stats"]
    assert not [call for call in engine.calls if call[0] == "tag"]
    # The archive read is remembered: the re-run decides from a stat.
    again = run_module(monkeypatch, image_archive, {"path": path, "state": "loaded"}, engine=engine)
    assert again["changed"] is False and again["stats"]["archive_bytes_read"] == 0


def test_load_in_check_mode_predicts_the_load_without_loading(tmp_path, monkeypatch):
    _spec, path = _archive(tmp_path)
    result = run_module(monkeypatch, image_archive, {"path": path, "state": "loaded"}, check_mode=True, diff=True,
                        engine=FakeEngine())
    assert result["changed"] is True
    assert result["msg"] == "would load the archive (not in the engine: busybox:latest)"
    assert result["actions"] == ["loaded"]
    assert result["images"][0]["id"] is None
    assert result["diff"]["before"] == {"tags": {"busybox:latest": None}}


def test_load_retags_when_the_tag_points_elsewhere_in_check_mode(tmp_path, monkeypatch):
    spec, path = _archive(tmp_path)
    engine = FakeEngine(images=[(spec.inspect(repo_tags=[]), ())])
    result = run_module(monkeypatch, image_archive, {"path": path, "state": "loaded"}, check_mode=True, engine=engine)
    assert result["changed"] is True
    assert result["msg"] == "would re-tag busybox:latest"
    assert result["actions"] == ["retagged"]
    assert engine.calls == [("check_platform_support", None)]


def test_save_of_what_the_archive_holds_changes_nothing(tmp_path, monkeypatch):
    spec, path = _archive(tmp_path)
    before = os.stat(path)
    result = run_module(monkeypatch, image_archive, {"path": path, "images": ["busybox"]}, engine=_engine_with(spec))
    assert result["changed"] is False
    assert result["msg"] == "the archive already holds exactly the requested images"
    # An archive this host read (not wrote) records no engine ID.
    assert result["images"][0]["config_digest"] == spec.config_digest and result["images"][0]["id"] is None
    assert os.stat(path).st_mtime_ns == before.st_mtime_ns
    assert result["sidecar"]["images"][0]["tags"] == ["busybox:latest"]


def test_save_in_check_mode_writes_nothing(tmp_path, monkeypatch):
    spec = ImageSpec(tags=["busybox:latest"])
    path = str(tmp_path / "new.tar.gz")
    result = run_module(monkeypatch, image_archive, {"path": path, "images": ["busybox:latest"]}, check_mode=True,
                        engine=_engine_with(spec))
    assert result["changed"] is True
    assert result["msg"] == "would save: the archive does not exist"
    assert result["actions"] == ["saved"]
    assert "archive" not in result and "sidecar" not in result
    assert result["images"] == [{"id": spec.config_digest, "tags": ["busybox:latest"], "config_digest": None,
                                 "manifest_digest": None, "fingerprint": result["images"][0]["fingerprint"],
                                 "size": spec.layers_size, "diff_ids": spec.diff_ids, "omitted_layers": 0}]
    assert not os.path.exists(path)


def test_from_archive_must_be_another_file(tmp_path, monkeypatch):
    _spec, path = _archive(tmp_path)
    with pytest.raises(Failed) as failed:
        run_module(monkeypatch, image_archive, {"path": path, "images": ["busybox"], "from_archive": path},
                   engine=FakeEngine())
    assert failed.value.result == {"msg": "from_archive must name another file than path (%s)." % path}


def test_platform_cannot_be_combined_with_from_archive(tmp_path, monkeypatch):
    _spec, source = _archive(tmp_path)
    with pytest.raises(Failed) as failed:
        run_module(monkeypatch, image_archive, {"path": str(tmp_path / "out.tar"), "images": ["busybox"], "from_archive": source,
                                                "platform": "linux/arm64"}, engine=FakeEngine())
    assert failed.value.result["msg"] == ("platform cannot be combined with from_archive: the images come from the "
                                          "archive as they are.")


def test_load_of_a_missing_archive_fails_in_one_sentence(tmp_path, monkeypatch):
    path = str(tmp_path / "missing.tar")
    with pytest.raises(Failed) as failed:
        run_module(monkeypatch, image_archive, {"path": path, "state": "loaded"}, engine=FakeEngine())
    assert failed.value.result["msg"] == "The archive %s does not exist." % path


def test_load_with_another_checksum_fails_before_the_engine_gets_anything(tmp_path, monkeypatch):
    _spec, path = _archive(tmp_path)
    with pytest.raises(Failed) as failed:
        run_module(monkeypatch, image_archive, {"path": path, "state": "loaded", "checksum": "sha256:" + "0" * 64},
                   engine=FakeEngine())
    assert "according to a read of the file, but checksum asks for" in failed.value.result["msg"]


def test_absent_without_archive_changes_nothing(tmp_path, monkeypatch):
    result = run_module(monkeypatch, image_archive, {"path": str(tmp_path / "none.tar"), "state": "absent"},
                        engine=FakeEngine())
    assert (result["changed"], result["msg"], result["actions"]) == (False, "the archive does not exist", ["skipped"])


def test_absent_in_check_mode_removes_nothing(tmp_path, monkeypatch):
    _spec, path = _archive(tmp_path)
    result = run_module(monkeypatch, image_archive, {"path": path, "state": "absent"}, check_mode=True, engine=FakeEngine())
    assert (result["changed"], result["msg"]) == (True, "would remove " + path)
    assert os.path.exists(path)


def _no_connection(_params):
    raise AssertionError("the module connected to the engine")


def test_thin_archive_from_archive_never_connects_to_the_engine(tmp_path, monkeypatch):
    spec, source = _archive(tmp_path)
    out = str(tmp_path / "thin.tar")
    params = {"path": out, "images": ["busybox:latest"], "from_archive": source, "exclude_layers": spec.diff_ids[:1]}
    predicted = run_module(monkeypatch, image_archive, params, check_mode=True, connect=_no_connection)
    assert predicted["changed"] is True and not os.path.exists(out)
    written = run_module(monkeypatch, image_archive, params, connect=_no_connection)
    assert written["changed"] is True and written["images"][0]["omitted_layers"] == 1
    again = run_module(monkeypatch, image_archive, params, connect=_no_connection)
    assert again["changed"] is False
