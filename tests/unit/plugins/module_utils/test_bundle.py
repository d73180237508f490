# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import copy
import hashlib
import json
import os
import stat
import time

import pytest

from ansible_collections.airgap.docker.plugins.module_utils import bundle
from ansible_collections.airgap.docker.plugins.module_utils.errors import ArchiveError, ChecksumMismatch, InvalidInput

LAYER = "sha256:" + "ab" * 32


def image_sidecar(sha="11" * 32, mtime=123):
    return {
        "schema": 1, "kind": "images",
        "archive": {"size": 10, "sha256": sha, "compression": "zstd", "layout": "legacy", "mtime_ns": mtime},
        "images": [{"config_digest": "sha256:" + "cd" * 32, "tags": ["b:1", "a:1"], "engine_id": "sha256:" + "cd" * 32,
                    "diff_ids": [LAYER], "fingerprint": "sha256:" + "ef" * 32, "created": "2026-01-02T03:04:05Z"}],
        "engine": {"version": "20.10"}, "request": {"images": ["a:1"]},
    }


def container_sidecar():
    return {
        "schema": 1, "kind": "container", "archive": {"size": 20, "sha256": "22" * 32, "compression": "zstd", "mtime_ns": 9},
        "images": [], "layer": {"sha256": LAYER, "size": 4096}, "config": {"Cmd": ["/bin/sh"]},
        "platform": {"os": "linux", "architecture": "amd64"}, "created": "2026-05-06T07:08:09.000000Z",
        "container": {"id": "c1", "name": "web", "image": "base:1", "started_at": "x"},
    }


def test_sidecar_loses_copy_specific_fields_only():
    normal = bundle.normalized_sidecar(image_sidecar())
    assert "mtime_ns" not in normal["archive"]
    assert "engine_id" not in normal["images"][0]
    assert normal["archive"]["sha256"] == "11" * 32


def test_same_archive_copied_elsewhere_gives_same_entry():
    first = bundle.archive_entry("images/a.tar.zst", image_sidecar(mtime=1))
    second = bundle.archive_entry("images/a.tar.zst", image_sidecar(mtime=2))
    assert first == second
    assert first[0]["images"][0]["tags"] == ["a:1", "b:1"]


def test_container_entry_plans_the_image_it_becomes():
    entry, _data = bundle.archive_entry("containers/web.tar.zst", container_sidecar(), "demo/web:snap")
    image = entry["images"][0]
    assert image["tags"] == ["demo/web:snap"]
    assert image["diff_ids"] == [LAYER]
    assert image["config_digest"].startswith("sha256:") and image["fingerprint"].startswith("sha256:")
    assert entry["container"] == {"name": "web", "id": "c1", "image": "base:1"}
    again, _data = bundle.archive_entry("containers/web.tar.zst", copy.deepcopy(container_sidecar()), "demo/web:snap")
    assert again == entry


def test_container_entry_needs_an_image_name():
    with pytest.raises(InvalidInput, match="needs the name"):
        bundle.archive_entry("containers/web.tar.zst", container_sidecar())


@pytest.mark.parametrize("path", ["../x.tar", "/etc/passwd", "images/../../x", "images/a/b.tar", "other/x.tar", "images/", "x.tar"])
def test_paths_outside_the_bundle_areas_are_refused(path):
    with pytest.raises(InvalidInput):
        bundle.safe_relative_path(path)


def test_foreign_sidecar_is_refused():
    with pytest.raises(InvalidInput, match=r"not an airgap\.docker sidecar"):
        bundle.archive_entry("images/a.tar", {"schema": 9, "kind": "images"})


def test_manifest_is_sorted_reproducible_and_dated_by_content():
    entries = [bundle.archive_entry("images/z.tar.zst", image_sidecar("33" * 32))[0],
               bundle.archive_entry("containers/web.tar.zst", container_sidecar(), "demo/web:snap")[0]]
    manifest = bundle.build_manifest(entries, {"host": "src"})
    assert [e["path"] for e in manifest["archives"]] == ["containers/web.tar.zst", "images/z.tar.zst"]
    assert "engine" not in manifest["source"]  # the two sidecars name different engines
    single = bundle.build_manifest(entries[:1], {"host": "src"})
    assert single["source"] == {"host": "src", "engine": {"version": "20.10"}}
    assert manifest["created"] == "2026-05-06T07:08:09.000000Z"
    assert bundle.encode(manifest) == bundle.encode(bundle.build_manifest(list(reversed(entries)), {"host": "src"}))


