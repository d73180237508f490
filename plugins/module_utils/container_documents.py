# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A container archive's sidecar-shaped document, to and from LayerFacts, and the `archive` it returns."""

from __future__ import annotations

import os

from ansible_collections.airgap.docker.plugins.module_utils import container_image, sidecar
from ansible_collections.airgap.docker.plugins.module_utils.constants import KIND_CONTAINER as KIND
from ansible_collections.airgap.docker.plugins.module_utils.container_transfer import LayerFacts


def claims_of(document: dict, kind: str | None) -> LayerFacts | None:
    """LayerFacts from a sidecar-shaped document (a sidecar, or the verified memo), or None when
    it lacks what an import needs or has the wrong shape (then it cannot even plan)."""
    archive, layer = document.get("archive"), document.get("layer")
    if not isinstance(archive, dict) or not isinstance(layer, dict) or "snapshot" not in document:
        return None
    digest, size, newest = layer.get("sha256"), layer.get("size"), layer.get("newest_mtime") or 0
    if not (isinstance(digest, str) and digest.startswith("sha256:") and isinstance(size, int) and isinstance(newest, int)
            and isinstance(archive.get("sha256"), str)):
        return None
    record = None
    if document["snapshot"] is not None:
        record = container_image.snapshot_record(document.get("config"), document.get("created"),
                                                 document.get("platform") or {}, document.get("container") or {})
        if not isinstance(document.get("platform"), dict) or container_image.check_snapshot_record(record):
            return None
    return LayerFacts(digest, size, kind or archive.get("compression"), archive["sha256"], archive.get("size") or 0, newest,
                      record)


def layer_document(layer: LayerFacts, stat: os.stat_result, container: dict | None, engine: dict) -> dict:
    """The sidecar-shaped document of a container archive whose content is `layer`, in the file of `stat`."""
    record = layer.record or {}
    archive = {"size": stat.st_size, "sha256": layer.archive_sha256, "compression": layer.compression,
               "mtime_ns": stat.st_mtime_ns}
    snapshot = {"sha256": layer.record_sha256} if layer.record is not None else None
    return sidecar.build(archive, [], engine, kind=KIND, extra={
        "layer": {"sha256": layer.tar_sha256, "size": layer.tar_size, "newest_mtime": layer.newest_mtime},
        "snapshot": snapshot, "container": container, "config": record.get("config"),
        "platform": record.get("platform"), "created": record.get("created"),
    })


def archive_result(path: str, size: int | None, sha256: str | None, compression: str | None, layer_sha256: str) -> dict:
    """The module's `archive` result."""
    return {"path": path, "size": size, "sha256": sha256, "compression": compression, "layer_sha256": layer_sha256}


def document_result(path: str, document: dict) -> dict:
    """The `archive` result of the archive a document describes."""
    archive = document["archive"]
    return archive_result(path, archive.get("size"), archive.get("sha256"), archive.get("compression"),
                          document["layer"]["sha256"])


def layer_result(path: str, layer: LayerFacts) -> dict:
    """The `archive` result of an archive read (or claimed) as `layer`."""
    return archive_result(path, layer.archive_size, layer.archive_sha256, layer.compression, layer.tar_sha256)
