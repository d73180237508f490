# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import json
import os

import pytest
from archive_factory import ImageSpec, oci_archive, parse

from ansible_collections.airgap.docker.plugins.module_utils import sidecar
from ansible_collections.airgap.docker.plugins.module_utils.archive_layout import (
    ArchiveImage,
)


@pytest.fixture
def archive(tmp_path):
    path = tmp_path / "images.tar.zst"
    path.write_bytes(b"archive bytes")
    return str(path)


@pytest.fixture
def images():
    return parse(oci_archive([ImageSpec(tags=["busybox:latest"]), ImageSpec(tags=["app:1"], runtime={"Cmd": ["app"]})]))[1]


def write(archive_path, document):
    with open(sidecar.sidecar_path(archive_path), "wb") as handle:
        handle.write(document if isinstance(document, bytes) else sidecar.encode(document))


def test_sidecar_path():
    assert sidecar.sidecar_path("/srv/images.tar.gz") == "/srv/images.tar.gz.airgap.json"
    assert sidecar.sidecar_path("rel/x.tar") == "rel/x.tar.airgap.json"


def test_build_encode_read_round_trip(archive, images):
    facts = dict(sidecar.file_identity(os.stat(archive)), sha256="0" * 64, compression="zstd", layout="oci")
    document = sidecar.build(facts, images, engine={"version": "26.1"}, request={"images": ["busybox"], "platform": None})
    write(archive, document)
    data = sidecar.read_sidecar(archive)
    assert data == json.loads(json.dumps(document))
    assert data["schema"] == sidecar.SCHEMA == 1
    assert data["kind"] == "images"
    assert data["archive"]["sha256"] == "0" * 64
    assert data["engine"] == {"version": "26.1"}
    assert data["request"]["images"] == ["busybox"]
    assert sidecar.images_of(data) == images


def test_build_defaults_and_extra(images):
    document = sidecar.build({"size": 1}, images[:1], extra={"note": "x", "kind": "other"})
    assert document["engine"] == {} and document["request"] == {}
    assert document["note"] == "x"
    assert document["kind"] == "other"  # extra wins
    assert document["images"] == [images[0].to_dict()]


def test_build_accepts_dicts_as_images(images):
    record = dict(images[0].to_dict(), engine_id="sha256:" + "e" * 64)
    document = sidecar.build({}, [record, images[1]])
    assert document["images"][0] is record
    assert document["images"][1] == images[1].to_dict()
    restored = sidecar.images_of(document)
    assert restored[0] == images[0]  # engine_id is not an ArchiveImage field
    assert isinstance(restored[1], ArchiveImage)


def test_encode_is_stable_pretty_json():
    encoded = sidecar.encode({"b": 1, "a": [1, 2], "c": {"z": 1, "y": 2}})
    assert isinstance(encoded, bytes)
    assert encoded.endswith(b"}\n")
    text = encoded.decode()
    assert text.index('"a"') < text.index('"b"') < text.index('"c"')
    assert text.index('"y"') < text.index('"z"')
    assert '\n  "a"' in text
    assert sidecar.encode(json.loads(encoded)) == encoded


def test_encode_non_ascii():
    assert json.loads(sidecar.encode({"tag": "ünï:1"}))["tag"] == "ünï:1"


def test_read_missing(archive):
    assert sidecar.read_sidecar(archive) is None


@pytest.mark.parametrize("content", [
    b"",
    b"{not json",
    b"\xff\xfe garbage",
    b"[]",
    b'"text"',
    b"null",
    b'{"schema": 2, "kind": "images"}',
    b'{"schema": "1", "kind": "images"}',
    b'{"kind": "images"}',
    b'{"schema": 1}',
    b'{"schema": 1, "kind": "container"}',
])
def test_read_rejects_foreign_or_broken(archive, content):
    write(archive, content)
    assert sidecar.read_sidecar(archive) is None


