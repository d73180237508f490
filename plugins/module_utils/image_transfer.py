# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Streaming between an engine and an archive file: save, load and archive inspection.

Every path streams in 1 MiB blocks through a reader thread, so memory stays flat whatever the
archive size, and reading, (de)compression, hashing and writing overlap.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

from ansible_collections.airgap.docker.plugins.module_utils import compression
from ansible_collections.airgap.docker.plugins.module_utils.archive_layout import parse_layout, wants_member
from ansible_collections.airgap.docker.plugins.module_utils.errors import ArchiveError, ChecksumMismatch, EngineError
from ansible_collections.airgap.docker.plugins.module_utils.files import (
    AtomicFile,
    HashingReader,
    HashingWriter,
    check_free_space,
    check_writable_directory,
    fsync_directory,
    open_for_reading,
    os_error,
    prefetch,
    read_chunks,
)
from ansible_collections.airgap.docker.plugins.module_utils.image_plans import load_steps
from ansible_collections.airgap.docker.plugins.module_utils.sidecar import remove
from ansible_collections.airgap.docker.plugins.module_utils.sidecar import write as write_sidecar
from ansible_collections.airgap.docker.plugins.module_utils.tarscan import TarScanner

# Compressed archives are assumed to need at most this share of the uncompressed size when
# checking free space up front; a larger result still fails cleanly when the disk fills.
COMPRESSED_SPACE_SHARE = 0.5


@dataclass
class ArchiveContent:
    """What an archive holds and its file facts."""

    compression: str
    layout: str
    images: list
    size: int = 0
    sha256: str = None
    tar_size: int = 0
    stats: dict = field(default_factory=dict)

    def facts(self, path):
        return {"path": path, "size": self.size, "sha256": self.sha256, "compression": self.compression, "layout": self.layout}


def sniff_compression(path):
    """The compression of an existing file, from its first bytes."""
    with open_for_reading(path) as handle:
        head = handle.read(512)
    kind = compression.detect(head)
    if kind is None:
        if not head:
            raise ArchiveError("%s is empty, not an archive." % path)
        raise ArchiveError("%s is not a tar archive (nor a gzip or zstd compressed one)." % path)
    return kind


def scan_archive(path):
    """Read an archive once, streaming, to learn its layout, images and sha256.

    Used for archives without a sidecar (for example written by `docker save`).
    """
    kind = sniff_compression(path)
    compression.require(kind)
    started = time.monotonic()
    with open_for_reading(path) as raw:
        hashing = HashingReader(raw)
        scanner = TarScanner(wants_member)
        try:
            for block in prefetch(read_chunks(compression.open_reader(hashing, kind))):
                scanner.feed(block)
                if scanner.ended:
                    break
            scanner.finish()
        except ArchiveError as exc:
            raise ArchiveError("%s: %s" % (path, exc.msg))
        except OSError as exc:
            raise os_error(exc, path, "reading")
    layout, images = parse_layout(scanner.members, scanner.sizes)
    size = os.stat(path).st_size
    digest = hashing.sha256.hexdigest() if hashing.count == size else None
    return ArchiveContent(kind, layout, images, size=size, sha256=digest,
                          stats={"archive_bytes_read": hashing.count, "transfer_seconds": round(time.monotonic() - started, 3)})


