# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Checks that the files a bundle's manifest lists are there, whole and unaltered."""

from __future__ import annotations

import os
from typing import Collection

from ansible_collections.airgap.docker.plugins.module_utils import bundle
from ansible_collections.airgap.docker.plugins.module_utils.checksums import hash_open_file
from ansible_collections.airgap.docker.plugins.module_utils.errors import ArchiveError, ChecksumMismatch
from ansible_collections.airgap.docker.plugins.module_utils.file_access import open_regular, stat_or_none
from ansible_collections.airgap.docker.plugins.module_utils.verified_memo import VerifiedCache


def check_files(bundle_dir: str, manifest: dict, listed: Collection[str] | None, save_cache: bool = True) -> int:
    """Bytes hashed to check every archive and sidecar the manifest lists: each sidecar is hashed, each
    archive (or each of its parts) must have its size, and those in `listed` (None: all) their sha256,
    hashed once per file version through the bundle's cache, which is saved unless not `save_cache`
    (check mode)."""
    cache = VerifiedCache(bundle_dir)
    hashed = 0
    try:
        for entry in manifest.get("archives") or []:
            check_sidecar(bundle_dir, entry)
            files = bundle.files_of(entry)
            for path, size, _digest in files:
                _check_size(bundle_dir, path, size, len(files) > 1)
            if listed is None or entry["path"] in listed:
                for path, _size, digest in files:
                    hashed += _check_digest(cache, bundle_dir, path, digest, len(files) > 1)
    finally:
        if save_cache:
            cache.save()
    return hashed


def _check_size(bundle_dir, path, size, is_part):
    full = bundle.bundle_file(bundle_dir, path)
    stat_result = stat_or_none(full)
    if stat_result is None:
        raise ArchiveError("%s is missing from the bundle %s%s." % (path, bundle_dir, "; the archive is held as parts and needs every one" if is_part else ""))
    if stat_result.st_size != size:
        raise ChecksumMismatch("%s is %d bytes, the manifest says %d: it is truncated or was replaced%s."
                               % (full, stat_result.st_size, size, " (or parts were swapped)" if is_part else ""))


def _check_digest(cache, bundle_dir, path, expected, is_part):
    """Bytes hashed to learn that the file `path` has the sha256 `expected`; ChecksumMismatch otherwise."""
    full = bundle.bundle_file(bundle_dir, path)
    digest, size, computed = cache.sha256(path, full)
    if digest != expected:
        cache.forget(path)
        what = "part was altered or damaged, or is another part" if is_part else "archive was altered or damaged"
        raise ChecksumMismatch("%s has sha256 %s, the manifest says %s: the %s; nothing of the bundle was used."
                               % (full, digest, expected, what))
    return size if computed else 0


def check_sidecar(bundle_dir: str, entry: dict) -> None:
    """The sidecar of a manifest entry is in the bundle with the sha256 the manifest records."""
    full = bundle.bundle_file(bundle_dir, entry["sidecar"]["path"])
    if not os.path.lexists(full):
        raise ArchiveError("%s is missing from the bundle %s." % (entry["sidecar"]["path"], bundle_dir))
    with open_regular(full) as handle:
        digest = hash_open_file(handle)[0]
    if digest != entry["sidecar"]["sha256"]:
        raise ChecksumMismatch("%s has sha256 %s, the manifest says %s: the sidecar was altered."
                               % (full, digest, entry["sidecar"]["sha256"]))
