# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import os

from ansible_collections.airgap.docker.plugins.module_utils.container_documents import (
    claims_of,
    document_result,
    layer_document,
    layer_result,
)
from ansible_collections.airgap.docker.plugins.module_utils.container_transfer import LayerFacts

STAT = os.stat_result((0o100600, 0, 0, 1, 0, 0, 300, 0, 0, 0))
LAYER = LayerFacts("sha256:" + "1" * 64, 1024, "zstd", "2" * 64, 300, 1714561200)


def test_a_plain_export_round_trips():
    document = layer_document(LAYER, STAT, None, {})
    assert document["snapshot"] is None and document["layer"]["sha256"] == LAYER.tar_sha256
    claims = claims_of(document, "zstd")
    assert (claims.tar_sha256, claims.tar_size, claims.archive_sha256, claims.newest_mtime, claims.record) == (
        LAYER.tar_sha256, 1024, "2" * 64, 1714561200, None)


def test_claims_need_the_shape_an_import_needs():
    document = layer_document(LAYER, STAT, None, {})
    assert claims_of(dict(document, layer={"sha256": "md5:x", "size": 1}), None) is None
    assert claims_of({k: v for k, v in document.items() if k != "snapshot"}, None) is None
    assert claims_of(dict(document, snapshot={"sha256": "x"}), None) is None  # a record without its platform


def test_results_are_one_shape():
    document = layer_document(LAYER, STAT, None, {})
    assert document_result("/a.tar.zst", document) == layer_result("/a.tar.zst", LAYER) == {
        "path": "/a.tar.zst", "size": 300, "sha256": "2" * 64, "compression": "zstd", "layer_sha256": LAYER.tar_sha256}