def test_duplicate_paths_are_refused():
    entry = bundle.archive_entry("images/a.tar.zst", image_sidecar())[0]
    with pytest.raises(InvalidInput, match="same file name"):
        bundle.build_manifest([entry, entry], {})


def test_sums_file_round_trips_and_covers_every_file():
    entry = bundle.archive_entry("images/a.tar.zst", image_sidecar())[0]
    manifest = bundle.build_manifest([entry], {})
    data = bundle.encode(manifest)
    sums = bundle.parse_sums(bundle.render_sums(manifest, data))
    assert sums == {"manifest.json": hashlib.sha256(data).hexdigest(), "images/a.tar.zst": "11" * 32,
                    "images/a.tar.zst.airgap.json": entry["sidecar"]["sha256"]}


def test_altered_sums_file_is_detected(tmp_path):
    manifest = bundle.build_manifest([bundle.archive_entry("images/a.tar.zst", image_sidecar())[0]], {})
    data = bundle.encode(manifest)
    (tmp_path / "SHA256SUMS").write_bytes(bundle.render_sums(manifest, data).replace(b"1111", b"2222", 1))
    with pytest.raises(ChecksumMismatch, match=r"images/a\.tar\.zst"):
        bundle.check_sums_file(str(tmp_path), manifest, data)


def test_stale_files_are_those_the_new_manifest_drops():
    old = bundle.build_manifest([bundle.archive_entry("images/a.tar.zst", image_sidecar())[0],
                                 bundle.archive_entry("images/b.tar.zst", image_sidecar())[0]], {})
    new = bundle.build_manifest([bundle.archive_entry("images/a.tar.zst", image_sidecar())[0]], {})
    assert bundle.stale_files(old, new) == ["images/b.tar.zst", "images/b.tar.zst.airgap.json"]
    assert bundle.stale_files(None, new) == []


def test_manifest_images_carry_their_archive():
    manifest = bundle.build_manifest([bundle.archive_entry("images/a.tar.zst", image_sidecar())[0]], {})
    assert [(i["archive"], i["tags"]) for i in bundle.manifest_images(manifest)] == [("images/a.tar.zst", ["a:1", "b:1"])]


def thin_entry(full="images/a.tar.zst", path="images/a+delta1.tar.zst", fingerprint=None):
    sidecar = image_sidecar(sha="33" * 32)
    sidecar["images"][0]["omitted_layers"] = 1
    if fingerprint:
        sidecar["images"][0]["fingerprint"] = fingerprint
    return bundle.archive_entry(path, sidecar, delta_of=full)[0]


def test_thin_entry_names_the_full_archive_it_stands_for():
    entry = thin_entry()
    assert entry["delta_of"] == "images/a.tar.zst"
    (record,) = bundle.manifest_images(bundle.build_manifest([entry], {}))
    assert record["delta_of"] == "images/a.tar.zst" and record["kind"] == "images" and record["omitted_layers"] == 1
    with pytest.raises(InvalidInput):
        bundle.archive_entry("images/a+delta1.tar.zst", image_sidecar(), delta_of="../outside.tar")


def test_bundle_with_thin_archives_is_schema_2():
    full = bundle.archive_entry("images/a.tar.zst", image_sidecar())[0]
    assert bundle.build_manifest([full], {})["schema"] == 1
    manifest = bundle.build_manifest([thin_entry()], {})
    assert manifest["schema"] == 2
    bundle.check_manifest(manifest, "manifest.json")
    with pytest.raises(ArchiveError, match="reads schemas 1, 2 and 3"):
        bundle.check_manifest(dict(manifest, schema=4), "manifest.json")


def test_thin_entries_are_kept_while_their_full_archive_holds_the_same_images():
    full = bundle.archive_entry("images/a.tar.zst", image_sidecar())[0]
    old = bundle.build_manifest([full, thin_entry()], {})
    assert [e["path"] for e in bundle.deltas_to_keep(old, [full])] == ["images/a+delta1.tar.zst"]
    # A new version of the image: the old thin archive stands for something else now.
    newer = copy.deepcopy(image_sidecar(sha="44" * 32))
    newer["images"][0]["fingerprint"] = "sha256:" + "99" * 32
    assert bundle.deltas_to_keep(old, [bundle.archive_entry("images/a.tar.zst", newer)[0]]) == []
    # The full archive is gone from the list, or the thin one is written again this run.
    assert bundle.deltas_to_keep(old, []) == []
    assert bundle.deltas_to_keep(old, [full, thin_entry()]) == []
    assert bundle.deltas_to_keep(None, [full]) == []


