# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""An archive that already exists at a path, as the archive modules read it before using it.

What this host verified before (the verified memo) comes first; a sidecar is someone's claim,
checked here against the file's size and the checksum option before it may plan anything.
"""

from __future__ import annotations

import os
from typing import Callable, Optional

from ansible_collections.airgap.docker.plugins.module_utils import archive_stream
from ansible_collections.airgap.docker.plugins.module_utils.archive_files import archive_stat, check_parts
from ansible_collections.airgap.docker.plugins.module_utils.checksums import parse_sha256
from ansible_collections.airgap.docker.plugins.module_utils.constants import KIND_IMAGES
from ansible_collections.airgap.docker.plugins.module_utils.errors import ArchiveError, ChecksumMismatch
from ansible_collections.airgap.docker.plugins.module_utils.sidecar import read_sidecar, sidecar_path

Recall = Callable[[str, os.stat_result], Optional[dict]]
_UNREAD = object()
Remember = Callable[[str, dict, os.stat_result], None]


class ExistingArchive:
    """The archive at path, one file or split into parts: its stat (archive_files.archive_stat), its
    compression (from its first bytes, and available here), the document this host remembers
    verifying for exactly these files, and its sidecar.

    The parts of a split archive that this host has not verified as they are must all be there,
    as the layout and the sidecar say, before anything is read (`verb`: what would not be done).
    """

    def __init__(self, path: str, recall: Recall, sidecar_kind: str = KIND_IMAGES, verb: str = "read") -> None:
        stat = archive_stat(path)
        if stat is None:
            check_parts(path, None, verb)  # a part001 that is gone, while later parts are there
            raise ArchiveError("The archive %s does not exist." % path)
        self.path = path
        self.stat = stat
        self.sidecar_kind = sidecar_kind
        self._sidecar = _UNREAD
        self.remembered = recall(path, stat)
        if self.remembered is None:
            check_parts(path, (self.sidecar() or {}).get("archive"), verb)
        self.compression = archive_stream.sniff_compression(path)  # fails when the compression cannot be read here

    def sidecar(self) -> dict | None:
        """The sidecar next to the archive (a claim), or None; read once."""
        if self._sidecar is _UNREAD:
            self._sidecar = read_sidecar(self.path, kind=self.sidecar_kind)
        return self._sidecar


class ArchiveReader:
    """Reads the existing archives of one module run.

    recall(path, stat) and remember(path, document, stat) are the run's verified memo (what
    this host verified or wrote), add_stats(stats) counts the bytes read, and checksum is the
    module's checksum option, which every archive read must match.
    """

    sidecar_kind = KIND_IMAGES

    def __init__(self, checksum: str | None, recall: Recall, remember: Remember, add_stats: Callable[[dict], None]) -> None:
        self.checksum = checksum
        self.recall = recall
        self.remember = remember
        self.add_stats = add_stats

    def open(self, path: str, verb: str = "read") -> ExistingArchive:
        """The archive at path, with what this host remembers of it."""
        return ExistingArchive(path, self.recall, self.sidecar_kind, verb)

    def expected_sha256(self, recorded: str | None, verb: str, path: str, source: str = "its sidecar") -> str | None:
        """The sha256 the archive at path must have (see expected_sha256)."""
        return expected_sha256(self.checksum, recorded, verb, path, source)

    def sidecar_sha256(self, meta: dict, stat: os.stat_result, verb: str, path: str) -> str | None:
        """The sha256 an archive must have whose sidecar `meta` is believed to plan with; refuses a
        sidecar of another size, or one that disagrees with the checksum option."""
        check_sidecar_size(meta, stat, verb, path)
        return self.expected_sha256((meta.get("archive") or {}).get("sha256"), verb, path)


def check_sidecar_size(meta: dict, stat: os.stat_result, verb: str, path: str) -> None:
    """A sidecar that records another size means a truncated or replaced archive: refuse it."""
    recorded = (meta.get("archive") or {}).get("size")
    if recorded != stat.st_size:
        raise ChecksumMismatch(
            "%s is %d bytes but its sidecar %s records %s: the archive is truncated or was replaced. Nothing was "
            "%s; copy the archive again, or remove the sidecar if the archive was replaced on purpose."
            % (path, stat.st_size, sidecar_path(path), recorded, verb))


def expected_sha256(given: str | None, recorded: str | None, verb: str, path: str,
                    source: str = "its sidecar") -> str | None:
    """The sha256 the archive at path must have: `given` (the checksum option), which must agree
    with what `source` (the sidecar, an earlier read, a read) recorded, else the recorded one."""
    if not given:
        return recorded
    expected = parse_sha256(given)
    if recorded and recorded != expected:
        if source == "its sidecar":
            raise ChecksumMismatch(
                "The sidecar of %s records sha256 %s, but checksum asks for %s: the archive or its sidecar is not the "
                "expected one, and nothing was %s." % (path, recorded, expected, verb))
        raise ChecksumMismatch("%s has sha256 %s according to %s, but checksum asks for %s: it is not the expected "
                               "archive, and nothing was %s." % (path, recorded, source, expected, verb))
    return expected


def check_own_sha256(given: str | None, actual: str, path: str, verb: str) -> None:
    """The archive's own sha256 (verified, or remembered as verified) against `given` (the checksum option)."""
    if given and parse_sha256(given) != actual:
        raise ChecksumMismatch("%s has sha256 %s, but checksum asks for %s: it is not the expected archive. Nothing was "
                               "%s." % (path, actual, parse_sha256(given), verb))
