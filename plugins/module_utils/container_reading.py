# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What a container archive that exists holds (LayerFacts), for an import or to keep it on export."""

from __future__ import annotations

from typing import Callable

from ansible_collections.airgap.docker.plugins.module_utils import container_transfer
from ansible_collections.airgap.docker.plugins.module_utils.compression import recorded_level_facts
from ansible_collections.airgap.docker.plugins.module_utils.container_documents import (
    KIND,
    claims_of,
    document_result,
    layer_document,
    layer_result,
)
from ansible_collections.airgap.docker.plugins.module_utils.container_transfer import LayerFacts
from ansible_collections.airgap.docker.plugins.module_utils.errors import ArchiveError
from ansible_collections.airgap.docker.plugins.module_utils.existing_archive import ArchiveReader, check_own_sha256
from ansible_collections.airgap.docker.plugins.module_utils.sidecar import parts_of, sidecar_path

# container_documents, with the parts of a split archive: its documents and results carry them
# as the image archive's do.


def facts_of(document: dict, kind: str | None) -> LayerFacts | None:
    """claims_of(document, kind), with the parts the document records."""
    layer = claims_of(document, kind)
    if layer is not None:
        layer.parts = parts_of(document.get("archive")) or []
    return layer


def document_of(layer: LayerFacts, stat, container: dict | None, engine: dict) -> dict:
    """layer_document(...), with the layer's parts in its `archive`."""
    document = layer_document(layer, stat, container, engine)
    if layer.parts:
        document["archive"]["parts"] = layer.parts
    document["archive"].update(layer.levels)
    return document


def result_of_document(path: str, document: dict) -> dict:
    """document_result(path, document), with the parts the document records."""
    result = document_result(path, document)
    if parts_of(document.get("archive")):
        result["parts"] = parts_of(document["archive"])
    result.update(recorded_level_facts(document.get("archive") or {}))
    return result


def result_of_layer(path: str, layer: LayerFacts) -> dict:
    """layer_result(path, layer), with the layer's parts."""
    result = layer_result(path, layer)
    if layer.parts:
        result["parts"] = layer.parts
    result.update(layer.levels)
    return result


class LayerReader(ArchiveReader):
    """Reads container archives. What this host verified before decides at O(1) cost; a sidecar
    is someone's claim, which may plan an import that checks it on the way; else the archive is
    read whole. `warn` (None: no warning) hears of a sidecar whose configuration is not applied."""

    sidecar_kind = KIND

    def __init__(self, checksum: str | None, recall, remember, add_stats: Callable[[dict], None],
                 warn: Callable[[str], None] | None = None) -> None:
        super().__init__(checksum, recall, remember, add_stats)
        self.warn = warn

    def for_import(self, path: str) -> tuple[LayerFacts, str | None]:
        """(LayerFacts, sidecar path when they are its unverified claims, else None)."""
        existing = self.open(path, "imported")
        if existing.remembered is not None:
            layer = facts_of(existing.remembered, existing.compression)
            if layer is not None:
                check_own_sha256(self.checksum, layer.archive_sha256, path, "imported")
                return layer, None
        meta = existing.sidecar()
        claims = facts_of(meta, existing.compression) if meta is not None else None
        if claims is None:
            self._warn_if_legacy(meta, path)
            return self.read_whole(path), None
        claims.archive_sha256 = self.sidecar_sha256(meta, existing.stat, "imported", path)
        return claims, sidecar_path(path)

    def read_whole(self, path: str, claims: LayerFacts | None = None, claimed_by: str | None = None) -> LayerFacts:
        """LayerFacts from reading the archive whole; remembered when no sidecar contradicts them."""
        found = container_transfer.read_layer_archive(path)
        self.add_stats(found.stats)
        check_own_sha256(self.checksum, found.archive_sha256, path, "imported")
        problem = container_transfer.disagreement(claims, found) if claims is not None else None
        if problem:
            raise container_transfer.mismatch_error(path, claimed_by)(problem)
        self.remember_read(path, found)
        return found

    def remember_read(self, path: str, found: LayerFacts) -> None:
        """Remember what reading (or importing) the archive verified, for O(1) re-runs."""
        if found.file_stat is not None:
            document = document_of(found, found.file_stat, found.record and found.record["container"], {})
            self.remember(path, document, found.file_stat)

    def confirmed(self, path: str, meta: dict, container_id: str) -> LayerFacts | None:
        """The archive on disk when reading it confirms its sidecar `meta` (and that it is the
        snapshot of container_id), else None: an unverified sidecar never keeps an archive."""
        try:
            found = container_transfer.read_layer_archive(path)
        except ArchiveError:
            return None
        self.add_stats(found.stats)
        claims = claims_of(meta, found.compression)
        if (claims is None or container_transfer.disagreement(claims, found) or found.record is None
                or found.record["container"].get("id") != container_id or found.file_stat is None):
            return None
        return found

    def _warn_if_legacy(self, meta: dict | None, path: str) -> None:
        """A sidecar of an older airgap.docker records a configuration its archive does not carry."""
        if meta and "snapshot" not in meta and meta.get("config") and self.warn is not None:
            self.warn("%s has no snapshot record (it was exported by an older airgap.docker); the configuration in its "
                      "sidecar is not applied. Export the container again to carry it in the archive." % path)
