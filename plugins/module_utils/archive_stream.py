# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Streaming between the engine and archive files, shared by image and container archives.

Every path streams in 1 MiB blocks through a reader thread, so memory stays flat whatever the
archive size, and reading, (de)compression, hashing and writing overlap on separate cores.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator

from ansible_collections.airgap.docker.plugins.module_utils import compression
from ansible_collections.airgap.docker.plugins.module_utils.archive_files import OpenedArchive, archive_stat
from ansible_collections.airgap.docker.plugins.module_utils.atomic_file import AtomicFile, fsync_directory
from ansible_collections.airgap.docker.plugins.module_utils.checksums import HashingReader, HashingWriter
from ansible_collections.airgap.docker.plugins.module_utils.disk_space import check_free_space
from ansible_collections.airgap.docker.plugins.module_utils.errors import ArchiveError, ChecksumMismatch, os_error
from ansible_collections.airgap.docker.plugins.module_utils.file_access import check_writable_directory
from ansible_collections.airgap.docker.plugins.module_utils.sidecar import remove as remove_sidecar
from ansible_collections.airgap.docker.plugins.module_utils.sidecar import write as write_sidecar
from ansible_collections.airgap.docker.plugins.module_utils.split_target import SplitTarget
from ansible_collections.airgap.docker.plugins.module_utils.streaming import prefetch, read_chunks
from ansible_collections.airgap.docker.plugins.module_utils.verified_memo import same_file

BLOCK = 512
END_OF_ARCHIVE = b"\0" * 1024

# Compressed archives are assumed to need at most this share of the uncompressed size when
# checking free space up front; a larger result still fails cleanly when the disk fills.
COMPRESSED_SPACE_SHARE = 0.5


@dataclass
class Transfer:
    """What one pass moved: uncompressed tar bytes, archive bytes and their sha256, time."""

    tar_size: int = 0
    archive_size: int = 0
    archive_sha256: str = None
    seconds: float = 0.0
    # fstat of the file read (a PartsStat for a split archive), when it was the same before and
    # after reading: what was verified is then exactly this file, and may be remembered under its identity.
    file_stat: os.stat_result = None
    # [{"name", "size", "sha256"}] of the parts of a split archive read; [] for a whole file.
    parts: list = field(default_factory=list)
    # Of an archive written: the compression levels used (compression.level_facts).
    levels: dict = field(default_factory=dict)


class _Discard:
    """The sink of a pass that only hashes (check mode)."""

    def write(self, data):
        return len(data)

    def flush(self):
        pass


def sniff_compression(path: str) -> str:
    """The compression of an existing archive (whole or split), from its first bytes, never from its name."""
    with OpenedArchive(path) as opened:
        head = opened.reader.read(512)
    kind = compression.detect(head)
    if kind is None:
        if not head:
            raise ArchiveError("%s is empty, not an archive." % path)
        raise ArchiveError("%s is not a tar archive (nor a gzip or zstd compressed one)." % path)
    compression.require(kind)
    return kind


def write_archive(blocks: Iterable[bytes], path: str, kind: str, level: int | None, estimated_size: int,
                  observe: Callable[[bytes | None], None], write: bool = True,
                  split_size: int | None = None) -> tuple[SplitTarget | None, Transfer]:
    """Compress the tar `blocks` into a temporary file beside path, or temporary parts once the
    archive outgrows split_size; observe(block) sees each uncompressed block (and may raise to
    abort). With write=False only hash (check mode).

    Returns (SplitTarget or None, Transfer); the caller commits or aborts the files.
    """
    started = time.monotonic()
    target = None
    if write:
        check_writable_directory(path)
        share = 1.0 if kind == compression.NONE else COMPRESSED_SPACE_SHARE
        check_free_space(os.path.dirname(os.path.abspath(path)), int(estimated_size * share), "the archive")
        target = SplitTarget(path, split_size)
    try:
        hashing = HashingWriter(target.file if target else _Discard())
        writer = compression.open_writer(hashing, kind, level)
        tar_size = 0
        for block in prefetch(blocks):
            tar_size += len(block)
            observe(block)
            writer.write(block)
        observe(None)
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
    return target, Transfer(tar_size, hashing.count, hashing.sha256.hexdigest(), round(time.monotonic() - started, 3),
                            parts=target.records() if target else [], levels=compression.level_facts(writer, tar_size))


