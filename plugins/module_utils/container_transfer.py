# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Container filesystems: export into an archive, import as a one-layer image.

The uncompressed tar's sha256 is the image layer's diff ID; it is computed while the export
streams past (and recorded in the sidecar), so an import knows the layer's digest before it
sends a byte, and can decide without reading the archive whether the image already exists.
"""

from __future__ import annotations

import hashlib
from contextlib import contextmanager
from dataclasses import dataclass, field

from ansible_collections.airgap.docker.plugins.module_utils.archive_stream import (
    held_back,
    read_archive,
    sniff_compression,
    stream_into_engine,
    write_archive,
)
from ansible_collections.airgap.docker.plugins.module_utils.errors import ChecksumMismatch
from ansible_collections.airgap.docker.plugins.module_utils.tarscan import TarScanner


@dataclass
class LayerFacts:
    """An exported filesystem: its tar (the layer) and the archive file holding it."""

    tar_sha256: str
    tar_size: int
    compression: str
    archive_sha256: str = None
    archive_size: int = 0
    newest_mtime: int = 0
    stats: dict = field(default_factory=dict)


class _LayerDigest:
    """Observer of a filesystem tar: its sha256, and a check that the tar is complete."""

    def __init__(self):
        self.sha256 = hashlib.sha256()
        self.scanner = TarScanner(lambda name, size: False)

    def __call__(self, block):
        if block is None:
            self.scanner.finish()
            return
        self.sha256.update(block)
        self.scanner.feed(block)

    @property
    def digest(self):
        return "sha256:" + self.sha256.hexdigest()


@contextmanager
def paused(engine, container_id, pause):
    """Pause the container for the duration of the block when asked; always unpause it after."""
    if pause:
        engine.pause(container_id)
    try:
        yield
    finally:
        if pause:
            engine.unpause(container_id)


def export_container(engine, container_id, path, kind, level, estimated_size, write=True):
    """Stream `docker export` into a temp file beside path (or only hash it, write=False).

    Returns (AtomicFile or None, LayerFacts); the caller commits or aborts the file.
    """
    layer = _LayerDigest()
    target, transfer = write_archive(engine.export_stream(container_id), path, kind, level, estimated_size, layer, write)
    facts = LayerFacts(layer.digest, transfer.tar_size, kind, transfer.archive_sha256, transfer.archive_size,
                       layer.scanner.newest_mtime)
    facts.stats = {"bytes_from_engine": transfer.tar_size, "archive_bytes_written": transfer.archive_size if write else 0,
                   "transfer_seconds": transfer.seconds}
    return target, facts


def scan_layer_archive(path):
    """Read a container archive once to learn its layer digest and size (no sidecar)."""
    kind = sniff_compression(path)
    layer = _LayerDigest()
    transfer = read_archive(path, layer)
    facts = LayerFacts(layer.digest, transfer.tar_size, kind, transfer.archive_sha256, transfer.archive_size,
                       layer.scanner.newest_mtime)
    facts.stats = {"archive_bytes_read": transfer.archive_size, "transfer_seconds": transfer.seconds}
    return facts


def import_layer(engine, path, layer, import_archive, expected_archive_sha256=None):
    """Stream the one-layer image archive into the engine, the layer read from path.

    The layer's size and digest (and the archive's sha256 when known) are verified while it
    streams, before the engine receives the last block; a mismatch aborts the upload and the
    engine keeps nothing.
    """
    def mismatch(what, got, expected):
        return ChecksumMismatch("%s: the %s is %s, expected %s; nothing was imported." % (path, what, got, expected))

    def body(blocks, hashing):
        tar_hash, size = hashlib.sha256(), [0]

        def layer_blocks():
            for block in blocks:
                size[0] += len(block)
                if size[0] > layer.tar_size:
                    raise mismatch("filesystem tar's size", "larger", "%d bytes" % layer.tar_size)
                tar_hash.update(block)
                yield block

        def verify():
            if size[0] != layer.tar_size:
                raise mismatch("filesystem tar's size", "%d bytes" % size[0], "%d bytes (truncated archive)" % layer.tar_size)
            if "sha256:" + tar_hash.hexdigest() != layer.tar_sha256:
                raise mismatch("filesystem tar's sha256", "sha256:" + tar_hash.hexdigest(), layer.tar_sha256)
            if expected_archive_sha256 and hashing.sha256.hexdigest() != expected_archive_sha256:
                raise mismatch("archive's sha256", hashing.sha256.hexdigest(), expected_archive_sha256)

        yield import_archive.head()
        yield from held_back(layer_blocks(), verify)
        yield import_archive.tail()

    return stream_into_engine(engine, path, layer.compression, body, "imported")[1]
