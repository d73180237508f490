# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A tar reader that follows a stream fed in arbitrary chunks.

It reads headers only and keeps the bodies of the few small members the caller asks for
(manifests and image configs), so an image archive is understood while it streams past on
its way to a file or to the engine, without a second pass and without buffering layers.

Docker reads archives with Go's archive/tar: the classic store extracts them into a directory,
the containerd store reads the stream. Headers are therefore resolved as Go resolves them
(checksums, formats, numeric fields, ustar and STAR prefixes, GNU long names, PAX records), and
member names as the engines see them (path.Clean, relative to the archive's root), so that the
members reported here are the members the engine gets. A header Go refuses is refused here, as
one ArchiveError, before anything after it is read. Memory is bounded whatever the input: every
table kept has a documented cap.
"""

from __future__ import annotations

import hashlib
import io
import posixpath
import re
import zlib

from ansible_collections.airgap.docker.plugins.module_utils.errors import ArchiveError

BLOCK = 512
# GNU long names and links and PAX headers: Go's archive/tar refuses bodies larger than this
# (maxSpecialFileSize), so no archive the engine can read needs more.
MAX_SPECIAL = 1 << 20
# Members larger than this are never metadata; their bodies are skipped.
MAX_KEPT_MEMBER = 4 << 20
# Kept bodies stay in memory until the archive is parsed. Real metadata is small (a config of
# 20 layers is ~10 KiB, one of 500 layers ~100 KiB with a manifest of ~75 KiB): 8 MiB holds the
# configs and manifests of hundreds of images (about 45 of 500 layers).
#
# The caps below bound the sum, not only each table: a hostile archive may fill all of them at
# once, behind a full zstd window (compression.ZSTD_MAX_WINDOW, 16 MiB), and then have its largest
# document parsed (archive_layout.MAX_JSON_VALUES). With a module process's ~37 MB of imports, the
# worst such combination peaks near 90 MB of the 100 MB a module run may use (issue 11).
MAX_KEPT_TOTAL = 8 << 20
# Entries read from an image archive: its headers of every kind (members, and the PAX headers and
# GNU long names and links in front of them) and the directories member names imply without a
# header of their own. A header that only the general parser reads (v7, STAR, GNU times, base-256
# numbers, odd padding: forms that Go, GNU tar, libarchive and Python do not write for ordinary
# members) takes two to three times as long, and counts as two. docker save writes one header per
# member: about four per layer (Docker <= 24) or one per blob (Docker >= 25), so a 500-layer image
# has about 2,000 and the cap allows some 5,000 layers, or 20,000 blobs. It bounds the tables
# (~250 bytes a member, ~100 a directory, names aside) and the time, whatever the mix: at most
# ~20 microseconds of Python an entry, where 1 MiB of zstd can hold 300,000 headers.
MAX_ENTRIES = 20000
# PAX records read from an image archive, all PAX headers together. A PAX header of 1 MiB (the
# most Go reads) holds up to 170,000 records, each parsed in Python: without this cap a few
# headers would take seconds. Go's writer adds a PAX header only for what ustar cannot hold (a
# long name), Python's tarfile one to every member (its mtime, with a path when long): a few
# records a member, and the cap allows four for each of MAX_ENTRIES / 2 members.
MAX_PAX_RECORDS = 40000
# Longest member name recorded: PATH_MAX. The classic store extracts the archive into a
# directory, so it cannot use a longer one either.
MAX_NAME = 4096
# All names recorded (members, link targets and the directories names imply), in characters:
# docker save's names have 77 characters at most, 2,000 members take ~150,000.
MAX_NAMES_TOTAL = 4 << 20
# Body bytes handed to a keep(...) decision function (see TarScanner).
SNIFF_BYTES = 512

_ZERO_BLOCK = bytes(BLOCK)
_EMPTY_DIGEST = "sha256:" + hashlib.sha256().hexdigest()
_ASCII = bytes(range(128))
_V7, _USTAR, _GNU, _STAR = "v7", "ustar", "gnu", "star"
_SPECIAL = {b"x": "PAX header", b"g": "global PAX header", b"L": "GNU long name", b"K": "GNU long link name"}
# Go reads no body for these, whatever their size field says.
_HEADER_ONLY = frozenset((b"1", b"2", b"3", b"4", b"5", b"6"))
# What each member type is on extraction; other types are refused in image archives, as
# the classic store's extraction refuses them.
_KINDS = {b"0": "file", b"1": "hard link", b"2": "symbolic link", b"3": "device", b"4": "device", b"5": "directory",
          b"6": "fifo"}
_DECIMAL = re.compile(rb"[+-]?[0-9]+")
# Go's parseOctal: the field trimmed of spaces and NULs at both ends, then cut at its first NUL,
# must be octal digits (or nothing: 0).
_OCTAL_FIELD = re.compile(rb"[ \0]*(?:([0-7]+)(?:[ \0]*|\0.*))?", re.DOTALL)
# A ustar header as Go, GNU tar, libarchive (bsdtar) and Python write it: one regular expression
# reads it, instead of the general parsers below, which take two to three times as long. Numbers
# are octal, ended with a NUL (Go, GNU tar, Python) or a space (libarchive; a space and a NUL in
# 8-byte fields). GNU tar's own headers (magic "ustar  \0") are read alike when they carry no
# atime or ctime (GNU tar writes none unless asked to): they have no name prefix then.
_PLAIN_USTAR = re.compile(
    rb"(.{100})(?:[0-7]{7}\0|[0-7]{6} \0){3}([0-7]{11})[\0 ]([0-7]{11})[\0 ]([0-7]{6})\0 (.)(.{100})"
    rb"(?:ustar\0..(?:.{64})(?:(?:[0-7]{7}\0|[0-7]{6} \0){2}|\0{16})(.{155})"
    rb"|ustar  \0.{64}(?:(?:[0-7]{7}\0|[0-7]{6} \0){2}|\0{16})\0.{11}\0.{142})"
    rb".{12}", re.DOTALL)
_PLAIN_FIELDS = re.compile(rb"(?:[0-7]{7}\0|[0-7]{6} \0){3}([0-7]{11})[\0 ]([0-7]{11})[\0 ]")  # mode, uid, gid, size, mtime
_PLAIN_DEVICES = re.compile(rb"(?:[0-7]{7}\0|[0-7]{6} \0){2}|\0{16}")
_INT64 = 1 << 63
# A PAX record as writers write it (a length without sign or leading zero, no NUL or newline in
# its key or value), and how many of them a body may have to be read with one findall().
_PAX_PLAIN = re.compile(rb"([1-9][0-9]{0,6}) ([^=\0\n]+)=([^\0\n]*)\n")
_PAX_PLAIN_RECORDS = 64
_SPARSE_KEYS = (b"GNU.sparse.offset", b"GNU.sparse.numbytes")


class _Malformed(Exception):
    """A header that Go's archive/tar refuses; args[0] says what is wrong with it."""


def _clean_parts(parts):
    """Whether path.Clean leaves the name of these components as it is."""
    return "" not in parts and "." not in parts and ".." not in parts


def member_name(path: str) -> str:
    """A member name as the engines see it: path.Clean, relative to the archive's root.

    `./manifest.json`, `/manifest.json` and `manifest.json/` all name `manifest.json`.
    """
    # Substring tests first: a name without "//", without "/." and not starting with "/" or "."
    # has no empty, "." or ".." component; only other names need to be split.
    if path and path[-1] != "/" and (
            (path[0] != "/" and path[0] != "." and "//" not in path and "/." not in path) or _clean_parts(path.split("/"))):
        return path
    cleaned = posixpath.normpath(path) if path else "."
    return cleaned.lstrip("/") or "."


def _cstring(field):
    end = field.find(b"\0")
    return field if end < 0 else field[:end]


def _octal(field, what, start=0, end=None):
    """Go's parseOctal of field[start:end]: spaces and NULs around octal digits; anything else is refused."""
    match = _OCTAL_FIELD.fullmatch(field, start, len(field) if end is None else end)
    if match is None:
        raise _Malformed("its %s field is not an octal number" % what)
    digits = match.group(1)
    return int(digits, 8) if digits else 0


def _numeric(field, what, start=0, end=None):
    """Go's parseNumeric of field[start:end]: octal, or GNU base-256 (two's complement, may be negative)."""
    first = field[start]
    if not first & 0x80:
        return _octal(field, what, start, end)
    # Base-256: the first byte's top bit marks it, the next bit is the sign; the rest of the field
    # is the number in two's complement.
    field = field[start:end]
    bits = 8 * len(field) - 1
    value = int.from_bytes(field, "big") - (1 << bits)
    if first & 0x40:
        value -= 1 << bits
    if not -_INT64 <= value < _INT64:
        raise _Malformed("its %s field overflows" % what)
    return value


def _byte_sum(block):
    """The sum of a block's bytes. zlib's Adler-32 sums bytes modulo 65521; a half block sums to at
    most 256 * 255 = 65280, so each half's sum is exact, and far faster than sum() in Python."""
    return (zlib.adler32(block[:256]) & 0xFFFF) + (zlib.adler32(block[256:]) & 0xFFFF) - 2


def _checksum_ok(block, stored=None):
    """Go accepts the checksum as the unsigned or the signed sum of the header bytes."""
    if stored is None:
        try:
            stored = _octal(block, "checksum", 148, 156)
        except _Malformed:
            return False
    unsigned = _byte_sum(block) - sum(block[148:156]) + 8 * 32
    if stored == unsigned:
        return True
    high = len(block[:148].translate(None, _ASCII)) + len(block[156:].translate(None, _ASCII))
    return stored == unsigned - 256 * high


def _format(block):
    magic = block[257:263]
    if magic == b"ustar\0":
        return _STAR if block[508:512] == b"tar\0" else _USTAR
    if magic == b"ustar " and block[263:265] == b" \0":
        return _GNU
    return _V7


def _prefix(block, fmt):
    """The name prefix of a ustar-like header; GNU headers have atime and ctime there instead."""
    if fmt == _USTAR:
        return _cstring(block[345:500])
    if fmt == _STAR:
        _numeric(block, "atime", 476, 488)
        _numeric(block, "ctime", 488, 500)
        return _cstring(block[345:476])
    try:
        for start in (345, 357):
            if block[start]:
                _numeric(block, "atime", start, start + 12)
    except _Malformed:
        # Go < 1.8 wrote a ustar prefix into GNU headers; Go reads it back when the times do
        # not parse and the bytes are ASCII.
        prefix = _cstring(block[345:500])
        return prefix if prefix.isascii() else b""
    return b""


def _read_header(block):
    """Go's readHeader: (typeflag, name, link, size, mtime), or None for a wrong checksum."""
    plain = _PLAIN_USTAR.fullmatch(block)
    if plain is None or block[508:512] == b"tar\0":
        return _general_header(block)
    return _plain_header(block, plain)


def _general_header(block):
    """_read_header of a block in a form the plain regular expression does not take."""
    return _parse_header(block) if _checksum_ok(block) else None


def _plain_header(block, plain):
    """_read_header of a block that _PLAIN_USTAR matched (plain)."""
    name, size, mtime, checksum, typeflag, link, prefix = plain.groups()
    stored = int(checksum, 8)
    # The unsigned sum, the checksum field counted as spaces (its bytes are "NNNNNN\0 ").
    if stored != _byte_sum(block) - sum(checksum) + 256 - 32 and not _checksum_ok(block, stored):
        return None
    name, link = name.partition(b"\0")[0], link.partition(b"\0")[0]
    if prefix is not None:  # ustar; a GNU header has none
        prefix = prefix.partition(b"\0")[0]
        if prefix:
            name = prefix + b"/" + name
    return typeflag, name, link, int(size, 8), int(mtime, 8)


def _parse_header(block):
    """Go's readHeader, for a block whose checksum is right: (typeflag, name, link, size, mtime)."""
    fmt = _format(block)
    name = _cstring(block[0:100])
    plain = _PLAIN_FIELDS.fullmatch(block, 100, 148)
    if plain:
        size, mtime = int(plain.group(1), 8), int(plain.group(2), 8)
    else:
        size = _numeric(block, "size", 124, 136)
        _numeric(block, "mode", 100, 108)
        _numeric(block, "uid", 108, 116)
        _numeric(block, "gid", 116, 124)
        mtime = _numeric(block, "mtime", 136, 148)
    if fmt != _V7:
        if not _PLAIN_DEVICES.fullmatch(block, 329, 345):
            _numeric(block, "devmajor", 329, 337)
            _numeric(block, "devminor", 337, 345)
        prefix = _prefix(block, fmt)
        if prefix:
            name = prefix + b"/" + name
    return block[156:157], name, _cstring(block[157:257]), size, mtime


def _go_int(text, what):
    """Go's strconv.ParseInt(text, 10, 64)."""
    if text.isdigit() and len(text) < 19:  # ASCII digits only: the common case, at once
        return int(text)
    if not _DECIMAL.fullmatch(text):
        raise _Malformed("its PAX %s record is not a decimal number" % what)
    sign = -1 if text[:1] == b"-" else 1
    digits = text.lstrip(b"+-").lstrip(b"0") or b"0"
    value = sign * int(digits) if len(digits) <= 19 else _INT64
    if not -_INT64 <= value < _INT64:
        raise _Malformed("its PAX %s record overflows" % what)
    return value


def _pax_records(data):
    """The records of a PAX header as {key: value}, parsed as strictly as Go parses them."""
    return _parse_pax(data)[0]


def _parse_pax(data, limit=None):
    """({key: value}, number of records) of a PAX header; more than limit records (when given)
    is refused before the rest is parsed."""
    if data.count(b"\n") <= _PAX_PLAIN_RECORDS and b"GNU.sparse." not in data:
        # Records that match _PAX_PLAIN, each as long as its length says, and that together are
        # the whole body: Go reads them alike, one after the other.
        found = _PAX_PLAIN.findall(data)
        total = 0
        for length, key, value in found:
            size = int(length)
            if size != len(length) + len(key) + len(value) + 3:
                break
            total += size
        else:
            if total == len(data) and (limit is None or len(found) <= limit):
                return {key: value for _length, key, value in found}, len(found)
    records, pos, sparse, count, size = {}, 0, 0, 0, len(data)
    while pos < size:
        count += 1
        if limit is not None and count > limit:
            raise ArchiveError("The tar archive has more than %d PAX records; an image archive has far fewer." % MAX_PAX_RECORDS)
        space = data.find(b" ", pos)
        try:
            length = _go_int(data[pos:space], "length") if space >= 0 else 0
        except _Malformed:
            length = 0
        end = pos + length
        if length < 5 or end > len(data) or end <= space + 1 or data[end - 1] != 0x0A:
            raise ArchiveError("The tar archive has a malformed PAX header.")
        key, separator, value = data[space + 1:end - 1].partition(b"=")
        nul_in = value if key in (b"path", b"linkpath", b"uname", b"gname") else key
        if not separator or not key or b"\0" in nul_in:
            raise ArchiveError("The tar archive has a malformed PAX header.")
        if key in _SPARSE_KEYS:
            if key != _SPARSE_KEYS[sparse % 2] or b"," in value:
                raise ArchiveError("The tar archive has a malformed PAX header.")
            sparse += 1
        records[key] = value
        pos = end
    return records, count


def _pax_time(value):
    seconds, _dot, fraction = value.partition(b".")
    _go_int(seconds, "time")
    if fraction.translate(None, b"0123456789"):
        raise _Malformed("its PAX time record is not a number")


def _merge_pax(records, name, link, size):
    """Go's mergePAX: non-empty records replace the header's fields; a bad number refuses the member."""
    for key in (b"uid", b"gid"):
        if records.get(key):
            _go_int(records[key], key.decode())
    for key in (b"atime", b"mtime", b"ctime"):
        if records.get(key):
            _pax_time(records[key])
    if records.get(b"size"):
        size = _go_int(records[b"size"], "size")
    return records.get(b"path") or name, records.get(b"linkpath") or link, size


def _too_many_entries():
    return ArchiveError("The tar archive has more than %d entries (headers, and directories that names imply); an image "
                        "archive has far fewer." % MAX_ENTRIES)


def _names_too_long():
    return ArchiveError("The tar archive's member names take more than %d MiB; refusing it." % (MAX_NAMES_TOTAL >> 20))


def _decode(raw):
    return raw.decode("utf-8", "surrogateescape")


class TarScanner:
    """Feed it the bytes of a tar stream; afterwards `members` holds the kept bodies.

    keep(name, size) decides which regular members' bodies to keep: False, True, or a function
    that decides from the body's first SNIFF_BYTES bytes (or all of a shorter body) and returns
    a bool; only confirmed bodies count against MAX_KEPT_TOTAL. `sizes` records every regular
    member's size and `links` every link's target (a hard link's from the root, as `/<path>`).
    stream(name, size), when given, may return a sink (write(bytes), close()) that receives a
    regular member's body as it passes. finish() raises ArchiveError for a stream that ends
    before the tar does.

    Names are normalised (member_name). A member replaces an earlier member of the same name,
    as it does on extraction; a member that would replace one of another kind, or lie below a
    non-directory, is refused in an image archive (the two image stores would read different
    files). record_members=False (filesystem tars, such as container exports) records no
    per-member table, checks no names and counts no entries, so a tar of a million files costs no
    memory; with record_members=True the caps on entries, PAX records and names apply. The table
    of names and kinds is dropped at the end-of-archive marker: nothing needs it afterwards, and
    the archive is parsed without it.
    digests=True records `digests[name]` ("sha256:<hex>") and `heads[name]` (its first 4 bytes)
    of every regular member's body. `end_offset` is the offset in the stream of the
    end-of-archive marker (its first zero block), None until it is seen.
    """

    def __init__(self, keep, stream=None, *, record_members: bool = True, digests: bool = False):
        self._keep = keep
        self._stream = stream
        self._record = record_members
        self._digesting = digests
        self._header = bytearray()
        self._fed = 0  # stream bytes fed so far
        self._remaining = 0  # body bytes of the current member still to come
        self._padding = 0
        self._current = None  # name of the regular member, or typeflag of the special header, being read
        self._size = 0
        self._special = None  # body of a PAX or GNU long-name header: a bytearray, or a memoryview when read at once
        self._body = None  # io.BytesIO while keeping the current member (getvalue() does not copy it)
        self._confirm = None  # keep(...)'s decision function, until it has decided
        self._sink = None
        self._hash = None
        self._head = None
        self._pax = None  # from a PAX 'x' header, for the next member
        self._pax_sparse = False  # whether its body mentions GNU.sparse. (its keys are looked at only then)
        self._long_name = None  # from a GNU 'L' header, for the next member
        self._long_link = None  # from a GNU 'K' header, for the next member
        self._kept_total = 0
        self._names_total = 0
        self._pax_left = MAX_PAX_RECORDS if record_members else None  # PAX records still allowed
        self._kinds = {".": "directory"}  # name -> kind of member, for names recorded; None after the end
        self._headers = 0  # header blocks read, end-of-archive marker included
        self._entries = 0  # headers and implied directories, counted against MAX_ENTRIES when recording
        self._trailer = None  # the block after the end-of-archive marker, while it arrives
        self.count = 0  # regular members
        self.ended = False
        self.end_offset = None
        self.newest_mtime = 0  # largest member mtime, for a creation time that depends only on content
        self.members = {}
        self.sizes = {}
        self.links = {}
        self.order = []
        self.digests = {}
        self.heads = {}

    def feed(self, data):
        view = memoryview(data)
        base, end, pos = self._fed, len(view), 0
        self._fed += end
        while pos < end:
            if self._remaining:
                pos = self._body_bytes(view, pos, end)
            elif self._padding:
                take = min(self._padding, end - pos)
                self._padding -= take
                pos += take
            elif self.ended:
                pos = self._trailer_bytes(view, pos, end)
            elif not self._header and end - pos >= BLOCK:
                pos += BLOCK
                self._on_header(bytes(view[pos - BLOCK:pos]), base + pos - BLOCK)
                if self._special is not None and 0 < self._remaining + self._padding <= end - pos:
                    # A PAX or GNU header's body, padding included, all in this piece: at once.
                    self._special = view[pos:pos + self._remaining]
                    pos += self._remaining + self._padding
                    self._remaining = self._padding = 0
                    self._member_done()
            else:
                take = min(BLOCK - len(self._header), end - pos)
                self._header += view[pos:pos + take]
                pos += take
                if len(self._header) == BLOCK:
                    self._on_header(bytes(self._header), base + pos - BLOCK)
                    self._header.clear()

    def _body_bytes(self, view, pos, end):
        take = min(self._remaining, end - pos)
        piece = view[pos:pos + take]
        if self._special is not None:
            self._special += piece
        else:
            if self._hash is not None:
                self._hash.update(piece)
                if len(self._head) < 4:
                    self._head += bytes(piece[:4 - len(self._head)])
            if self._body is not None:
                self._body.write(piece)
                if self._confirm is not None and self._body.tell() >= SNIFF_BYTES:
                    self._decide()
            if self._sink is not None:
                self._sink.write(piece)
        self._remaining -= take
        pos += take
        if not self._remaining:
            padding = min(self._padding, end - pos)  # skipped here when it is in this piece too
            self._padding -= padding
            pos += padding
            self._member_done()
        return pos

    def _trailer_bytes(self, view, pos, end):
        """Go refuses a tar whose end-of-archive block is followed by anything but a zero block."""
        if self._trailer is None:
            return end  # checked; what follows is not tar
        take = min(BLOCK - len(self._trailer), end - pos)
        self._trailer += view[pos:pos + take]
        if len(self._trailer) == BLOCK:
            if self._trailer != _ZERO_BLOCK:
                raise ArchiveError("The tar archive has a header after its end-of-archive block.")
            self._trailer = None
        return pos + take

    def _on_header(self, block, offset):
        self._headers += 1
        if block == _ZERO_BLOCK:
            # End of archive; a PAX or GNU header left pending is dropped, as Go drops it.
            self.ended, self.end_offset, self._trailer = True, offset, bytearray()
            self._kinds = None
            return
        if self._record:
            self._entries += 1
            if self._entries > MAX_ENTRIES:
                raise _too_many_entries()
        try:
            plain = _PLAIN_USTAR.fullmatch(block)
            if plain is None or block[508:512] == b"tar\0":
                if self._record:
                    # The general parser takes two to three times as long as the plain one: such a
                    # header counts as two entries. No common writer needs it for every header.
                    self._count_entry()
                header = _general_header(block)
            else:
                header = _plain_header(block, plain)
            if header is None:
                if self._headers == 1:
                    raise ArchiveError("The data is not a tar archive.")
                raise ArchiveError("The tar archive is corrupt (bad header checksum after %d members)." % self.count)
            typeflag, name, link, size, mtime = header
            if mtime > self.newest_mtime:
                self.newest_mtime = mtime
            if typeflag in _SPECIAL:
                self._start_special(typeflag, size)
            else:
                self._start_member(typeflag, name, link, size)
        except _Malformed as exc:
            raise ArchiveError("The tar archive has an invalid header after %d members (%s)." % (self.count, exc.args[0]))

    def _start_special(self, typeflag, size):
        what = _SPECIAL[typeflag]
        if size < 0:
            raise _Malformed("a %s with a negative size" % what)
        if size > MAX_SPECIAL:
            raise ArchiveError("The tar archive has a %s of %d bytes; Docker's tar reader refuses more than %d KiB."
                               % (what, size, MAX_SPECIAL >> 10))
        self._current, self._special = typeflag, bytearray()
        self._begin_body(size)

    def _special_done(self):
        typeflag, body = self._current, bytes(self._special)
        self._special = None
        if typeflag == b"x":
            self._pax = self._pax_records(body)
            self._pax_sparse = b"GNU.sparse." in body
        elif typeflag == b"g":
            # Go hands a global header to its caller as an entry of its own, which Docker
            # ignores; what was pending for the next member is dropped with it.
            self._pax_records(body)
            self._pax = self._long_name = self._long_link = None
        elif typeflag == b"L":
            self._long_name = _cstring(body)
        else:
            self._long_link = _cstring(body)

    def _pax_records(self, body):
        records, count = _parse_pax(body, self._pax_left)
        if self._pax_left is not None:
            self._pax_left -= count
        return records

    def _start_member(self, typeflag, name, link, size):
        pax, long_name, long_link = self._pax, self._long_name, self._long_link
        if pax is not None or long_name is not None or long_link is not None:
            self._pax = self._long_name = self._long_link = None
            if pax:
                if self._record and self._pax_sparse and any(key.startswith(b"GNU.sparse.") for key in pax):
                    raise ArchiveError("The tar archive has a sparse member, which docker save never writes; refusing it.")
                name, link, size = _merge_pax(pax, name, link, size)
            name, link = long_name or name, long_link or link
        if typeflag == b"\0":
            typeflag = b"5" if name.endswith(b"/") else b"0"
        if typeflag == b"S":
            raise ArchiveError("The tar archive has a GNU sparse member, which Docker cannot extract; refusing it.")
        body = 0 if typeflag in _HEADER_ONLY else size
        if body < 0:
            raise _Malformed("a negative size")
        regular = typeflag == b"0"
        if self._record:
            decoded = member_name(name.decode("utf-8", "surrogateescape"))
            self._record_member(decoded, typeflag, link, size)
        elif regular:
            decoded = member_name(name.decode("utf-8", "surrogateescape"))
        if regular:
            self.count += 1
            self._open_member(decoded, size)
        else:
            self._current = None
        self._begin_body(body)

    def _begin_body(self, size):
        self._remaining = size
        self._padding = -size % BLOCK
        if not size:
            self._member_done()

    def _record_member(self, name, typeflag, link, size):
        kind = _KINDS.get(typeflag)
        if kind is None:
            raise ArchiveError("The tar archive has a member of type %r (%s), which docker load cannot extract; refusing it."
                               % (_decode(typeflag), name))
        if self._claim(name, kind):
            # On extraction the later member replaces the earlier one.
            for table in (self.members, self.sizes, self.links, self.digests, self.heads):
                table.pop(name, None)
        if kind == "file":
            self.sizes[name] = size
            self.order.append(name)
        elif kind == "symbolic link":
            self.links[name] = self._link_target(_decode(link))
        elif kind == "hard link":
            # A hard link names its target from the archive's root, a symbolic link from its own directory.
            self.links[name] = "/" + member_name(self._link_target(_decode(link)))

    def _link_target(self, target):
        if len(target) > MAX_NAME:
            raise ArchiveError("The tar archive has a link target of %d characters; refusing more than %d." % (len(target), MAX_NAME))
        self._count_name(target)
        return target

    def _claim(self, name, kind):
        """Record name as a member of kind, with its parent directories; True when it was seen
        before. Refuse what the two image stores would read differently: a name reused for
        another kind of member, or a member below a file or link (extraction follows links)."""
        previous = self._kinds.get(name)
        if previous == kind:
            return True
        if previous is not None:
            raise ArchiveError("The tar archive has %s both as a %s and as a %s; refusing it." % (name, previous, kind))
        if len(name) > MAX_NAME:
            raise ArchiveError("The tar archive has a member name of %d characters; refusing more than %d." % (len(name), MAX_NAME))
        if name[:2] == ".." and (name == ".." or name.startswith("../")):
            raise ArchiveError("The tar archive has a member outside its root (%s); refusing it." % name)
        parent = name.rpartition("/")[0]
        while parent and self._kinds.get(parent) != "directory":
            if parent in self._kinds:
                raise ArchiveError("The tar archive has %s inside %s, which is a %s; refusing it." % (name, parent, self._kinds[parent]))
            self._kinds[parent] = "directory"
            self._count_entry()
            self._count_name(parent)
            parent = parent.rpartition("/")[0]
        self._kinds[name] = kind
        self._names_total += len(name)
        if self._names_total > MAX_NAMES_TOTAL:
            raise _names_too_long()
        return False

    def _count_entry(self):
        self._entries += 1
        if self._entries > MAX_ENTRIES:
            raise _too_many_entries()

    def _count_name(self, name):
        self._names_total += len(name)
        if self._names_total > MAX_NAMES_TOTAL:
            raise _names_too_long()

    def _open_member(self, name, size):
        self._current, self._size = name, size
        self._body = self._confirm = None
        if size <= MAX_KEPT_MEMBER:
            decision = self._keep(name, size)
            if callable(decision):
                self._confirm, self._body = decision, io.BytesIO()
            elif decision:
                self._reserve(size)
                self._body = io.BytesIO()
        if self._digesting:
            if size:
                self._hash, self._head = hashlib.sha256(), b""
            else:
                self.digests[name], self.heads[name] = _EMPTY_DIGEST, b""
        self._sink = self._stream(name, size) if self._stream else None

    def _reserve(self, size):
        if self._kept_total + size > MAX_KEPT_TOTAL:
            raise ArchiveError("The archive's metadata is larger than %d MiB; refusing to read it." % (MAX_KEPT_TOTAL >> 20))
        self._kept_total += size

    def _decide(self):
        confirm, self._confirm = self._confirm, None
        with self._body.getbuffer() as view:
            head = bytes(view[:SNIFF_BYTES])
        if confirm(head):
            self._reserve(self._size)
        else:
            self._body = None

    def _member_done(self):
        if self._special is not None:
            self._special_done()
            return
        name = self._current
        if name is None:
            return
        self._current = None
        if self._confirm is not None and self._body is not None:
            self._decide()
        sink, self._sink = self._sink, None
        if sink is not None:
            sink.close()
        if self._hash is not None:
            self.digests[name] = "sha256:" + self._hash.hexdigest()
            self.heads[name] = self._head
            self._hash = self._head = None
        body, self._body = self._body, None
        if body is not None:
            self.members[name] = body.getvalue()  # the buffer itself, not a copy: no second body at its end

    def observe(self, block):
        """The streaming helpers' observer: a block of the tar, or None at its end (checked with finish())."""
        if block is None:
            self.finish()
        else:
            self.feed(block)

    def finish(self):
        """Call at the end of the stream; raises ArchiveError if the tar was cut short."""
        if not self._headers and not self._header:
            raise ArchiveError("The archive is empty.")
        if not self.ended:
            raise ArchiveError("The archive is truncated (it ends inside the tar, after %d members)." % self.count)