def read_archive(path: str, observe: Callable[[bytes | None], None]) -> Transfer:
    """Decompress the archive at path in one streaming pass; observe(block) sees each block and
    observe(None) the end. Returns Transfer (archive_sha256 of the whole file)."""
    kind = sniff_compression(path)
    started = time.monotonic()
    with OpenedArchive(path) as opened:
        hashing = HashingReader(opened.reader)
        size = 0
        try:
            for block in prefetch(read_chunks(compression.open_reader(hashing, kind))):
                size += len(block)
                observe(block)
            observe(None)
        except ArchiveError as exc:
            damaged = opened.damaged_part()
            if damaged:
                raise ChecksumMismatch(damaged + ".")
            if isinstance(exc, ChecksumMismatch):
                raise
            raise ArchiveError("%s: %s" % (path, exc.msg))
        except OSError as exc:
            raise os_error(exc, path, "reading")
        after = opened.stat_after()
    return Transfer(size, hashing.count, hashing.sha256.hexdigest(), round(time.monotonic() - started, 3),
                    file_stat=after if same_file(opened.stat_before, after) else None, parts=opened.parts())


def commit_archive(target: SplitTarget | AtomicFile, path: str, make_sidecar: Callable[[os.stat_result], dict]) -> os.stat_result:
    """Put a finished temp archive (whole or split) in place together with its sidecar.

    The old sidecar goes first, so no moment pairs an archive with a sidecar describing
    another one; make_sidecar(stat) builds the new sidecar from the final files' stat (a
    PartsStat when split), and the parts are recorded in its `archive` (the same dict, so a
    caller that keeps the document has them too). Returns that stat.
    """
    try:
        remove_sidecar(path)
        target.commit()
        stat = archive_stat(path)
        document = make_sidecar(stat)
        parts = target.records() if isinstance(target, SplitTarget) else []
        document["archive"].pop("parts", None)
        if parts:
            document["archive"]["parts"] = parts
        write_sidecar(path, document)
        fsync_directory(os.path.dirname(os.path.abspath(path)))
    except OSError as exc:
        target.abort()
        raise os_error(exc, path, "replacing")
    return stat


def held_back(blocks: Iterable[bytes], verify: Callable[[], None]) -> Iterator[bytes]:
    """Yield every block, but the last only after verify() has passed.

    verify raises to abort: the engine then never receives a complete tar, rejects the upload,
    and nothing new appears in it.
    """
    pending = None
    for block in blocks:
        if pending is not None:
            yield pending
        pending = block
    verify()
    if pending is not None:
        yield pending


def until_end_of_archive(blocks: Iterable[bytes], scanner, verify: Callable[[], None]) -> Iterator[bytes]:
    """Yield the tar `blocks` up to its end-of-archive marker; the marker only after verify() has passed.

    scanner (a TarScanner) is fed every block and finds the marker. Only whole 512-byte tar blocks
    are passed on, so no part of the marker leaves before it is recognised. Whatever follows the
    marker is read (so that the file's checksum covers it, and the scanner sees what follows the
    first zero block) but never sent: the engine stops reading at the marker, so sending it early
    would hand the engine a complete tar before the whole file is verified. verify raises to
    abort; the engine then sees a tar without its end and loads nothing.
    """
    offset = sent = 0
    pending = b""
    done = False
    for block in blocks:
        offset += len(block)
        scanner.feed(block)
        if done:
            continue  # past the marker: hashed by the reader, withheld from the engine
        data = pending + block if pending else block
        if scanner.end_offset is not None:
            if scanner.end_offset > sent:
                yield data[:scanner.end_offset - sent]
            done, pending = True, b""
            continue
        whole = len(data) - offset % BLOCK
        if whole:
            yield data[:whole]
            sent += whole
        pending = data[whole:]
    verify()
    yield END_OF_ARCHIVE


def stream_into_engine(engine, path: str, kind: str, make_body: Callable, verb: str,
                       platform: str | None = None) -> tuple[list, dict, os.stat_result | None]:
    """POST an archive-derived tar to the engine's load endpoint.

    make_body(blocks, hashing) turns the decompressed blocks of path (hashing: its HashingReader)
    into the request body. Returns (engine messages, stats, fstat of the file when it did not
    change while it was read, else None).
    """
    started = time.monotonic()
    opened = OpenedArchive(path)
    hashing = HashingReader(opened.reader)
    sent = [0]

    def counted(body):
        for block in body:
            sent[0] += len(block)
            yield block

    try:
        body = make_body(read_chunks(compression.open_reader(hashing, kind)), hashing)
        messages = engine.load(prefetch(counted(body)), platform)
        after = opened.stat_after()
    except ArchiveError as exc:
        damaged = opened.damaged_part()
        if damaged:
            raise ChecksumMismatch("%s; nothing was %s." % (damaged, verb))
        if isinstance(exc, ChecksumMismatch):
            raise
        raise ArchiveError("%s: %s; nothing was %s." % (path, exc.msg.rstrip("."), verb))
    except OSError as exc:
        raise os_error(exc, path, "reading")
    finally:
        opened.close()
    stats = {"bytes_to_engine": sent[0], "archive_bytes_read": hashing.count, "archive_sha256": hashing.sha256.hexdigest(),
             "transfer_seconds": round(time.monotonic() - started, 3), "parts": opened.parts()}
    return messages, stats, (after if same_file(opened.stat_before, after) else None)
