# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import io
import json
import tarfile

import pytest

from ansible_collections.airgap.docker.plugins.module_utils.oci_layout import (
    FILE_MODE,
    INDEX_TYPE,
    blob_name,
    layout_blocks,
    manifest_descriptor,
    sha256_digest,
)


class Streamed:
    """A streamed blob: its size up front, its bytes in pieces."""

    def __init__(self, data, piece=100):
        self.size = len(data)
        self._data = data
        self._piece = piece

    def chunks(self):
        return (self._data[i:i + self._piece] for i in range(0, len(self._data), self._piece))


CONFIG = b'{"config":{}}'
MANIFEST = b'{"schemaVersion":2}'
LAYER_A, LAYER_B = b"a" * 1000, b"b" * 513


def blobs():
    found = {blob_name(sha256_digest(data)): data for data in (CONFIG, MANIFEST)}
    for layer in (LAYER_B, LAYER_A):
        found[blob_name(sha256_digest(layer))] = Streamed(layer)
    return found


def archive():
    descriptors = [manifest_descriptor(MANIFEST, "app:1")]
    docker_manifest = [{"Config": blob_name(sha256_digest(CONFIG)), "RepoTags": ["app:1"], "Layers": []}]
    return b"".join(layout_blocks(descriptors, docker_manifest, blobs()))


def members(data):
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
        return [(info, tar.extractfile(info).read() if info.isfile() else None) for info in tar.getmembers()]


def test_one_member_order_small_blobs_before_streamed_ones():
    names = [info.name for info, _data in members(archive())]
    small = sorted(blob_name(sha256_digest(d)) for d in (CONFIG, MANIFEST))
    layers = sorted(blob_name(sha256_digest(d)) for d in (LAYER_A, LAYER_B))
    assert names == ["blobs", "blobs/sha256", "oci-layout", "index.json", "manifest.json"] + small + layers


def test_fixed_metadata_on_every_member():
    found = members(archive())
    assert {(info.mtime, info.uid, info.gid, info.uname, info.gname) for info, _data in found} == {(0, 0, 0, "", "")}
    assert {info.mode for info, _data in found if info.isfile()} == {FILE_MODE} == {0o644}
    assert {info.mode for info, _data in found if info.isdir()} == {0o755}


def test_contents_and_end_of_archive():
    data = archive()
    assert len(data) % 512 == 0 and data.endswith(b"\0" * 1024)
    found = {info.name: body for info, body in members(data)}
    assert json.loads(found["oci-layout"]) == {"imageLayoutVersion": "1.0.0"}
    index = json.loads(found["index.json"])
    assert index["mediaType"] == INDEX_TYPE and index["manifests"][0]["digest"] == sha256_digest(MANIFEST)
    assert json.loads(found["manifest.json"])[0]["RepoTags"] == ["app:1"]
    for layer in (LAYER_A, LAYER_B):
        assert found[blob_name(sha256_digest(layer))] == layer


def test_the_same_content_gives_the_same_bytes():
    assert archive() == archive()


@pytest.mark.parametrize("piece", [1, 7, 512, 4096])
def test_streamed_pieces_do_not_change_the_bytes(piece):
    descriptors, docker_manifest = [manifest_descriptor(MANIFEST)], []
    layer = blob_name(sha256_digest(LAYER_A))
    whole = b"".join(layout_blocks(descriptors, docker_manifest, {layer: Streamed(LAYER_A, 10 ** 6)}))
    assert b"".join(layout_blocks(descriptors, docker_manifest, {layer: Streamed(LAYER_A, piece)})) == whole
