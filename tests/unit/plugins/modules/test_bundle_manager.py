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


MIB = 1 << 20


def _archive_item(tmp_path, data, name="a.tar.zst"):
    """A bundle with one image archive (whole), and the `archives` item that describes it."""
    import hashlib

    (tmp_path / "images").mkdir(exist_ok=True)
    (tmp_path / "images" / name).write_bytes(data)
    sidecar = {
        "schema": 1, "kind": "images",
        "archive": {"size": len(data), "sha256": hashlib.sha256(data).hexdigest(), "compression": "zstd", "layout": "legacy"},
        "images": [{"config_digest": "sha256:" + "cd" * 32, "tags": ["app:1"], "diff_ids": ["sha256:" + "ab" * 32] * 2,
                    "fingerprint": "sha256:" + "ef" * 32, "created": "2026-01-02T03:04:05Z", "os": "linux",
                    "architecture": "amd64", "size": len(data)}],
        "engine": {"version": "20.10"}, "request": {"images": ["app:1"]},
    }
    return {"path": "images/" + name, "sidecar": sidecar}


def _present(monkeypatch, tmp_path, item, check_mode=False, **params):
    return run_module(monkeypatch, bundle, dict({"path": str(tmp_path), "state": "present", "archives": [item]}, **params),
                      check_mode=check_mode)


def test_split_check_run_check_run_then_join_again(tmp_path, monkeypatch):
    data = os.urandom(2 * MIB + 7)
    item = _archive_item(tmp_path, data)
    parts = ["images/a.tar.zst.part001", "images/a.tar.zst.part002", "images/a.tar.zst.part003"]
    checked = _present(monkeypatch, tmp_path, item, check_mode=True, split_size="1M")
    assert checked["changed"] and set(parts) <= set(checked["files"]["written"])
    assert os.listdir(tmp_path / "images") == ["a.tar.zst"]
    ran = _present(monkeypatch, tmp_path, item, split_size="1M")
    assert ran["changed"] and ran["files"]["removed"] == ["images/a.tar.zst"]
    assert sorted(os.listdir(tmp_path / "images")) == ["a.tar.zst.airgap.json"] + [p[7:] for p in parts]
    entry = ran["manifest"]["archives"][0]
    assert ran["manifest"]["schema"] == 3 and [p["path"] for p in entry["parts"]] == parts
    assert b"".join((tmp_path / p).read_bytes() for p in parts) == data
    sums = (tmp_path / "SHA256SUMS").read_text()
    assert all(p in sums for p in parts) and "images/a.tar.zst\n" not in sums
    for check_mode in (True, False):
        again = _present(monkeypatch, tmp_path, item, check_mode=check_mode, split_size="1M")
        assert not again["changed"], again["files"]
    verified = run_module(monkeypatch, bundle, {"path": str(tmp_path)})
    assert verified["msg"].startswith("the bundle %s is intact" % tmp_path)
    joined = _present(monkeypatch, tmp_path, item)
    assert joined["changed"] and sorted(joined["files"]["removed"]) == parts
    assert (tmp_path / "images" / "a.tar.zst").read_bytes() == data and joined["manifest"]["schema"] == 1


def test_parts_split_again_at_another_size(tmp_path, monkeypatch):
    data = os.urandom(5 * MIB)
    item = _archive_item(tmp_path, data)
    _present(monkeypatch, tmp_path, item, split_size="1M")
    ran = _present(monkeypatch, tmp_path, item, split_size="2M")
    assert ran["changed"] and [p["size"] for p in ran["manifest"]["archives"][0]["parts"]] == [2 * MIB, 2 * MIB, MIB]
    assert sorted(os.listdir(tmp_path / "images"))[1:] == ["a.tar.zst.part001", "a.tar.zst.part002", "a.tar.zst.part003"]
    assert b"".join((tmp_path / "images" / ("a.tar.zst.part00%d" % n)).read_bytes() for n in (1, 2, 3)) == data


def test_a_whole_archive_that_does_not_match_is_not_split(tmp_path, monkeypatch):
    item = _archive_item(tmp_path, os.urandom(3 * MIB))
    (tmp_path / "images" / "a.tar.zst").write_bytes(os.urandom(3 * MIB))
    with pytest.raises(Failed) as failed:
        _present(monkeypatch, tmp_path, item, split_size="1M")
    assert "it changed or is another archive; it was not laid out again" in failed.value.result["msg"]
    assert sorted(os.listdir(tmp_path / "images")) == ["a.tar.zst"]


