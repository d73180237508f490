# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Container filesystems: export into an archive, import as a one-layer image.

A container archive is Docker's export tar (the layer), followed by one more tar member,
`.airgap-snapshot.json`: the snapshot record, with the container's configuration, creation
time and platform. The record comes after the export's end-of-archive marker, so `tar -x` and
`docker import` stop before it and see the plain export; and since it is inside the archive,
the archive's checksum covers it. What an import gives the engine comes from the archive's own
bytes: the sidecar next to it is never more than a claim to be checked against them.

The layer is every byte before the record's header: the export tar with its end-of-archive
marker and any zero padding after it. Its sha256 is the imported image's diff ID.
"""

from __future__ import annotations

import hashlib
import json
from contextlib import contextmanager
from dataclasses import dataclass, field

from ansible_collections.airgap.docker.plugins.module_utils.archive_stream import (
    held_back,
    read_archive,
    sniff_compression,
    stream_into_engine,
    write_archive,
)
from ansible_collections.airgap.docker.plugins.module_utils.container_image import check_snapshot_record
from ansible_collections.airgap.docker.plugins.module_utils.errors import ArchiveError, ChecksumMismatch, EngineError
from ansible_collections.airgap.docker.plugins.module_utils.oci_layout import (
    BLOCK,
    END_OF_ARCHIVE,
    canonical_json,
    tar_header,
    tar_padding,
)
from ansible_collections.airgap.docker.plugins.module_utils.tarscan import TarScanner

SNAPSHOT_NAME = ".airgap-snapshot.json"
MAX_SNAPSHOT = 1 << 20
_ZERO_BLOCK = bytes(BLOCK)
_NOT_OURS = "The archive has data after the end of its tar that is not an airgap.docker snapshot record; refusing it."


@dataclass
class LayerFacts:
    """A container archive: its layer, its snapshot record, and the file holding them."""

    tar_sha256: str
    tar_size: int
    compression: str
    archive_sha256: str = None
    archive_size: int = 0
    newest_mtime: int = 0
    # The snapshot record (schema, config, created, platform, container), None for a plain
    # `docker export` archive.
    record: dict = None
    record_sha256: str = None
    stats: dict = field(default_factory=dict)
    file_stat: object = None  # fstat of the file read, when it did not change while it was read
    parts: list = field(default_factory=list)  # [{"name", "size", "sha256"}] of a split archive
    levels: dict = field(default_factory=dict)  # of an archive this run wrote (compression.level_facts)


def snapshot_member(record):
    """The bytes appended after the export tar: the record as a tar member, then an end-of-archive marker.

    Fixed header fields (mode 0600, owner 0, mtime 0) and canonical JSON: the same record gives
    the same bytes, so exporting an unchanged stopped container gives the same archive.
    """
    data = canonical_json(record)
    return tar_header(SNAPSHOT_NAME, len(data), mode=0o600) + data + tar_padding(len(data)) + END_OF_ARCHIVE


def parse_snapshot(data):
    """The record from its JSON bytes; ArchiveError when it is not a record of the right shape."""
    try:
        record = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise ArchiveError("The archive's snapshot record is not valid JSON; refusing it.")
    problem = check_snapshot_record(record)
    if problem:
        raise ArchiveError("The archive's snapshot record is malformed (%s); refusing it." % problem)
    # The variant may be left out; it compares equal to an explicit null.
    record["platform"] = dict(record["platform"], variant=record["platform"].get("variant"))
    return record


def _octal(field_bytes):
    text = field_bytes.split(b"\0", 1)[0].strip()
    if not text or any(c not in b"01234567" for c in text):
        return None
    return int(text, 8)


def _snapshot_size(header):
    """The body size of a block that is the snapshot record's ustar header; else ArchiveError."""
    stored = _octal(header[148:156])
    if stored is None or stored != sum(header[:148]) + sum(header[156:]) + 8 * 32:
        raise ArchiveError(_NOT_OURS)
    name = header[0:100].split(b"\0", 1)[0]
    prefix = header[345:500].split(b"\0", 1)[0] if header[257:262] == b"ustar" else b""
    if name != SNAPSHOT_NAME.encode("ascii") or prefix or header[156:157] not in (b"0", b"\0"):
        raise ArchiveError(_NOT_OURS)
    size = _octal(header[124:136])
    if size is None or size > MAX_SNAPSHOT:
        raise ArchiveError("The archive's snapshot record is larger than %d KiB; refusing it." % (MAX_SNAPSHOT >> 10))
    return size