def test_read_other_kind(archive):
    write(archive, sidecar.build({}, [], kind="container"))
    assert sidecar.read_sidecar(archive) is None
    assert sidecar.read_sidecar(archive, kind="container")["kind"] == "container"


def test_read_unreadable(archive):
    os.mkdir(sidecar.sidecar_path(archive))  # a directory where the file should be
    assert sidecar.read_sidecar(archive) is None


def test_file_identity_and_describes(archive):
    stat = os.stat(archive)
    identity = sidecar.file_identity(stat)
    assert identity == {"size": len(b"archive bytes"), "mtime_ns": stat.st_mtime_ns}
    document = sidecar.build(dict(identity, sha256="x"), [])
    assert sidecar.describes(document, stat)


def test_describes_detects_changes(archive):
    stat = os.stat(archive)
    document = sidecar.build(sidecar.file_identity(stat), [])
    os.utime(archive, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1))
    assert not sidecar.describes(document, os.stat(archive))
    os.utime(archive, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert sidecar.describes(document, os.stat(archive))
    with open(archive, "ab") as handle:
        handle.write(b"more")
    os.utime(archive, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert not sidecar.describes(document, os.stat(archive))


@pytest.mark.parametrize("document", [None, {}, {"archive": None}, {"archive": {"size": 13}}, {"archive": {"mtime_ns": 1}}])
def test_describes_incomplete(archive, document):
    assert not sidecar.describes(document, os.stat(archive))


def test_images_of_empty():
    assert sidecar.images_of(None) == []
    assert sidecar.images_of({}) == []
    assert sidecar.images_of({"images": None}) == []


def test_remove(archive):
    write(archive, sidecar.build({}, []))
    assert sidecar.remove(archive) is True
    assert not os.path.exists(sidecar.sidecar_path(archive))
    assert os.path.exists(archive)  # the archive itself stays
    assert sidecar.remove(archive) is False


# disagreement: a sidecar's claims against what the archive holds ---------------------------

def _copy(images):
    return [ArchiveImage.from_dict(image.to_dict()) for image in images]


def test_claims_equal_to_the_archive_agree(images):
    assert sidecar.disagreement(_copy(images), images) is None
    assert sidecar.disagreement(list(reversed(_copy(images))), images) is None


def test_a_tag_moved_by_the_sidecar_is_named(images):
    claims = _copy(images)
    claims[0].tags = ["victim:latest"]
    problem = sidecar.disagreement(claims, images)
    assert "victim:latest" in problem and claims[0].config_digest[:19] in problem


def test_an_image_the_archive_lacks_is_named(images):
    claims = _copy(images)
    claims[0].config_digest = "sha256:" + "0" * 64
    assert "does not hold" in sidecar.disagreement(claims, images)


def test_an_image_the_sidecar_hides_is_named(images):
    problem = sidecar.disagreement(_copy(images)[:1], images)
    assert "also holds" in problem


@pytest.mark.parametrize("field, value", [("omitted_layers", 1), ("diff_ids", ["sha256:" + "1" * 64])])
def test_other_layers_are_a_disagreement(images, field, value):
    claims = _copy(images)
    setattr(claims[1], field, value)
    assert "layers" in sidecar.disagreement(claims, images)


# read_sidecar treats the file as written by anyone ------------------------------------------

@pytest.mark.parametrize("content", [
    b"[" * 200_000,
    b'{"schema": 1, "kind": "images", "archive": [], "images": []}',
    b'{"schema": 1, "kind": "images", "archive": {}, "images": {}}',
    b'{"schema": 1, "kind": "images", "archive": {}, "images": ["x"]}',
    b'{"schema": 1, "kind": "images", "archive": {}, "images": [{"tags": ["a:1"]}]}',
    b'{"schema": 1, "kind": "images", "archive": {}, "images": [{"config_digest": "sha256:1", "tags": "a:1"}]}',
    b'{"schema": 1, "kind": "images", "archive": {}, "images": [{"config_digest": "sha256:1", "diff_ids": [1]}]}',
    b'{"schema": 1, "kind": "images", "archive": {}, "images": [{"config_digest": "sha256:1", "omitted_layers": "2"}]}',
])
def test_a_sidecar_of_another_shape_is_no_sidecar(archive, content):
    write(archive, content)
    assert sidecar.read_sidecar(archive) is None


def test_a_fifo_in_place_of_the_sidecar_does_not_block(archive):
    os.mkfifo(sidecar.sidecar_path(archive))
    assert sidecar.read_sidecar(archive) is None


def test_an_oversized_sidecar_is_no_sidecar(archive, monkeypatch):
    monkeypatch.setattr(sidecar, "MAX_SIDECAR", 100)
    write(archive, {"schema": 1, "kind": "images", "archive": {}, "images": [], "pad": "x" * 200})
    assert sidecar.read_sidecar(archive) is None


def test_describes_same_content(images):
    document = sidecar.build({"sha256": "ab" * 32, "size": 10}, images, {"version": "26"}, {"platform": None})
    read_back = sidecar.build({"sha256": "ab" * 32, "size": 10}, images)
    assert sidecar.describes_same_content(document, read_back)
    moved = sidecar.build({"sha256": "ab" * 32, "size": 10}, _copy(images)[:1])
    assert not sidecar.describes_same_content(document, moved)
    other_file = sidecar.build({"sha256": "cd" * 32, "size": 10}, images)
    assert not sidecar.describes_same_content(document, other_file)


def test_describes_same_content_compares_a_kinds_own_facts():
    layer = {"sha256": "sha256:" + "ab" * 32, "size": 2048}
    written = sidecar.build({"sha256": "ab" * 32, "size": 10}, [], kind="container", extra={"layer": layer})
    assert sidecar.describes_same_content(written, sidecar.build({"sha256": "ab" * 32, "size": 10}, [], {"version": "26"},
                                                                 kind="container", extra={"layer": dict(layer)}))
    edited = sidecar.build({"sha256": "ab" * 32, "size": 10}, [], kind="container",
                           extra={"layer": dict(layer, sha256="sha256:" + "0" * 64)})
    assert not sidecar.describes_same_content(written, edited)
    assert not sidecar.describes_same_content(written, sidecar.build({"sha256": "ab" * 32, "size": 10}, [], kind="container"))


PART = {"name": "app.tar.part001", "size": 1 << 20, "sha256": "ab" * 32}


@pytest.mark.parametrize("archive, expected", [
    ({"parts": [PART]}, [PART]),
    ({"parts": [dict(PART, extra=1)]}, [PART]),
    ({}, None),
    ({"parts": []}, None),
    (None, None),
    ({"parts": "app.tar.part001"}, None),
    ({"parts": ["app.tar.part001"]}, None),
    ({"parts": [dict(PART, size="1M")]}, None),
    ({"parts": [dict(PART, size=True)]}, None),
    ({"parts": [dict(PART, size=-1)]}, None),
    ({"parts": [dict(PART, sha256="AB" * 32)]}, None),
    ({"parts": [dict(PART, name=None)]}, None),
])
def test_parts_of(archive, expected):
    assert sidecar.parts_of(archive) == expected


def test_describes_same_content_compares_the_parts(images):
    whole = sidecar.build({"sha256": "ab" * 32, "size": 10}, images)
    split = sidecar.build({"sha256": "ab" * 32, "size": 10, "parts": [PART]}, images)
    assert sidecar.describes_same_content(split, sidecar.build({"sha256": "ab" * 32, "size": 10, "parts": [dict(PART)]}, images))
    assert not sidecar.describes_same_content(whole, split)
    assert not sidecar.describes_same_content(split, sidecar.build(
        {"sha256": "ab" * 32, "size": 10, "parts": [dict(PART, sha256="cd" * 32)]}, images))
