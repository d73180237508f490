# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Split archives through the managers of image_archive and container_archive, with a fake engine:
split_size on a save (from an archive, so no engine is needed), loads and state=inspected from parts."""

from __future__ import annotations

import hashlib
import json
import os

import pytest
from archive_factory import ImageSpec, layer_tar, legacy_archive, random_bytes
from module_fakes import Failed, FakeEngine, run_module

from ansible_collections.airgap.docker.plugins.modules import container_archive, image_archive

MIB = 1 << 20


def _no_connection(_params):
    raise AssertionError("the module connected to the engine")


@pytest.fixture
def media(tmp_path):
    """The directory of the archives (the memo lives beside it, in tmp_path)."""
    path = tmp_path / "media"
    path.mkdir()
    return path


@pytest.fixture
def source(media):
    """A full image archive of about 3 MiB (an incompressible layer), without sidecar."""
    spec = ImageSpec(tags=["app:1"], layers=[layer_tar({"blob": random_bytes(7, 3 * MIB + 12345)})])
    path = media / "full.tar"
    path.write_bytes(legacy_archive([spec]))
    return spec, str(path)


def _cut(monkeypatch, source, out, check_mode=False, **extra):
    """A thin cut with no layer left out (from_archive): written without any engine."""
    params = {"path": out, "images": ["app:1"], "from_archive": source}
    params.update(extra)
    return run_module(monkeypatch, image_archive, params, check_mode=check_mode, connect=_no_connection)


def _names(directory):
    return sorted(name for name in os.listdir(directory) if not name.startswith("full.tar"))


def _sidecar(path):
    with open(path + ".airgap.json") as handle:
        return json.load(handle)


def _joined(path, count):
    data = b""
    for number in range(1, count + 1):
        with open("%s.part%03d" % (path, number), "rb") as handle:
            data += handle.read()
    return data


def test_save_with_split_size_writes_parts_and_is_idempotent(tmp_path, media, monkeypatch, source):
    _spec, full = source
    out = str(media / "cut.tar")
    steps = [_cut(monkeypatch, full, out, check_mode=check, split_size="1M") for check in (True, False, True, False)]
    assert [s["changed"] for s in steps] == [True, True, False, False]
    assert _names(str(media)) == ["cut.tar.airgap.json"] + ["cut.tar.part%03d" % n for n in (1, 2, 3, 4)]
    meta = _sidecar(out)
    whole = _joined(out, 4)
    assert meta["archive"]["size"] == len(whole) and meta["archive"]["sha256"] == hashlib.sha256(whole).hexdigest()
    parts = meta["archive"]["parts"]
    assert [p["name"] for p in parts] == ["cut.tar.part%03d" % n for n in range(1, 5)]
    assert [p["size"] for p in parts] == [MIB, MIB, MIB, len(whole) - 3 * MIB]
    assert parts[1]["sha256"] == hashlib.sha256(whole[MIB:2 * MIB]).hexdigest()
    assert steps[1]["archive"]["parts"] == parts and steps[3]["archive"]["parts"] == parts
    assert steps[3]["stats"]["archive_bytes_read"] == 0, "a re-run decides from the parts' stat"


def test_another_split_size_lays_the_archive_out_again_from_its_own_bytes(tmp_path, media, monkeypatch, source):
    _spec, full = source
    out = str(media / "cut.tar")
    _cut(monkeypatch, full, out, split_size="1M")
    whole = _joined(out, 4)
    checked = _cut(monkeypatch, full, out, check_mode=True, split_size="2M")
    assert checked["changed"] and checked["actions"] == ["relaid"] and os.path.exists(out + ".part004")
    relaid = _cut(monkeypatch, full, out, split_size="2M")
    assert relaid["msg"] == ("laid the archive out again: it is held as 4 parts of up to 1048576 bytes, and split_size "
                             "asks for 2 parts of 2097152 bytes")
    assert _names(str(media)) == ["cut.tar.airgap.json", "cut.tar.part001", "cut.tar.part002"]
    assert _joined(out, 2) == whole
    assert [p["size"] for p in _sidecar(out)["archive"]["parts"]] == [2 * MIB, len(whole) - 2 * MIB]
    assert _cut(monkeypatch, full, out, split_size="2M")["changed"] is False
    joined = _cut(monkeypatch, full, out)
    assert joined["changed"] and joined["actions"] == ["relaid"]
    assert _names(str(media)) == ["cut.tar", "cut.tar.airgap.json"]
    with open(out, "rb") as handle:
        assert handle.read() == whole
    assert "parts" not in _sidecar(out)["archive"] and "parts" not in joined["archive"]
    assert _cut(monkeypatch, full, out)["changed"] is False


def test_an_archive_under_the_limit_stays_whole_and_stale_parts_go(tmp_path, media, monkeypatch, source):
    _spec, full = source
    out = str(media / "cut.tar")
    _cut(monkeypatch, full, out, split_size="1M")
    # The archive grows no larger than 8 MiB: one file, and the parts of the earlier split go.
    result = _cut(monkeypatch, full, out, split_size="8M")
    assert result["changed"] and _names(str(media)) == ["cut.tar", "cut.tar.airgap.json"]


def test_absent_removes_every_part(tmp_path, media, monkeypatch, source):
    _spec, full = source
    out = str(media / "cut.tar")
    _cut(monkeypatch, full, out, split_size="1M")
    absent = {"path": out + ".part001", "state": "absent"}
    results = [run_module(monkeypatch, image_archive, absent, check_mode=check, connect=_no_connection)
               for check in (True, False, True, False)]
    assert [r["changed"] for r in results] == [True, True, False, False]
    assert _names(str(media)) == []


def test_a_split_size_that_is_no_size_fails_in_one_sentence(tmp_path, media, monkeypatch, source):
    _spec, full = source
    with pytest.raises(Failed) as failed:
        _cut(monkeypatch, full, str(media / "cut.tar"), split_size="4 pages")
    assert failed.value.result["msg"] == ("'4 pages' is not a size: give bytes, or a number with K, M, G or T (powers of "
                                          "1024), for example 4095M.")


def _split(tmp_path, media, monkeypatch, source, name="cut.tar"):
    out = str(media / name)
    _cut(monkeypatch, source[1], out, split_size="1M")
    # Another host: what this one verified is not known there.
    monkeypatch.setenv("AIRGAP_DOCKER_CACHE", str(tmp_path / "other-cache"))
    return out


@pytest.mark.parametrize("named", ["archive", "part001"])
def test_load_reads_the_parts_as_one_archive(tmp_path, media, monkeypatch, source, named):
    spec, _full = source
    out = _split(tmp_path, media, monkeypatch, source)
    path = out if named == "archive" else out + ".part001"
    engine = FakeEngine(images=[(spec.inspect(), ())])
    result = run_module(monkeypatch, image_archive, {"path": path, "state": "loaded"}, engine=engine)
    assert result["changed"] is False and result["archive"]["path"] == out
    assert [p["name"] for p in result["archive"]["parts"]] == ["cut.tar.part%03d" % n for n in range(1, 5)]
    assert result["stats"]["archive_bytes_read"] == _sidecar(out)["archive"]["size"]
    again = run_module(monkeypatch, image_archive, {"path": path, "state": "loaded"}, engine=engine)
    assert again["stats"]["archive_bytes_read"] == 0, "what was verified of the parts is remembered"


def test_a_missing_part_is_named_before_anything_is_read(tmp_path, media, monkeypatch, source):
    out = _split(tmp_path, media, monkeypatch, source)
    os.unlink(out + ".part004")
    with pytest.raises(Failed) as failed:
        run_module(monkeypatch, image_archive, {"path": out, "state": "loaded"}, engine=FakeEngine())
    assert failed.value.result["msg"] == ("%s.part004 is missing: %s is held as numbered parts and only 3 part(s) from "
                                          "part001 on are there; nothing was loaded." % (out, out))


def test_a_damaged_part_is_named(tmp_path, media, monkeypatch, source):
    out = _split(tmp_path, media, monkeypatch, source)
    with open(out + ".part002", "r+b") as handle:
        handle.seek(1000)
        byte = handle.read(1)
        handle.seek(1000)
        handle.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(Failed) as failed:
        run_module(monkeypatch, image_archive, {"path": out, "state": "loaded"}, check_mode=True, engine=FakeEngine())
    message = failed.value.result["msg"]
    assert message.startswith("%s.part002 does not match the sidecar of %s (sha256 " % (out, out)), message
    assert message.endswith("the part is damaged or belongs to another archive."), message


def test_info_reads_no_engine(tmp_path, media, monkeypatch, source):
    spec, full = source
    out = _split(tmp_path, media, monkeypatch, source)
    sha256 = _sidecar(out)["archive"]["sha256"]
    params = {"path": out + ".part001", "state": "inspected", "docker_host": "unix:///nonexistent.sock"}
    from_sidecar = run_module(monkeypatch, image_archive, params, connect=_no_connection)
    assert from_sidecar["changed"] is False and from_sidecar["source"] == "sidecar" and from_sidecar["verified"] is None
    image = from_sidecar["images"][0]
    assert (image["tags"], image["platform"], image["layers"], image["size"]) == (["app:1"], "linux/amd64", 1, spec.layers_size)
    assert len(from_sidecar["archive"]["parts"]) == 4 and from_sidecar["archive"]["layout"] == "oci"
    checked = run_module(monkeypatch, image_archive, dict(params, checksum=sha256), check_mode=True, connect=_no_connection)
    assert (checked["source"], checked["verified"]) == ("archive", True)  # with a checksum, never the sidecar's claims
    wrong = run_module(monkeypatch, image_archive, dict(params, checksum="0" * 64), connect=_no_connection)
    assert wrong["verified"] is False and "does NOT have the checksum" in wrong["msg"]
    os.unlink(out + ".airgap.json")
    read = run_module(monkeypatch, image_archive, dict(params, checksum=sha256), connect=_no_connection)
    assert (read["source"], read["verified"], read["archive"]["sha256"]) == ("memo", True, sha256)
    again = run_module(monkeypatch, image_archive, params, connect=_no_connection)
    assert again["source"] == "memo" and again["stats"]["archive_bytes_read"] == 0
    whole = run_module(monkeypatch, image_archive, {"path": full, "state": "inspected"}, connect=_no_connection)
    assert whole["archive"]["parts"] == [] and whole["archive"]["layout"] == "legacy" and whole["source"] == "archive"


def test_info_of_a_file_that_is_no_archive_fails_in_one_sentence(tmp_path, media, monkeypatch):
    path = media / "notes.txt"
    path.write_text("not an archive\n")
    with pytest.raises(Failed) as failed:
        run_module(monkeypatch, image_archive, {"path": str(path), "state": "inspected"}, connect=_no_connection)
    assert failed.value.result["msg"] == "%s is not a tar archive (nor a gzip or zstd compressed one)." % path


def test_container_import_reads_parts(tmp_path, media, monkeypatch):
    """A plain `docker export` tar split by hand (as `split -b` does), imported from part001."""
    tar = layer_tar({"srv/data.bin": random_bytes(3, 2 * MIB + 777)})
    path = str(media / "rootfs.tar")
    for number, start in enumerate(range(0, len(tar), MIB), 1):
        with open("%s.part%03d" % (path, number), "wb") as handle:
            handle.write(tar[start:start + MIB])
    engine = FakeEngine()
    result = run_module(monkeypatch, container_archive, {"path": path + ".part001", "state": "imported", "image": "rootfs:1"},
                        check_mode=True, engine=engine)
    assert result["changed"] is True and result["archive"]["sha256"] == hashlib.sha256(tar).hexdigest()
    assert [p["size"] for p in result["archive"]["parts"]] == [MIB, MIB, len(tar) - 2 * MIB]