class SnapshotReader:
    """Follows the decompressed bytes of a container archive, fed in chunks of any size.

    feed() returns the part of each chunk that belongs to the layer; the layer's sha256 and
    size, the newest file time in it and the snapshot record are known after finish().
    Bounded memory: headers only for the tar, at most 1 MiB for the record.
    """

    def __init__(self):
        self._scanner = TarScanner(lambda name, size: False, record_members=False)
        self._sha256 = hashlib.sha256()
        self.layer_size = 0
        self._offset = 0
        self._block = bytearray()  # after the tar's end: the block being assembled
        self._zero_blocks = 0  # zero blocks between the tar's end and the record
        self._record_blocks = None  # the record's blocks while it is read (bytearray)
        self._record_size = 0
        self.record = None
        self.record_sha256 = None
        self._after_record = False
        self._emitted_early = 0  # bytes of the end-of-archive block already given as layer bytes

    @property
    def layer_sha256(self):
        return "sha256:" + self._sha256.hexdigest()

    @property
    def newest_mtime(self):
        return self._scanner.newest_mtime

    def feed(self, data):
        start, self._offset = self._offset, self._offset + len(data)
        if self._scanner.end_offset is None:
            self._scanner.feed(data)
            if self._scanner.end_offset is None:
                return self._layer(data)
            cut = self._scanner.end_offset - start
            if cut < 0:
                # The marker began in an earlier chunk, whose bytes went out as layer bytes:
                # they start the first trailer block, and are not given twice.
                self._block += bytes(-cut)
                self._emitted_early, cut = -cut, 0
            return bytes(self._layer(data[:cut])) + self._trailer(data[cut:])
        return self._trailer(data)

    def _layer(self, data):
        self._sha256.update(data)
        self.layer_size += len(data)
        return data

    def _trailer(self, data):
        """The layer bytes among data, which comes after the tar's end-of-archive marker started."""
        out = []
        view, pos = memoryview(data), 0
        while pos < len(view):
            take = min(BLOCK - len(self._block), len(view) - pos)
            self._block += view[pos:pos + take]
            pos += take
            if len(self._block) == BLOCK:
                block = bytes(self._block)
                self._block.clear()
                if self._on_block(block):
                    out.append(block[self._emitted_early:])
                    self._emitted_early = 0
        return self._layer(b"".join(out)) if out else b""

    def _on_block(self, block):
        """Handle one whole block after the tar's end; True when it belongs to the layer."""
        if self._record_blocks is not None:
            self._record_blocks += block
            if len(self._record_blocks) >= self._record_size:
                self._record_done()
            return False
        if block == _ZERO_BLOCK:
            if self.record is None and not self._after_record:
                self._zero_blocks += 1
                return True
            return False
        if self._after_record:
            raise ArchiveError("The archive has more than a snapshot record after the end of its tar; refusing it.")
        if self._zero_blocks < 2:
            # Go's archive/tar (docker import) takes a lone zero block followed by data for a corrupt tar.
            raise ArchiveError(_NOT_OURS)
        self._record_size = _snapshot_size(block)
        self._record_blocks = bytearray()
        if not self._record_size:
            self._record_done()
        return False

    def _record_done(self):
        data, self._record_blocks = bytes(self._record_blocks), None
        body, padding = data[:self._record_size], data[self._record_size:]
        if padding.strip(b"\0"):
            raise ArchiveError(_NOT_OURS)
        self.record = parse_snapshot(body)
        self.record_sha256 = "sha256:" + hashlib.sha256(body).hexdigest()
        self._after_record = True

    def finish(self):
        """At the end of the stream: ArchiveError when the tar or the record was cut short."""
        if self._scanner.end_offset is None:
            self._scanner.finish()
            raise ArchiveError("The archive is truncated (it ends inside the tar).")
        if self._record_blocks is not None:
            raise ArchiveError("The archive is truncated (it ends inside its snapshot record).")
        if self._block:
            # A last partial block: zero padding, or a header cut short.
            if bytes(self._block).strip(b"\0"):
                raise ArchiveError("The archive is truncated (it ends inside a header after the end of its tar).")
            if not self._after_record:
                self._layer(bytes(self._block))
            self._block.clear()

    def observe(self, block):
        """The streaming helpers' observer: a block, or None at the end."""
        if block is None:
            self.finish()
        else:
            self.feed(block)

    def facts(self, kind, archive_sha256=None, archive_size=0):
        return LayerFacts(self.layer_sha256, self.layer_size, kind, archive_sha256, archive_size, self.newest_mtime,
                          self.record, self.record_sha256)


def image_fields(record):
    """What of a record decides the imported image (the container's identity does not)."""
    return None if record is None else (record.get("config"), record.get("created"), record.get("platform"))


