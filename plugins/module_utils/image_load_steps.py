# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What an image load knows before it sends a byte: the archive's content, and a thin archive's base."""

from __future__ import annotations

import os

from ansible_collections.airgap.docker.plugins.module_utils import image_plans, image_transfer
from ansible_collections.airgap.docker.plugins.module_utils.errors import InvalidInput
from ansible_collections.airgap.docker.plugins.module_utils.existing_archive import ArchiveReader
from ansible_collections.airgap.docker.plugins.module_utils.image_transfer import ArchiveContent
from ansible_collections.airgap.docker.plugins.module_utils.layer_inventory import LayerInventory
from ansible_collections.airgap.docker.plugins.module_utils.sidecar import images_of, parts_of


def content_of(document: dict, kind: str, stat: os.stat_result, verified: bool) -> ArchiveContent:
    """ArchiveContent from a sidecar-shaped document (the verified memo, or a sidecar's claims)."""
    archive = document.get("archive") or {}
    return ArchiveContent(kind, archive.get("layout"), images_of(document), size=stat.st_size, sha256=archive.get("sha256"),
                          engine=document.get("engine") or {}, verified=verified, parts=parts_of(archive) or [])


class ImageArchiveReader(ArchiveReader):
    """What an image archive that exists holds, as an ArchiveContent, with the sha256 it must have."""

    def content(self, path: str, verb: str) -> tuple[ArchiveContent, str | None]:
        """(ArchiveContent, sha256 to verify or None) of the archive at path.

        From what this host verified before when the file is unchanged; else from its sidecar's
        claims (content.verified False: they may only plan a load that verifies them); else by
        reading the archive.
        """
        existing = self.open(path, verb)
        if existing.remembered is not None:
            recorded = (existing.remembered.get("archive") or {}).get("sha256")
            return (content_of(existing.remembered, existing.compression, existing.stat, True),
                    self.expected_sha256(recorded, verb, path, "an earlier read"))
        meta = existing.sidecar()
        if meta is None:
            return self.read_whole(path, verb)
        expected = self.sidecar_sha256(meta, existing.stat, verb, path)
        return content_of(meta, existing.compression, existing.stat, False), expected

    def read_whole(self, path: str, verb: str) -> tuple[ArchiveContent, str | None]:
        """(ArchiveContent, sha256) from reading the archive whole: its digests verified, its checksum compared."""
        content = image_transfer.scan_archive(path)
        self.add_stats(content.stats)
        expected = self.expected_sha256(content.sha256, verb, path, "a read of the file")
        self.remember(path, content.document(), content.file_stat)
        return content, expected


def check_thin(engine, images: list, platform: str | None, path: str) -> None:
    """A thin archive loads only into an engine that holds the layers it leaves out: checked
    before a byte is sent, since the containerd store may report success and load nothing."""
    thin = [image for image in images if image.omitted_layers]
    if not thin:
        return
    if platform:
        raise InvalidInput("platform cannot be used to load a thin archive (%s): with a platform the engine wants "
                           "every layer's data." % path)
    inventory = LayerInventory.from_engine(lambda: engine.list_images(intermediate=True), engine.inspect_image,
                                           image_plans.engine_tags)
    for image in thin:
        inventory.check_holds(image, engine.host)
