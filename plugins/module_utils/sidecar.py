# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The metadata file written next to an archive (`<archive>.airgap.json`).

It lets a re-run decide at O(1) cost whether an archive is up to date (a stat plus this small
file, instead of reading the archive), and carries the archive's sha256 so that a load can
verify the bytes before the engine trusts them.
"""

from __future__ import annotations

import json
import os

from ansible_collections.airgap.docker.plugins.module_utils.archive_layout import ArchiveImage
from ansible_collections.airgap.docker.plugins.module_utils.files import write_bytes_atomically

SUFFIX = ".airgap.json"
SCHEMA = 1
KIND_IMAGES = "images"


def sidecar_path(archive_path):
    return archive_path + SUFFIX


def read_sidecar(archive_path, kind=KIND_IMAGES):
    """The sidecar as a dict, or None when there is none or it is not ours/unreadable."""
    try:
        with open(sidecar_path(archive_path), "rb") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA or data.get("kind") != kind:
        return None
    return data


def file_identity(stat_result):
    """What must be unchanged for a sidecar to still describe the file without reading it."""
    return {"size": stat_result.st_size, "mtime_ns": stat_result.st_mtime_ns}


def describes(sidecar, stat_result):
    """True when the sidecar was written for exactly this file (same size and mtime)."""
    archive = (sidecar or {}).get("archive") or {}
    return archive.get("size") == stat_result.st_size and archive.get("mtime_ns") == stat_result.st_mtime_ns


def build(archive, images, engine=None, request=None, kind=KIND_IMAGES, extra=None):
    """The sidecar document: archive facts, images, and the engine that wrote it."""
    document = {
        "schema": SCHEMA,
        "kind": kind,
        "archive": archive,
        "images": [image.to_dict() if isinstance(image, ArchiveImage) else image for image in images],
        "engine": engine or {},
        "request": request or {},
    }
    document.update(extra or {})
    return document


def encode(document):
    return (json.dumps(document, indent=2, sort_keys=True) + "\n").encode("utf-8")


def write(archive_path, document):
    """Replace the sidecar atomically."""
    write_bytes_atomically(sidecar_path(archive_path), encode(document))


def images_of(sidecar):
    return [ArchiveImage.from_dict(item) for item in (sidecar or {}).get("images") or []]


def remove(archive_path):
    """Remove the sidecar; True if one was there."""
    try:
        os.unlink(sidecar_path(archive_path))
        return True
    except FileNotFoundError:
        return False