def save_to_temp(engine, names, path, kind, level, platform, estimated_size):
    """Stream `docker save` of names into a temporary file beside path.

    Returns (AtomicFile, ArchiveContent); the caller commits or aborts the file.
    """
    directory = os.path.dirname(os.path.abspath(path))
    check_writable_directory(path)
    share = 1.0 if kind == compression.NONE else COMPRESSED_SPACE_SHARE
    check_free_space(directory, int(estimated_size * share), "the archive")
    started = time.monotonic()
    target = AtomicFile(path)
    try:
        hashing = HashingWriter(target.file)
        writer = compression.open_writer(hashing, kind, level)
        scanner = TarScanner(wants_member)
        streamed = 0
        for block in prefetch(engine.save_stream(names, platform)):
            streamed += len(block)
            scanner.feed(block)
            writer.write(block)
        scanner.finish()
        writer.finish()
        target.sync()
        layout, images = parse_layout(scanner.members, scanner.sizes)
    except OSError as exc:
        target.abort()
        raise os_error(exc, path, "writing")
    except BaseException:
        target.abort()
        raise
    content = ArchiveContent(kind, layout, images, size=hashing.count, sha256=hashing.sha256.hexdigest(), tar_size=streamed,
                             stats={"bytes_from_engine": streamed, "archive_bytes_written": hashing.count,
                                    "transfer_seconds": round(time.monotonic() - started, 3)})
    return target, content


def commit_archive(target, path, make_sidecar):
    """Put a finished temp archive in place together with its sidecar.

    The old sidecar goes first, so no moment pairs an archive with a sidecar describing
    another one; make_sidecar(stat) builds the new sidecar from the final file's stat.
    """
    try:
        remove(path)
        stat = os.stat(target.temp_path)
        target.commit()
        write_sidecar(path, make_sidecar(stat))
        fsync_directory(os.path.dirname(os.path.abspath(path)))
    except OSError as exc:
        target.abort()
        raise os_error(exc, path, "replacing")
    return os.stat(path)


def load_archive(engine, path, kind, expected_sha256=None, platform=None):
    """Stream an archive into the engine, decompressing on the way.

    With expected_sha256, the last block is held back until the whole file has been hashed;
    on a mismatch the request is aborted before the tar is complete, so the engine rejects
    the load and nothing new appears in it.
    """
    started = time.monotonic()
    raw = open_for_reading(path)
    hashing = HashingReader(raw)
    scanner = TarScanner(wants_member)
    sent = [0]

    def blocks():
        pending = None
        for block in read_chunks(compression.open_reader(hashing, kind)):
            scanner.feed(block)
            if pending is not None:
                sent[0] += len(pending)
                yield pending
            pending = block
        scanner.finish()
        if expected_sha256 and hashing.sha256.hexdigest() != expected_sha256:
            raise ChecksumMismatch(
                "%s does not match its recorded checksum (sha256 %s, expected %s); nothing was loaded."
                % (path, hashing.sha256.hexdigest(), expected_sha256))
        if pending is not None:
            sent[0] += len(pending)
            yield pending

    try:
        messages = engine.load(prefetch(blocks()), platform)
    except ArchiveError as exc:
        if isinstance(exc, ChecksumMismatch):
            raise
        raise ArchiveError("%s: %s Nothing was loaded." % (path, exc.msg))
    except OSError as exc:
        raise os_error(exc, path, "reading")
    finally:
        raw.close()
    return messages, {"bytes_to_engine": sent[0], "archive_bytes_read": hashing.count,
                      "transfer_seconds": round(time.monotonic() - started, 3)}


def settle_loaded_images(engine, images, lookup):
    """After a load or re-tag, every image must be in the engine with all its tags.

    Tags the load did not set are set here. Returns (steps, retagged); raises EngineError when
    an image is missing, which the containerd store can do while answering the load with
    success (it logs 'Error unpacking image').
    """
    lookup.forget()
    steps = load_steps(images, lookup)
    retagged = False
    for step in steps:
        if step.needs_load:
            raise EngineError(
                "The engine at %s reported success but does not hold %s afterwards; check its log "
                "(the containerd image store logs 'Error unpacking image')." % (
                    engine.host, ", ".join(step.image.tags) or step.image.config_digest))
        for tag in step.missing_tags:
            engine.tag(step.engine_id, tag)
            retagged = True
    if retagged:
        lookup.forget()
        steps = load_steps(images, lookup)
        broken = [t for s in steps for t in s.missing_tags]
        if broken:
            raise EngineError("Tags %s do not point to the archive's images after re-tagging." % ", ".join(broken))
    return steps, retagged
