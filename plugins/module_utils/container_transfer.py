# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Streaming for container filesystems: export into an archive, import as a one-layer image.

The uncompressed tar's sha256 is the image layer's diff ID; it is computed while the export
streams past (and recorded in the sidecar), so an import knows the layer's digest before it
sends a byte, and can decide without reading the archive whether the image already exists.
"""

from __future__ import annotations

import hashlib
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass, field

from ansible_collections.airgap.docker.plugins.module_utils import compression
from ansible_collections.airgap.docker.plugins.module_utils.errors import ArchiveError, ChecksumMismatch
from ansible_collections.airgap.docker.plugins.module_utils.files import (
    AtomicFile,
    HashingReader,
    HashingWriter,
    check_free_space,
    check_writable_directory,
    open_for_reading,
    os_error,
    prefetch,
    read_chunks,
)
from ansible_collections.airgap.docker.plugins.module_utils.image_transfer import COMPRESSED_SPACE_SHARE, sniff_compression
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


class _Discard:
    """A sink for check mode: the export is hashed, nothing is written."""

    def write(self, data):
        return len(data)


def _keep_nothing(name, size):
    return False


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
    started = time.monotonic()
    target = None
    if write:
        check_writable_directory(path)
        share = 1.0 if kind == compression.NONE else COMPRESSED_SPACE_SHARE
        check_free_space(os.path.dirname(os.path.abspath(path)), int(estimated_size * share), "the archive")
        target = AtomicFile(path)
    try:
        hashing = HashingWriter(target.file if target else _Discard())
        writer = compression.open_writer(hashing, kind, level)
        tar_hash = hashlib.sha256()
        scanner = TarScanner(_keep_nothing)
        tar_size = 0
        for block in prefetch(engine.export_stream(container_id)):
            tar_size += len(block)
            tar_hash.update(block)
            scanner.feed(block)
            writer.write(block)
        scanner.finish()
        writer.finish()
        if target:
            target.sync()
    except OSError as exc:
        if target:
            target.abort()
        raise os_error(exc, path, "writing")
    except BaseException:
        if target:
            target.abort()
        raise
    facts = LayerFacts("sha256:" + tar_hash.hexdigest(), tar_size, kind, hashing.sha256.hexdigest(), hashing.count,
                       scanner.newest_mtime)
    facts.stats = {"bytes_from_engine": tar_size, "archive_bytes_written": hashing.count if write else 0,
                   "transfer_seconds": round(time.monotonic() - started, 3)}
    return target, facts


def scan_layer_archive(path):
    """Read a container archive once to learn its layer digest and size (no sidecar)."""
    kind = sniff_compression(path)
    compression.require(kind)
    started = time.monotonic()
    with open_for_reading(path) as raw:
        hashing = HashingReader(raw)
        tar_hash = hashlib.sha256()
        scanner = TarScanner(_keep_nothing)
        size = 0
        try:
            for block in prefetch(read_chunks(compression.open_reader(hashing, kind))):
                size += len(block)
                tar_hash.update(block)
                scanner.feed(block)
            scanner.finish()
        except ArchiveError as exc:
            raise ArchiveError("%s: %s" % (path, exc.msg))
        except OSError as exc:
            raise os_error(exc, path, "reading")
    facts = LayerFacts("sha256:" + tar_hash.hexdigest(), size, kind, hashing.sha256.hexdigest(), hashing.count, scanner.newest_mtime)
    facts.stats = {"archive_bytes_read": hashing.count, "transfer_seconds": round(time.monotonic() - started, 3)}
    return facts


def import_layer(engine, path, layer, import_archive, expected_archive_sha256=None):
    """Stream the one-layer image archive into the engine, the layer read from path.

    The layer's digest and size (and the archive's sha256 when known) are verified while it
    streams; the last block is held back until they are, so a mismatch aborts the upload and
    the engine keeps nothing.
    """
    started = time.monotonic()
    raw = open_for_reading(path)
    hashing = HashingReader(raw)
    sent = [0]

    def mismatch(what, got, expected):
        return ChecksumMismatch("%s: the %s is %s, expected %s; nothing was imported." % (path, what, got, expected))

    def blocks():
        head = import_archive.head()
        sent[0] += len(head)
        yield head
        tar_hash, size, pending = hashlib.sha256(), 0, None
        for block in read_chunks(compression.open_reader(hashing, layer.compression)):
            size += len(block)
            if size > layer.tar_size:
                raise mismatch("filesystem tar's size", "larger", "%d bytes" % layer.tar_size)
            tar_hash.update(block)
            if pending is not None:
                sent[0] += len(pending)
                yield pending
            pending = block
        if size != layer.tar_size:
            raise mismatch("filesystem tar's size", "%d bytes" % size, "%d bytes (truncated archive)" % layer.tar_size)
        if "sha256:" + tar_hash.hexdigest() != layer.tar_sha256:
            raise mismatch("filesystem tar's sha256", "sha256:" + tar_hash.hexdigest(), layer.tar_sha256)
        if expected_archive_sha256 and hashing.sha256.hexdigest() != expected_archive_sha256:
            raise mismatch("archive's sha256", hashing.sha256.hexdigest(), expected_archive_sha256)
        tail = (pending or b"") + import_archive.tail()
        sent[0] += len(tail)
        yield tail

    try:
        engine.load(prefetch(blocks()))
    except ChecksumMismatch:
        raise
    except ArchiveError as exc:
        raise ArchiveError("%s: %s Nothing was imported." % (path, exc.msg))
    except OSError as exc:
        raise os_error(exc, path, "reading")
    finally:
        raw.close()
    return {"bytes_to_engine": sent[0], "archive_bytes_read": hashing.count, "transfer_seconds": round(time.monotonic() - started, 3)}
