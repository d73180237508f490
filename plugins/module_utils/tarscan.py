# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A tar reader that follows a stream fed in arbitrary chunks.

It reads headers only and keeps the bodies of the few small members the caller asks for
(manifests and image configs), so an image archive is understood while it streams past on
its way to a file or to the engine, without a second pass and without buffering layers.
"""

from __future__ import annotations

from ansible_collections.airgap.docker.plugins.module_utils.errors import ArchiveError

BLOCK = 512
# Members larger than this are never metadata; their bodies are skipped.
MAX_KEPT_MEMBER = 4 << 20
# Guard against an archive made of thousands of small JSON-looking blobs.
MAX_KEPT_TOTAL = 128 << 20
_REGULAR = (b"0", b"\0", b"7")


def _octal_or_base256(field):
    if field[:1] and field[0] & 0x80:
        # GNU base-256 encoding, used for members of 8 GiB and more.
        value = field[0] & 0x7F
        for byte in field[1:]:
            value = (value << 8) | byte
        return value
    text = field.split(b"\0", 1)[0].strip()
    return int(text, 8) if text else 0


def _header_valid(header):
    stored = header[148:156]
    try:
        expected = _octal_or_base256(stored)
    except ValueError:
        return False
    actual = sum(header[:148]) + sum(header[156:]) + 8 * 32
    return actual == expected


def _pax_records(data):
    """The records of a PAX extended header as {key: bytes}; `<length> <key>=<value>\n` each."""
    records, pos = {}, 0
    try:
        while pos < len(data) and data[pos:pos + 1] != b"\0":
            space = data.index(b" ", pos)
            length = int(data[pos:space])
            if length <= 0 or pos + length > len(data) or data[pos + length - 1:pos + length] != b"\n":
                raise ValueError
            key, separator, value = data[space + 1:pos + length - 1].partition(b"=")
            if not separator:
                raise ValueError
            records[key.decode("utf-8", "surrogateescape")] = value
            pos += length
    except ValueError:
        raise ArchiveError("The tar archive has a malformed PAX header.")
    return records


class TarScanner:
    """Feed it the bytes of a tar stream; afterwards `members` holds the kept bodies.

    keep(name, size) decides which members' bodies to keep; `sizes` records every regular
    member's size and `links` every link's target (a hard link's from the root, as `/<path>`). stream(name, size), when given, may return
    a sink (write(bytes), close()) that receives a regular member's body as it passes.
    finish() raises ArchiveError for a stream that ends before the tar does.
    """

    def __init__(self, keep, stream=None):
        self._keep = keep
        self._stream = stream
        self._sink = None
        self._header = bytearray()
        self._remaining = 0  # body bytes of the current member still to come
        self._padding = 0
        self._body = None  # bytearray while keeping the current member
        self._current = None  # (name, typeflag) of the member whose body is streaming
        self._long_name = None  # from a GNU 'L' or PAX 'x' header, for the next member
        self._long_link = None  # from a GNU 'K' or PAX 'x' header: the next link's target
        self._pax_size = None  # from a PAX 'x' header: members of 8 GiB and more (Go's tar writer)
        self._kept_total = 0
        self._blocks_seen = 0
        self.ended = False
        self.newest_mtime = 0  # largest member mtime, for a creation time that depends only on content
        self.members = {}
        self.sizes = {}
        self.links = {}
        self.order = []

    def feed(self, data):
        view = memoryview(data)
        pos, end = 0, len(view)
        while pos < end and not self.ended:
            if self._remaining:
                take = min(self._remaining, end - pos)
                if self._body is not None:
                    self._body += view[pos:pos + take]
                if self._sink is not None:
                    self._sink.write(view[pos:pos + take])
                self._remaining -= take
                pos += take
                if not self._remaining:
                    self._member_done()
            elif self._padding:
                take = min(self._padding, end - pos)
                self._padding -= take
                pos += take
            else:
                take = min(BLOCK - len(self._header), end - pos)
                self._header += view[pos:pos + take]
                pos += take
                if len(self._header) == BLOCK:
                    self._on_header(bytes(self._header))
                    self._header.clear()

    def _on_header(self, header):
        self._blocks_seen += 1
        if header == b"\0" * BLOCK:
            # End of archive; the second zero block and record padding carry nothing.
            self.ended = True
            return
        if not _header_valid(header):
            if self._blocks_seen == 1:
                raise ArchiveError("The data is not a tar archive.")
            raise ArchiveError("The tar archive is corrupt (bad header checksum after %d members)." % len(self.order))
        size = _octal_or_base256(header[124:136])
        typeflag = header[156:157]
        try:
            self.newest_mtime = max(self.newest_mtime, _octal_or_base256(header[136:148]))
        except ValueError:
            pass  # an unreadable mtime does not make the member unreadable
        name = header[0:100].split(b"\0", 1)[0]
        if header[257:262] == b"ustar" and header[345:346] != b"\0":
            name = header[345:500].split(b"\0", 1)[0] + b"/" + name
        name = name.decode("utf-8", "surrogateescape")
        link_target = header[157:257].split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
        if typeflag not in (b"x", b"L", b"g", b"K"):
            if self._long_name is not None:
                name, self._long_name = self._long_name, None
            if self._long_link is not None:
                link_target, self._long_link = self._long_link, None
            if self._pax_size is not None:
                size, self._pax_size = self._pax_size, None
        self._current = (name, typeflag)
        self._remaining = size
        self._padding = (BLOCK - size % BLOCK) % BLOCK
        meta = typeflag in (b"x", b"L", b"K")
        if meta or (typeflag in _REGULAR and size <= MAX_KEPT_MEMBER and self._keep(name, size)):
            self._body = bytearray()
        else:
            self._body = None
        if typeflag in _REGULAR:
            self.sizes[name] = size
            self.order.append(name)
            self._sink = self._stream(name, size) if self._stream else None
        elif typeflag == b"2":
            self.links[name] = link_target
        elif typeflag == b"1":
            # A hard link names its target from the archive's root, a symbolic link from its own directory.
            self.links[name] = "/" + link_target.lstrip("/")
        if not size:
            self._member_done()

    def _member_done(self):
        name, typeflag = self._current
        body, self._body = self._body, None
        sink, self._sink = self._sink, None
        if sink is not None:
            sink.close()
        if body is None:
            return
        if typeflag == b"L":
            self._long_name = bytes(body).split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
        elif typeflag == b"K":
            self._long_link = bytes(body).split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
        elif typeflag == b"x":
            records = _pax_records(bytes(body))
            if "path" in records:
                self._long_name = records["path"].decode("utf-8", "surrogateescape")
            if "linkpath" in records:
                self._long_link = records["linkpath"].decode("utf-8", "surrogateescape")
            if "size" in records:
                try:
                    self._pax_size = int(records["size"])
                except ValueError:
                    raise ArchiveError("The tar archive has a PAX header with an invalid size.")
        else:
            self._kept_total += len(body)
            if self._kept_total > MAX_KEPT_TOTAL:
                raise ArchiveError("The archive's metadata is larger than %d MiB; refusing to read it." % (MAX_KEPT_TOTAL >> 20))
            self.members[name] = bytes(body)

    def observe(self, block):
        """The streaming helpers' observer: a block of the tar, or None at its end (checked with finish())."""
        if block is None:
            self.finish()
        elif not self.ended:
            self.feed(block)

    def finish(self):
        """Call at the end of the stream; raises ArchiveError if the tar was cut short."""
        if not self._blocks_seen and not self._header:
            raise ArchiveError("The archive is empty.")
        if not self.ended:
            raise ArchiveError("The archive is truncated (it ends inside the tar, after %d members)." % len(self.order))