def test_read_manifest_refuses_foreign_and_future_documents(tmp_path):
    assert bundle.read_manifest(str(tmp_path)) == (None, None)
    (tmp_path / "manifest.json").write_text('{"kind": "something else"}')
    with pytest.raises(ArchiveError, match=r"not an airgap\.docker bundle"):
        bundle.read_manifest(str(tmp_path))
    (tmp_path / "manifest.json").write_text('{"kind": "airgap.docker/bundle", "schema": 4}')
    with pytest.raises(ArchiveError, match="schema 4"):
        bundle.read_manifest(str(tmp_path))
    (tmp_path / "manifest.json").write_text('{"kind": "airgap.docker/bundle", "schema": 1, "archives": [{"path": "../x"}]}')
    with pytest.raises(ArchiveError, match=r"archives\[0\]\.path is not a path inside a bundle"):
        bundle.read_manifest(str(tmp_path))


def good_manifest():
    full = bundle.archive_entry("images/a.tar.zst", image_sidecar())[0]
    snap = bundle.archive_entry("containers/web.tar.zst", container_sidecar(), "demo/web:snap")[0]
    return bundle.build_manifest([full, thin_entry(), snap], {"host": "src", "baseline": ["a:0"]})


def test_a_manifest_this_module_writes_passes_its_own_checks():
    manifest = good_manifest()
    assert bundle.parse_manifest(bundle.encode(manifest), "m") == manifest


def _set(document, dotted, value):
    *parents, last = dotted.split(".")
    for part in parents:
        document = document[int(part)] if isinstance(document, list) else document[part]
    if isinstance(document, list):
        document[int(last)] = value
    elif value is _DELETE:
        del document[last]
    else:
        document[last] = value


_DELETE = object()


@pytest.mark.parametrize("field, value, named", [
    ("schema", True, "schema True"),
    ("schema", "1", "schema '1'"),
    ("created", 5, "created is not a string"),
    ("source", [], "source is not an object"),
    ("source.host", ["x"], "source.host is not a string"),
    ("source.baseline", "a:0", "source.baseline is not a list"),
    ("source.baseline", [1], "source.baseline is not a list of strings"),
    ("archives", {}, "archives is not a list"),
    ("archives.0", "images/a.tar.zst", r"archives\[0\] is not an object"),
    ("archives.0.path", 7, r"archives\[0\]\.path is not a string"),
    ("archives.0.path", "images/../x", r"archives\[0\]\.path is not a path inside a bundle"),
    ("archives.0.kind", "layers", r"archives\[0\]\.kind is neither"),
    ("archives.0.size", "10", "without size and sha256"),
    ("archives.0.size", -1, "without size and sha256"),
    ("archives.0.size", True, "without size and sha256"),
    ("archives.0.sha256", "ZZ" * 32, r"archives\[0\]\.sha256 is not a SHA-256"),
    ("archives.0.sha256", _DELETE, r"archives\[0\]\.sha256 is not a SHA-256"),
    ("archives.0.sidecar", "x", r"archives\[0\]\.sidecar is not an object"),
    ("archives.0.sidecar", _DELETE, r"archives\[0\]\.sidecar is missing"),
    ("archives.0.sidecar.path", "containers/other.json", r"archives\[0\]\.sidecar\.path is not containers/web"),
    ("archives.0.sidecar.sha256", 5, r"archives\[0\]\.sidecar\.sha256 is not a SHA-256"),
    ("archives.0.config", ["Env"], r"archives\[0\]\.config is not an object"),
    ("archives.0.images", {}, r"archives\[0\]\.images is not a list"),
    ("archives.0.images", [], r"archives\[0\]\.images does not name the one image"),
    ("archives.1.delta_of", 3, r"archives\[1\]\.delta_of is not a string"),
    ("archives.1.request", "a:1", r"archives\[1\]\.request is not a list"),
    ("archives.1.images.0", None, r"archives\[1\]\.images\[0\] is not an object"),
    ("archives.1.images.0.tags", "a:1", r"archives\[1\]\.images\[0\]\.tags is not a list"),
    ("archives.1.images.0.tags", [["a:1"]], r"archives\[1\]\.images\[0\]\.tags is not a list of strings"),
    ("archives.1.images.0.diff_ids", [None], r"images\[0\]\.diff_ids is not a list of strings"),
    ("archives.1.images.0.fingerprint", {}, r"images\[0\]\.fingerprint is not a string"),
    ("archives.1.images.0.omitted_layers", "1", r"images\[0\]\.omitted_layers is not a whole number"),
    ("archives.1.images.0.size", -5, r"images\[0\]\.size is not a whole number"),
])
def test_a_manifest_of_another_shape_is_one_sentence(field, value, named):
    manifest = good_manifest()  # archives sorted: containers/web, images/a+delta1, images/a
    _set(manifest, field, value)
    with pytest.raises(ArchiveError, match=named) as info:
        bundle.parse_manifest(json.dumps(manifest).encode(), "/b/manifest.json")
    assert info.value.msg.startswith("/b/manifest.json ") and info.value.msg.endswith(".")