def disagreement(expected, found, compare_record=True):
    """None when the archive read (found) is what expected says; else what differs, as a phrase."""
    if (expected.tar_sha256, expected.tar_size) != (found.tar_sha256, found.tar_size):
        return "its layer is %s of %d bytes, not %s of %d bytes" % (found.tar_sha256, found.tar_size, expected.tar_sha256,
                                                                    expected.tar_size)
    if expected.archive_sha256 and expected.archive_sha256 != found.archive_sha256:
        return "the file's sha256 is %s, not %s" % (found.archive_sha256, expected.archive_sha256)
    if compare_record and (expected.record is None) != (found.record is None):
        return "the archive carries %s snapshot record" % ("no" if found.record is None else "a")
    if compare_record and image_fields(expected.record) != image_fields(found.record):
        return "its snapshot record holds another configuration, creation time or platform"
    return None


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


class _ExportStream:
    """The engine's export tar, then the snapshot member; counts what the engine sent."""

    def __init__(self, blocks, member):
        self._blocks = blocks
        self._member = member
        self.engine_bytes = 0

    def __iter__(self):
        for block in self._blocks:
            self.engine_bytes += len(block)
            yield block
        yield self._member


def export_container(engine, container_id, record, path, kind, level, estimated_size, write=True, split_size=None):
    """Stream `docker export` plus the snapshot record into a temp file beside path, or temporary
    parts beyond split_size (or only hash it, write=False).

    Returns (SplitTarget or None, LayerFacts); the caller commits or aborts the files.
    """
    reader = SnapshotReader()
    source = _ExportStream(engine.export_stream(container_id), snapshot_member(record))
    target, transfer = write_archive(source, path, kind, level, estimated_size, reader.observe, write, split_size)
    # Read back as an import reads it: the layer must be exactly what the engine sent, and
    # the record what was appended, or the engine's export was not one complete tar.
    if reader.layer_size != source.engine_bytes or reader.record != record:
        if target:
            target.abort()
        raise EngineError("The engine's export of container %s is not one complete tar archive; nothing was written."
                          % container_id[:12])
    facts = reader.facts(kind, transfer.archive_sha256, transfer.archive_size)
    facts.parts, facts.levels = transfer.parts, transfer.levels
    facts.stats = {"bytes_from_engine": source.engine_bytes, "archive_bytes_written": transfer.archive_size if write else 0,
                   "transfer_seconds": transfer.seconds}
    return target, facts


def read_layer_archive(path):
    """Read a container archive once: its layer's digest and size, its record, its sha256."""
    kind = sniff_compression(path)
    reader = SnapshotReader()
    transfer = read_archive(path, reader.observe)
    facts = reader.facts(kind, transfer.archive_sha256, transfer.archive_size)
    facts.file_stat = transfer.file_stat
    facts.parts = transfer.parts
    facts.stats = {"archive_bytes_read": transfer.archive_size, "transfer_seconds": transfer.seconds}
    return facts


def import_layer(engine, path, expected, import_archive, mismatch):
    """Stream the one-layer image archive into the engine, the layer read from path.

    While it streams, the archive is read as read_layer_archive reads it; before the engine
    receives the last block of the layer, what was read must be what `expected` says (the
    layer, the record and the file's sha256 the image was planned with). Otherwise
    mismatch(phrase) is raised, the upload is cut short and the engine keeps nothing.
    Returns (stats, LayerFacts read).
    """
    reader = SnapshotReader()
    found = {}

    def body(blocks, hashing):
        def layer_blocks():
            for block in blocks:
                part = reader.feed(block)
                if reader.layer_size > expected.tar_size:
                    raise mismatch("its layer is larger than %d bytes" % expected.tar_size)
                if part:
                    yield part
            reader.finish()

        def verify():
            found["facts"] = reader.facts(expected.compression, hashing.sha256.hexdigest(), hashing.count)
            problem = disagreement(expected, found["facts"])
            if problem:
                raise mismatch(problem)

        yield import_archive.head()
        yield from held_back(layer_blocks(), verify)
        yield import_archive.tail()

    _messages, stats, file_stat = stream_into_engine(engine, path, expected.compression, body, "imported")
    facts = found["facts"]
    facts.file_stat = file_stat
    facts.parts = stats.pop("parts", [])
    stats.pop("archive_sha256", None)
    return stats, facts


def mismatch_error(path, claimed_by):
    """The exception factory for import_layer: whose claim the archive failed to match."""
    def make(phrase):
        if claimed_by:
            return ChecksumMismatch(
                "The sidecar %s does not describe the archive %s (%s): the archive is damaged or the sidecar belongs to "
                "another; nothing was imported." % (claimed_by, path, phrase))
        return ChecksumMismatch("%s changed after it was verified (%s); nothing was imported." % (path, phrase))
    return make
