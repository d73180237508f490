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
import re

from ansible_collections.airgap.docker.plugins.module_utils.archive_layout import ArchiveImage
from ansible_collections.airgap.docker.plugins.module_utils.atomic_file import PRIVATE_MODE, write_bytes_atomically
from ansible_collections.airgap.docker.plugins.module_utils.constants import KIND_IMAGES
from ansible_collections.airgap.docker.plugins.module_utils.errors import AirgapError
from ansible_collections.airgap.docker.plugins.module_utils.file_access import open_regular

SUFFIX = ".airgap.json"
SCHEMA = 1


def sidecar_path(archive_path: str) -> str:
    return archive_path + SUFFIX


# A sidecar lists the images of one archive: a few KiB, a few MiB for hundreds of images.
MAX_SIDECAR = 16 << 20


def read_sidecar(archive_path: str, kind: str = KIND_IMAGES) -> dict | None:
    """The sidecar as a dict, or None when there is none, or it is not a sidecar of ours of the
    right shape (anyone may have written it: it is read bounded, and never blocks on a FIFO)."""
    try:
        with open_regular(sidecar_path(archive_path)) as handle:
            raw = handle.read(MAX_SIDECAR + 1)
        if len(raw) > MAX_SIDECAR:
            return None
        data = json.loads(raw)
    except (AirgapError, OSError, ValueError, RecursionError):
        return None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA or data.get("kind") != kind:
        return None
    if not isinstance(data.get("archive"), dict) or not _images_well_formed(data.get("images")):
        return None
    return data


_HEX64 = re.compile(r"[0-9a-f]{64}\Z")


def parts_of(archive: dict | None) -> list[dict] | None:
    """The parts a sidecar's (or memo's) `archive` records for a split archive, as
    [{"name", "size", "sha256"}]; None when it records none or they have the wrong shape."""
    parts = archive.get("parts") if isinstance(archive, dict) else None
    if not isinstance(parts, list) or not parts:
        return None
    for entry in parts:
        if not isinstance(entry, dict):
            return None
        size = entry.get("size")
        if not (isinstance(entry.get("name"), str) and isinstance(size, int) and not isinstance(size, bool) and size >= 0
                and isinstance(entry.get("sha256"), str) and _HEX64.match(entry["sha256"])):
            return None
    return [{"name": e["name"], "size": e["size"], "sha256": e["sha256"]} for e in parts]


def _images_well_formed(images):
    if not isinstance(images, list):
        return False
    for image in images:
        if not isinstance(image, dict) or not isinstance(image.get("config_digest"), str):
            return False
        if not isinstance(image.get("tags", []), list) or not all(isinstance(t, str) for t in image.get("tags", [])):
            return False
        for key in ("diff_ids", "layers"):
            if not isinstance(image.get(key, []), list) or not all(isinstance(v, str) for v in image.get(key, [])):
                return False
        if not isinstance(image.get("omitted_layers", 0), int):
            return False
    return True


def file_identity(stat_result: os.stat_result) -> dict:
    """What must be unchanged for a sidecar to still describe the file without reading it."""
    return {"size": stat_result.st_size, "mtime_ns": stat_result.st_mtime_ns}


def describes(sidecar: dict | None, stat_result: os.stat_result) -> bool:
    """True when the sidecar was written for exactly this file (same size and mtime)."""
    archive = (sidecar or {}).get("archive") or {}
    return archive.get("size") == stat_result.st_size and archive.get("mtime_ns") == stat_result.st_mtime_ns


def build(archive: dict | None, images: list, engine: dict | None = None, request: dict | None = None, kind: str = KIND_IMAGES,
          extra: dict | None = None) -> dict:
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


def encode(document, ensure_ascii: bool = False) -> bytes:
    """The bytes of a JSON file this collection writes (sidecars, bundle manifests, memos): indented,
    keys sorted, one newline at the end. A sidecar next to an archive escapes what is not ASCII."""
    return (json.dumps(document, indent=2, sort_keys=True, ensure_ascii=ensure_ascii) + "\n").encode("utf-8")


def write(archive_path: str, document: dict) -> None:
    """Replace the sidecar atomically, readable by its owner only (it may record a container's
    environment); the module then gives it the archive's owner and mode when those are set."""
    write_bytes_atomically(sidecar_path(archive_path), encode(document, ensure_ascii=True), mode=PRIVATE_MODE)


def images_of(sidecar: dict | None) -> list[ArchiveImage]:
    return [ArchiveImage.from_dict(item) for item in (sidecar or {}).get("images") or []]


def _claimed_form(image):
    return (image.config_digest, tuple(sorted(image.tags)), image.omitted_layers, tuple(image.diff_ids))


def disagreement(claimed: list[ArchiveImage], actual: list[ArchiveImage]) -> str | None:
    """None when the claimed ArchiveImages (a sidecar's) are the archive's own; else what differs, as a phrase."""
    by_config = {image.config_digest: image for image in actual}
    for image in claimed:
        found = by_config.get(image.config_digest)
        label = ", ".join(image.tags) or image.config_digest[:19]
        if found is None:
            return "it lists %s, which the archive does not hold" % label
        if sorted(found.tags) != sorted(image.tags):
            return "it tags %s as %s, the archive as %s" % (image.config_digest[:19], ", ".join(sorted(image.tags)) or "nothing",
                                                            ", ".join(sorted(found.tags)) or "nothing")
        if _claimed_form(found) != _claimed_form(image):
            return "it describes the layers of %s otherwise than the archive" % label
    extra = sorted(set(by_config) - {image.config_digest for image in claimed})
    if extra:
        return "the archive also holds %s, which it does not list" % ", ".join(
            ", ".join(by_config[digest].tags) or digest[:19] for digest in extra)
    return None


# What any sidecar carries; the other keys are a kind's own facts (a container's layer, snapshot, configuration).
_COMMON_KEYS = frozenset(("schema", "kind", "archive", "images", "engine", "request"))


def describes_same_content(document: dict, other: dict) -> bool:
    """True when two sidecar documents describe the same archive file, the same images, and the
    same facts of their kind (engine and request may differ: they say who wrote it, and why)."""
    mine, theirs = document.get("archive") or {}, other.get("archive") or {}
    if (mine.get("sha256"), mine.get("size")) != (theirs.get("sha256"), theirs.get("size")):
        return False
    if (parts_of(mine) or []) != (parts_of(theirs) or []):
        return False  # the same bytes, held as other files
    if any(document.get(key) != other.get(key) for key in set(document).union(other) - _COMMON_KEYS):
        return False
    try:
        return disagreement(images_of(document), images_of(other)) is None
    except TypeError:
        return False


def remove(archive_path: str) -> bool:
    """Remove the sidecar; True if one was there."""
    try:
        os.unlink(sidecar_path(archive_path))
        return True
    except FileNotFoundError:
        return False