def test_a_delta_of_on_a_container_and_a_listed_twice_path_are_refused():
    manifest = good_manifest()
    manifest["archives"][0]["delta_of"] = "images/a.tar.zst"
    with pytest.raises(ArchiveError, match=r"archives\[0\]\.delta_of is set on a container archive"):
        bundle.check_manifest(manifest, "m")
    manifest = good_manifest()
    manifest["archives"].append(copy.deepcopy(manifest["archives"][1]))
    with pytest.raises(ArchiveError, match=r"lists images/a\+delta1\.tar\.zst twice"):
        bundle.check_manifest(manifest, "m")


@pytest.mark.parametrize("depth", [65, 100_000])
def test_a_deeply_nested_manifest_is_refused_at_once(depth):
    manifest = good_manifest()
    nested = bundle.encode(manifest).replace(b'"Cmd"', b'"Deep": ' + b"[" * depth + b"]" * depth + b', "Cmd"', 1)
    started = time.monotonic()
    with pytest.raises(ArchiveError, match="nested deeper than 64 levels"):
        bundle.parse_manifest(nested, "m")
    assert time.monotonic() - started < 1


@pytest.mark.parametrize("data, problem", [(b"\xff\xfe", "is not JSON"), (b"[]", "not an airgap.docker bundle manifest"),
                                           (b"1" * 5000, "is not JSON")])
def test_what_is_not_a_manifest_is_one_sentence(data, problem):
    with pytest.raises(ArchiveError, match=problem):
        bundle.parse_manifest(data, "m")


def test_an_oversized_document_is_refused_before_it_is_read_whole(tmp_path, monkeypatch):
    monkeypatch.setattr(bundle, "MAX_DOCUMENT_BYTES", 1024)
    (tmp_path / "manifest.json").write_bytes(b" " * 1025)
    with pytest.raises(ArchiveError, match="larger than 0 MiB"):
        bundle.read_manifest_bytes(str(tmp_path))
    (tmp_path / "manifest.json").unlink()
    (tmp_path / "manifest.json").mkdir()
    with pytest.raises(ArchiveError, match="is not a regular file"):
        bundle.read_manifest_bytes(str(tmp_path))


def test_sums_check_the_raw_manifest_before_it_is_parsed(tmp_path):
    manifest = good_manifest()
    data = bundle.encode(manifest)
    bundle.check_manifest_line(str(tmp_path), b"no SHA256SUMS: nothing to check")
    (tmp_path / "SHA256SUMS").write_bytes(bundle.render_sums(manifest, data))
    bundle.check_manifest_line(str(tmp_path), data)
    hostile = b"[" * 100_000
    with pytest.raises(ChecksumMismatch, match=r"disagrees with manifest\.json for manifest\.json"):
        bundle.check_manifest_line(str(tmp_path), hostile)
    (tmp_path / "SHA256SUMS").write_bytes(bundle.render_sums(manifest, data).replace(b"manifest.json", b"other.json"))
    with pytest.raises(ChecksumMismatch):
        bundle.check_manifest_line(str(tmp_path), data)


def test_a_thin_archive_of_another_image_config_is_not_kept():
    full = bundle.archive_entry("images/a.tar.zst", image_sidecar())[0]
    other = image_sidecar(sha="33" * 32)
    other["images"][0]["config_digest"] = "sha256:" + "00" * 32  # same fingerprint and tags, another config
    thin = bundle.archive_entry("images/a+delta1.tar.zst", other, delta_of="images/a.tar.zst")[0]
    assert bundle.deltas_to_keep(bundle.build_manifest([full, thin], {}), [full]) == []