@pytest.mark.parametrize("damage, problem", [
    ("missing", "images/a.tar.zst.part002 is missing from the bundle"),
    ("damaged", "a.tar.zst.part002 has sha256"),
    ("reordered", "a.tar.zst.part001 has sha256"),
])
def test_info_reports_and_verified_refuses_a_bad_part_by_name(tmp_path, monkeypatch, damage, problem):
    data = os.urandom(3 * MIB)
    _present(monkeypatch, tmp_path, _archive_item(tmp_path, data), split_size="1M")
    part1, part2 = tmp_path / "images" / "a.tar.zst.part001", tmp_path / "images" / "a.tar.zst.part002"
    if damage == "missing":
        part2.unlink()
    elif damage == "damaged":
        part2.write_bytes(b"\0" + part2.read_bytes()[1:])
    else:
        first = part1.read_bytes()
        part1.write_bytes(part2.read_bytes())
        part2.write_bytes(first)
    info = run_module(monkeypatch, bundle, {"path": str(tmp_path), "state": "inspected"})
    assert info["changed"] is False and info["verified"] is False
    assert problem in info["problems"][0] and "does NOT verify" in info["msg"]
    with pytest.raises(Failed) as failed:
        run_module(monkeypatch, bundle, {"path": str(tmp_path)})
    assert problem in failed.value.result["msg"]


def test_info_describes_a_bundle_without_an_engine(tmp_path, monkeypatch):
    data = os.urandom(3 * MIB)
    _present(monkeypatch, tmp_path, _archive_item(tmp_path, data), split_size="1M")
    info = run_module(monkeypatch, bundle, {"path": str(tmp_path), "state": "inspected"}, check_mode=True)
    assert info["verified"] is True and info["problems"] == [] and info["signed"] is False
    assert info["summary"]["totals"] == {"archives": 1, "images": 1, "bytes": len(data), "files": 3}
    assert info["summary"]["images"][0]["platform"] == "linux/amd64" and info["summary"]["images"][0]["layers"] == 2
    assert info["summary"]["archives"][0]["parts"] == 3
    assert info["msg"] == "the bundle %s holds 1 image(s) in 1 archive(s), %d bytes; it verifies" % (tmp_path, len(data))


@pytest.mark.parametrize("first, then", [(None, "1M"), ("1M", "2M"), ("2M", None)])
def test_check_mode_reports_the_files_the_run_writes_and_removes(tmp_path, monkeypatch, first, then):
    item = _archive_item(tmp_path, os.urandom(5 * MIB))
    _present(monkeypatch, tmp_path, item, **({"split_size": first} if first else {}))
    options = {"split_size": then} if then else {}
    checked = _present(monkeypatch, tmp_path, item, check_mode=True, **options)
    ran = _present(monkeypatch, tmp_path, item, **options)
    assert checked["files"] == ran["files"] and ran["changed"], (checked["files"], ran["files"])
    assert [p["path"] for p in checked["manifest"]["archives"][0].get("parts") or []] == \
        [p["path"] for p in ran["manifest"]["archives"][0].get("parts") or []]


def test_an_archive_named_like_a_part_is_refused(tmp_path, monkeypatch):
    item = _archive_item(tmp_path, os.urandom(MIB), name="x.tar.part001")
    with pytest.raises(Failed) as failed:
        _present(monkeypatch, tmp_path, item)
    assert failed.value.result["msg"] == "images/x.tar.part001 is named like a part of a split archive (.partNNN); give the archive another name."


def test_a_whole_file_that_is_not_the_archive_gives_way_to_its_verified_parts(tmp_path, monkeypatch):
    data = os.urandom(3 * MIB)
    item = _archive_item(tmp_path, data)
    _present(monkeypatch, tmp_path, item, split_size="1M")
    (tmp_path / "images" / "a.tar.zst").write_bytes(b"\0" * len(data))  # same size, not the archive
    joined = _present(monkeypatch, tmp_path, item)
    assert joined["changed"] and (tmp_path / "images" / "a.tar.zst").read_bytes() == data
    assert sorted(os.listdir(tmp_path / "images")) == ["a.tar.zst", "a.tar.zst.airgap.json"]
