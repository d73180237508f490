# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What an image archive (whole or split) holds, for image_archive's `state: inspected`: without any
engine, from what this host verified before, else from the sidecar when it agrees with the file,
else from the archive's own bytes, read once and streamed.

A `checksum` is compared, never enforced: whether the archive has it is a finding to report (an
operator checks a medium before carrying it in), not a failure. A file that is no archive, or a
damaged one, still fails with one sentence.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from ansible_collections.airgap.docker.plugins.module_utils import image_transfer
from ansible_collections.airgap.docker.plugins.module_utils.archive_files import read_from_parts
from ansible_collections.airgap.docker.plugins.module_utils.archive_parts import existing_parts
from ansible_collections.airgap.docker.plugins.module_utils.checksums import parse_sha256
from ansible_collections.airgap.docker.plugins.module_utils.image_load_steps import ImageArchiveReader, content_of
from ansible_collections.airgap.docker.plugins.module_utils.image_transfer import ArchiveContent

# Where the description came from.
FROM_MEMO = "memo"  # what this host read and verified of exactly these files before
FROM_SIDECAR = "sidecar"  # the sidecar, whose size (and sha256, with checksum) agree with the file
FROM_ARCHIVE = "archive"  # the archive itself, read now


@dataclass
class Inspection:
    content: ArchiveContent
    source: str
    verified: bool | None  # None without checksum: nothing to compare


def inspect(reader: ImageArchiveReader, path: str, checksum: str | None) -> Inspection:
    """What the archive at path holds, and whether it has `checksum` (None when not given)."""
    expected = parse_sha256(checksum) if checksum else None
    existing = reader.open(path, "read")  # a missing part, or a file that is no archive, fails here
    if existing.remembered is not None:
        content = content_of(existing.remembered, existing.compression, existing.stat, True)
        return Inspection(content, FROM_MEMO, _has(content.sha256, expected))
    meta = existing.sidecar()
    # Without a checksum, what the sidecar claims is reported as its claims (source: sidecar). With one,
    # the archive is read anyway, so what is reported comes from that read, never from the sidecar:
    # a sidecar with the right size and sha256 could still name other images.
    if expected is None and meta is not None and (meta.get("archive") or {}).get("size") == existing.stat.st_size:
        return Inspection(content_of(meta, existing.compression, existing.stat, False), FROM_SIDECAR, None)
    content = image_transfer.scan_archive(path)
    reader.add_stats(content.stats)
    reader.remember(path, content.document(), content.file_stat)
    return Inspection(content, FROM_ARCHIVE, _has(content.sha256, expected))


def _has(actual: str | None, expected: str | None) -> bool | None:
    return None if expected is None else actual == expected


def parts_result(path: str, content: ArchiveContent) -> list[dict]:
    """The parts of the archive: as recorded (with their sha256), else as found on disk (sizes only)."""
    if content.parts or not read_from_parts(path):
        return list(content.parts)
    return [{"name": os.path.basename(part), "size": os.path.getsize(part), "sha256": None} for part in existing_parts(path)]


def message(inspection: Inspection) -> str:
    """The module's msg for state=inspected."""
    text = "the archive holds %d image(s), as %s" % (len(inspection.content.images), {
        FROM_MEMO: "this host verified before", FROM_SIDECAR: "its sidecar records",
        FROM_ARCHIVE: "read from the archive"}[inspection.source])
    if inspection.verified is not None:
        text += "; it %s the checksum" % ("has" if inspection.verified else "does NOT have")
    return text