def test_a_thin_archive_of_a_thin_archive_is_not_kept():
    thin = thin_entry()
    deeper = thin_entry(full="images/a+delta1.tar.zst", path="images/a+delta1+delta1.tar.zst")
    assert bundle.deltas_to_keep(bundle.build_manifest([thin, deeper], {}), [thin]) == []


@pytest.mark.parametrize("sidecar", [
    {"schema": 1, "kind": "images", "archive": [], "images": []},
    {"schema": 1, "kind": "images", "archive": {}, "images": {}},
    {"schema": 1, "kind": "images", "archive": {}, "images": ["x"]},
    {"schema": 1, "kind": "images", "archive": {}, "images": [{"tags": "a:1"}]},
])
def test_a_sidecar_of_another_shape_is_one_sentence(sidecar):
    with pytest.raises(InvalidInput, match="does not have the shape"):
        bundle.archive_entry("images/a.tar", sidecar)


def test_bundle_directories_are_created_private(tmp_path):
    old = os.umask(0o022)
    try:
        bundle.ensure_directories(str(tmp_path / "deep" / "bundle"))
    finally:
        os.umask(old)
    for name in ("bundle", "bundle/images", "bundle/containers"):
        assert stat.S_IMODE(os.stat(tmp_path / "deep" / name).st_mode) == 0o700
    os.chmod(tmp_path / "deep" / "bundle", 0o750)  # chosen by the operator: kept
    bundle.ensure_directories(str(tmp_path / "deep" / "bundle"))
    assert stat.S_IMODE(os.stat(tmp_path / "deep" / "bundle").st_mode) == 0o750


# The memo: identity from the file that was hashed ----------------------------------------------


def test_a_fifo_in_place_of_a_bundle_file_is_refused_at_once(tmp_path):
    os.mkfifo(tmp_path / "manifest.json")
    with pytest.raises(ArchiveError, match="is not a regular file"):
        bundle.read_manifest_bytes(str(tmp_path))
    os.symlink(tmp_path / "nowhere", tmp_path / "SHA256SUMS")
    with pytest.raises(ArchiveError, match="SHA256SUMS does not exist"):
        bundle.read_sums(str(tmp_path))


def _split_entry(sizes=(4, 4, 2), names=None):
    entry = dict(bundle.archive_entry("images/a.tar.zst", image_sidecar())[0])
    names = names or ["images/a.tar.zst.part%03d" % n for n in range(1, len(sizes) + 1)]
    return bundle.with_parts(entry, [{"path": n, "size": s, "sha256": "%02d" % i * 32} for i, (n, s) in enumerate(zip(names, sizes))])


def test_a_bundle_with_parts_is_schema_3_and_its_sums_list_the_parts():
    manifest = bundle.build_manifest([_split_entry()], {})
    assert manifest["schema"] == 3
    bundle.check_manifest(manifest, "manifest.json")
    sums = bundle.parse_sums(bundle.render_sums(manifest, bundle.encode(manifest)))
    assert sorted(sums) == ["images/a.tar.zst.airgap.json", "images/a.tar.zst.part001", "images/a.tar.zst.part002",
                            "images/a.tar.zst.part003", "manifest.json"]
    assert bundle.listed_files(manifest) == set(sums) - {"manifest.json"}


@pytest.mark.parametrize("entry, problem", [
    (_split_entry(names=["images/a.tar.zst.part001", "images/a.tar.zst.part003", "images/a.tar.zst.part002"]),
     r"parts\[1\]\.path is not images/a\.tar\.zst\.part002"),
    (_split_entry(sizes=(4, 2, 4)), "are not parts of one size but the last"),
    (_split_entry(sizes=(4, 4, 4)), "adding up to 10 bytes"),
    (_split_entry(sizes=(10,)), "at least two"),
    (_split_entry(names=["images/../a", "images/a.tar.zst.part002", "images/a.tar.zst.part003"]), "not a path inside a bundle"),
])
def test_parts_out_of_order_or_of_another_layout_are_refused(entry, problem):
    manifest = dict(bundle.build_manifest([entry], {}))
    with pytest.raises(ArchiveError, match=problem):
        bundle.check_manifest(manifest, "manifest.json")
