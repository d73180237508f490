# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import tarfile

import pytest
from archive_factory import (
    END_OF_TAR,
    ImageSpec,
    chunks,
    layer_tar,
    legacy_archive,
    oci_archive,
    pax_member,
    pax_record,
    random_bytes,
    raw_header,
    raw_member,
    tar_bytes,
)

from ansible_collections.airgap.docker.plugins.module_utils import tarscan
from ansible_collections.airgap.docker.plugins.module_utils.errors import ArchiveError
from ansible_collections.airgap.docker.plugins.module_utils.tarscan import (
    MAX_KEPT_MEMBER,
    MAX_SPECIAL,
    TarScanner,
    member_name,
)


def keep_all(name, size):
    return True


def keep_none(name, size):
    return False


def feed_all(scanner, data, chunk):
    for piece in chunks(data, chunk):
        scanner.feed(piece)
    return scanner


def reference(data):
    """What tarfile itself reads from data: (order of regular members, sizes, bodies)."""
    order, sizes, bodies = [], {}, {}
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        for info in tar:
            if info.isreg():
                order.append(info.name)
                sizes[info.name] = info.size
                bodies[info.name] = tar.extractfile(info).read()
    return order, sizes, bodies


def small_archive():
    """An archive with a mix of member sizes around the block size, directories and a symlink."""
    entries = [
        ("dir/", None),
        ("dir/empty", b""),
        ("dir/one", b"x"),
        ("dir/511", os.urandom(511)),
        ("dir/512", os.urandom(512)),
        ("dir/513", os.urandom(513)),
        ("manifest.json", b'[{"Config": "abc.json"}]'),
    ]
    data = tar_bytes(entries)
    # add a symlink and a hard link through tarfile directly
    buffer = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO(data)) as src, tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as dst:
        for info in src:
            dst.addfile(info, src.extractfile(info) if info.isreg() else None)
        link = tarfile.TarInfo("dir/link")
        link.type = tarfile.SYMTYPE
        link.linkname = "one"
        dst.addfile(link)
        hard = tarfile.TarInfo("dir/hard")
        hard.type = tarfile.LNKTYPE
        hard.linkname = "dir/one"
        dst.addfile(hard)
        tail = tarfile.TarInfo("tail.json")
        tail.size = 4
        dst.addfile(tail, io.BytesIO(b"tail"))
    return buffer.getvalue()


SMALL = small_archive()


@pytest.mark.parametrize("chunk", [1, 7, 511, 512, 513, 4096, 1 << 20])
def test_small_archive_any_chunk_size_matches_tarfile(chunk):
    order, sizes, bodies = reference(SMALL)
    scanner = feed_all(TarScanner(keep_all), SMALL, chunk)
    scanner.finish()
    assert scanner.ended
    assert scanner.order == order
    assert scanner.sizes == sizes
    assert scanner.members == bodies
    # links and directories are not regular members
    assert "dir/link" not in scanner.sizes and "dir/hard" not in scanner.sizes and "dir/" not in scanner.sizes


def test_random_chunk_boundaries():
    rng = random.Random(42)
    order, sizes, bodies = reference(SMALL)
    for _attempt in range(20):
        scanner = TarScanner(keep_all)
        pos = 0
        while pos < len(SMALL):
            step = rng.randint(1, 1500)
            scanner.feed(SMALL[pos:pos + step])
            pos += step
        scanner.finish()
        assert scanner.members == bodies
        assert scanner.sizes == sizes
        assert scanner.order == order


@pytest.mark.parametrize("chunk", [511, 512, 513, 1 << 20])
def test_image_archive_with_large_layer(chunk):
    layer = layer_tar({"big.bin": os.urandom(1 << 20) + b"\0" * (600 << 10)})
    data = legacy_archive([ImageSpec(tags=["app:1"], layers=[layer])])
    order, sizes, bodies = reference(data)

    def keep(name, size):
        return name.endswith(".json")

    scanner = feed_all(TarScanner(keep), data, chunk)
    scanner.finish()
    assert scanner.sizes == sizes
    assert scanner.order == order
    assert set(scanner.members) == {n for n in bodies if n.endswith(".json")}
    for name, body in scanner.members.items():
        assert body == bodies[name]
    layer_name = next(n for n in order if n.endswith("/layer.tar"))
    assert scanner.sizes[layer_name] == len(layer)
    assert layer_name not in scanner.members


def test_oci_archive_sizes_and_blobs():
    data = oci_archive([ImageSpec(tags=["busybox:latest"])])
    sizes, bodies = reference(data)[1:]
    scanner = feed_all(TarScanner(keep_all), data, 513)
    scanner.finish()
    assert scanner.members == bodies
    assert scanner.sizes == sizes
    assert "index.json" in scanner.members and "oci-layout" in scanner.members


def test_keep_callback_sees_regular_members_with_their_sizes():
    seen = []

    def keep(name, size):
        seen.append((name, size))
        return name == "dir/513"

    scanner = feed_all(TarScanner(keep), SMALL, 1000)
    scanner.finish()
    sizes, bodies = reference(SMALL)[1:]
    assert sorted(seen) == sorted(sizes.items())
    assert list(scanner.members) == ["dir/513"]
    assert scanner.members["dir/513"] == bodies["dir/513"]


def test_keep_none_keeps_no_bodies_but_all_sizes():
    scanner = feed_all(TarScanner(keep_none), SMALL, 512)
    scanner.finish()
    assert scanner.members == {}
    assert scanner.sizes == reference(SMALL)[1]


def test_empty_member_is_kept_as_empty_bytes():
    scanner = feed_all(TarScanner(keep_all), tar_bytes([("a", b""), ("b", b"body")]), 512)
    scanner.finish()
    assert scanner.members == {"a": b"", "b": b"body"}
    assert scanner.sizes == {"a": 0, "b": 4}


def test_member_over_limit_is_skipped_but_sized():
    calls = []

    def keep(name, size):
        calls.append(name)
        return True

    big = b"\x01" * (MAX_KEPT_MEMBER + 1)
    exact = b"\x02" * MAX_KEPT_MEMBER
    data = tar_bytes([("big.json", big), ("exact.json", exact), ("small.json", b"{}")])
    scanner = feed_all(TarScanner(keep), data, 1 << 20)
    scanner.finish()
    assert scanner.sizes == {"big.json": MAX_KEPT_MEMBER + 1, "exact.json": MAX_KEPT_MEMBER, "small.json": 2}
    assert "big.json" not in scanner.members
    assert "big.json" not in calls  # never even offered
    assert scanner.members["exact.json"] == exact
    assert scanner.members["small.json"] == b"{}"
    assert scanner.order == ["big.json", "exact.json", "small.json"]


def test_total_kept_metadata_is_bounded(monkeypatch):
    monkeypatch.setattr(tarscan, "MAX_KEPT_TOTAL", 1000)
    data = tar_bytes([("a.json", b"a" * 600), ("b.json", b"b" * 600)])
    scanner = TarScanner(keep_all)
    with pytest.raises(ArchiveError, match="metadata is larger than"):
        feed_all(scanner, data, 512)


def test_total_kept_metadata_within_bound(monkeypatch):
    monkeypatch.setattr(tarscan, "MAX_KEPT_TOTAL", 1200)
    data = tar_bytes([("a.json", b"a" * 600), ("b.json", b"b" * 600)])
    scanner = feed_all(TarScanner(keep_all), data, 512)
    scanner.finish()
    assert set(scanner.members) == {"a.json", "b.json"}


def test_kept_metadata_cap_is_8_mib():
    """Counted with a full zstd window, it keeps the module within 100 MB (issue 11)."""
    assert tarscan.MAX_KEPT_TOTAL == 8 << 20
    body = b"{" + b" " * (MAX_KEPT_MEMBER - 2) + b"}"
    kept = feed_all(TarScanner(keep_all), tar_bytes([("a.json", body), ("b.json", body)]), 1 << 20)
    kept.finish()
    assert kept._kept_total == 8 << 20
    data = tar_bytes([("a.json", body), ("b.json", body), ("c.json", b"{}")])
    with pytest.raises(ArchiveError) as info:
        feed_all(TarScanner(keep_all), data, 1 << 20)
    assert info.value.msg == "The archive's metadata is larger than 8 MiB; refusing to read it."


LONG_NAME = "blobs/sha256/" + "/".join(["d" * 60] * 4) + "/" + "f" * 120 + ".json"


@pytest.mark.parametrize("fmt", [tarfile.PAX_FORMAT, tarfile.GNU_FORMAT])
@pytest.mark.parametrize("chunk", [1, 100, 512, 1 << 20])
def test_long_names(fmt, chunk):
    assert len(LONG_NAME) > 256  # too long for ustar name + prefix
    data = tar_bytes([(LONG_NAME, b"long"), ("short", b"s"), ("c" * 99 + "x", b"99")], fmt=fmt)
    scanner = feed_all(TarScanner(keep_all), data, chunk)
    scanner.finish()
    assert scanner.members == {LONG_NAME: b"long", "short": b"s", "c" * 99 + "x": b"99"}
    assert scanner.order == [LONG_NAME, "short", "c" * 99 + "x"]
    # the long-name carriers themselves are not members
    assert len(scanner.sizes) == 3


def test_ustar_prefix_name():
    name = "a" * 70 + "/" + "b" * 70 + "/" + "c" * 60  # 141-byte prefix + 60-byte name
    data = tar_bytes([(name, b"prefixed")], fmt=tarfile.USTAR_FORMAT)
    assert data[345:346] == b"a" and data[0:1] == b"c"  # really split into prefix and name
    scanner = feed_all(TarScanner(keep_all), data, 512)
    scanner.finish()
    assert scanner.members == {name: b"prefixed"}


@pytest.mark.parametrize("fmt", [tarfile.PAX_FORMAT, tarfile.GNU_FORMAT])
def test_non_ascii_name(fmt):
    name = "blobs/ünïcødé-€.json"
    data = tar_bytes([(name, b"{}")], fmt=fmt)
    scanner = feed_all(TarScanner(keep_all), data, 512)
    scanner.finish()
    assert scanner.members == {name: b"{}"}


def test_pax_long_name_of_directory_does_not_leak_to_next_member():
    directory = "d" * 150 + "/"
    data = tar_bytes([(directory, None), ("next.json", b"1")], fmt=tarfile.PAX_FORMAT)
    scanner = feed_all(TarScanner(keep_all), data, 512)
    scanner.finish()
    assert scanner.members == {"next.json": b"1"}


def test_gnu_long_name_then_long_link():
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as tar:
        link = tarfile.TarInfo("l" * 120)
        link.type = tarfile.SYMTYPE
        link.linkname = "t" * 130  # GNU 'K' header
        tar.addfile(link)
        info = tarfile.TarInfo("after")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"ok"))
    scanner = feed_all(TarScanner(keep_all), buffer.getvalue(), 512)
    scanner.finish()
    assert scanner.members == {"after": b"ok"}
    assert scanner.order == ["after"]


def _big_member_header(name, size, fmt):
    info = tarfile.TarInfo(name)
    info.size = size
    return info.tobuf(format=fmt)


def test_gnu_base256_size_of_huge_member():
    size = 9 << 30  # 9 GiB: beyond the 11 octal digits of the size field
    header = _big_member_header("layer.tar", size, tarfile.GNU_FORMAT)
    scanner = TarScanner(keep_all)
    scanner.feed(header + b"\0" * 4096)
    assert scanner.sizes == {"layer.tar": size}
    assert scanner.members == {}
    assert not scanner.ended
    with pytest.raises(ArchiveError, match="truncated"):
        scanner.finish()


def test_pax_size_record_of_huge_member():
    """Go's archive/tar (docker save) writes members of 8 GiB and more with a PAX `size`
    record and 0 in the ustar size field; the record is what counts (POSIX pax)."""
    size = 9 << 30
    header = _big_member_header("abc/layer.tar", size, tarfile.PAX_FORMAT)
    # The layer body is itself a tar: the scanner must skip it, not read it as members.
    inner = tar_bytes([("etc/passwd", b"root:x:0:0::/root:/bin/sh\n")])
    scanner = TarScanner(keep_all)
    scanner.feed(header + inner + b"\0" * 4096)
    assert scanner.sizes.get("abc/layer.tar") == size
    assert "etc/passwd" not in scanner.sizes
    assert not scanner.ended


def test_pax_size_record_overrides_header_field():
    """A complete archive whose layer member carries its size in a PAX record only."""
    inner = tar_bytes([("etc/passwd", b"root:x:0:0::/root:/bin/sh\n")])
    info = tarfile.TarInfo("abc/layer.tar")
    info.size = len(inner)
    info.pax_headers = {"size": str(len(inner))}
    header = bytearray(info.tobuf(format=tarfile.PAX_FORMAT))
    # The ustar header (second block after the pax header and its data) gets size 0, as
    # written by Go for sizes that do not fit; recompute its checksum.
    ustar = header[-512:]
    ustar[124:136] = b"00000000000\0"
    ustar[148:156] = b" " * 8
    ustar[148:156] = b"%06o\0 " % sum(ustar)
    header[-512:] = ustar
    tail = tar_bytes([("manifest.json", b"[]")])
    data = bytes(header) + inner + b"\0" * ((512 - len(inner) % 512) % 512) + tail
    scanner = feed_all(TarScanner(keep_all), data, 512)
    scanner.finish()
    assert scanner.sizes == {"abc/layer.tar": len(inner), "manifest.json": 2}
    assert scanner.members.get("manifest.json") == b"[]"


@pytest.mark.parametrize("chunk", [1, 512, 1 << 20])
def test_truncated_stream(chunk):
    data = tar_bytes([("a.json", b"{}" * 400), ("b.json", b"[]" * 300)])
    order = reference(data)[0]
    # cut inside a header, inside a body, inside padding, and before the end-of-archive blocks
    body_end = 512 + 800 + 224 + 512 + 600
    for cut in (513, 600, 512 + 801, 512 + 800 + 224 + 100, body_end, body_end + 424):
        scanner = feed_all(TarScanner(keep_all), data[:cut], chunk)
        with pytest.raises(ArchiveError, match="truncated"):
            scanner.finish()
    assert order == ["a.json", "b.json"]


def test_truncated_message_counts_members():
    data = tar_bytes([("a", b"1"), ("b", b"2"), ("c", b"3")])
    scanner = feed_all(TarScanner(keep_all), data[:512 * 5 + 10], 512)
    with pytest.raises(ArchiveError, match="after 3 members"):
        scanner.finish()


def test_stream_cut_inside_first_header_is_truncated_not_empty():
    data = tar_bytes([("a.json", b"{}")])
    scanner = TarScanner(keep_all)
    scanner.feed(data[:300])
    with pytest.raises(ArchiveError) as info:
        scanner.finish()
    assert "empty" not in info.value.msg


def test_single_end_block_is_accepted():
    data = tar_bytes([("a", b"1")])
    scanner = TarScanner(keep_all)
    scanner.feed(data[:1024 + 512])  # header, body, first zero block only
    scanner.finish()
    assert scanner.ended and scanner.members == {"a": b"1"}


def test_data_after_end_of_archive_is_ignored():
    data = tar_bytes([("a", b"1")]) + b"garbage after the end" * 100
    scanner = feed_all(TarScanner(keep_all), data, 700)
    scanner.finish()
    assert scanner.ended
    assert scanner.members == {"a": b"1"}


def test_empty_tar_is_fine_for_the_scanner():
    data = tar_bytes([])
    scanner = feed_all(TarScanner(keep_all), data, 512)
    scanner.finish()
    assert scanner.ended and scanner.members == {} and scanner.order == []


def test_empty_input():
    scanner = TarScanner(keep_all)
    scanner.feed(b"")
    with pytest.raises(ArchiveError, match="empty"):
        scanner.finish()


def test_no_feed_at_all():
    with pytest.raises(ArchiveError, match="empty"):
        TarScanner(keep_all).finish()


@pytest.mark.parametrize("data", [
    b"This is plainly not a tar archive." * 100,
    json.dumps({"schema": 1}).encode() * 50,
    b"\x1f\x8b\x08\x00" + random_bytes(0, 2000),  # compressed data handed over undecompressed
])
def test_not_a_tar(data):
    with pytest.raises(ArchiveError, match="not a tar"):
        feed_all(TarScanner(keep_all), data, 512)


def test_corrupt_header_after_members():
    data = bytearray(tar_bytes([("a", b"1"), ("b", b"2")]))
    data[1024 + 10] ^= 0xFF  # the second member's name: its checksum no longer matches
    scanner = TarScanner(keep_all)
    with pytest.raises(ArchiveError, match="corrupt") as info:
        feed_all(scanner, bytes(data), 512)
    assert "not a tar" not in info.value.msg
    assert "1 members" in info.value.msg
    assert scanner.members == {"a": b"1"}


def test_feed_accepts_bytearray_and_memoryview():
    data = tar_bytes([("a.json", b"{}")])
    scanner = TarScanner(keep_all)
    scanner.feed(bytearray(data[:700]))
    scanner.feed(memoryview(data)[700:])
    scanner.finish()
    assert scanner.members == {"a.json": b"{}"}


def test_kept_bodies_are_immutable_bytes():
    scanner = feed_all(TarScanner(keep_all), tar_bytes([("a", b"xyz")]), 512)
    assert scanner.members["a"].__class__ is bytes


def test_checksum_helper_rejects_garbage():
    assert not tarscan._checksum_ok(b"\0" * 148 + b"zzzzzzzz" + b"\0" * 356)
    header = tarfile.TarInfo("x").tobuf(format=tarfile.USTAR_FORMAT)[:512]
    assert tarscan._checksum_ok(header)


def test_numeric_fields():
    assert tarscan._numeric(b"0000644\0", "mode") == 0o644
    assert tarscan._numeric(b"  17 \0\0\0", "mode") == 0o17
    assert tarscan._numeric(b"\0" * 12, "size") == 0
    assert tarscan._numeric(b"12\x0034\0", "size") == 0o12  # Go reads up to the first NUL
    assert tarscan._numeric(bytes([0x80]) + (9 << 30).to_bytes(11, "big"), "size") == 9 << 30
    assert tarscan._numeric(b"\xff" * 12, "size") == -1  # base-256 two's complement
    assert tarscan._numeric(b"\xff" * 11 + b"\xfe", "size") == -2


@pytest.mark.parametrize("field", [b"0o17\0", b"1_7\0", b"-17\0", b"+17\0", b"1 7\0", b"18\0", b"abc\0",
                                   bytes([0x80]) + b"\xff" * 11])
def test_numeric_fields_go_refuses(field):
    with pytest.raises(tarscan._Malformed):
        tarscan._numeric(field.ljust(12, b"\0"), "size")


def test_pax_records_helper():
    assert tarscan._pax_records(b"13 mtime=1.5\n19 path=x/y/z.json\n") == {b"mtime": b"1.5", b"path": b"x/y/z.json"}
    assert b"path" not in tarscan._pax_records(b"13 mtime=1.5\n")
    assert tarscan._pax_records("25 path=\u00fcn\u00efc\u00f8d\u00e9.json\n".encode())[b"path"].decode() == "\u00fcn\u00efc\u00f8d\u00e9.json"
    assert tarscan._pax_records(b"19 size=9663676416\n")[b"size"] == b"9663676416"
    assert tarscan._pax_records(b"0015 mtime=1.5\n") == {b"mtime": b"1.5"}  # Go's ParseInt takes leading zeros
    assert tarscan._pax_records(b"") == {}


@pytest.mark.parametrize("bad", [b"x path=a\n", b"20 path=a\n", b"9 nokey\n", b"9 =abc\n", b"12 path=a\0b\n", b"4 a=\n",
                                 b"10 path=a\n\0\0", b"1_0 path=a\n", b" 10 path=a\n",
                                 b"26 GNU.sparse.numbytes=1\n", b"10 path=ab", b"99999999999999999999999 a=b\n"])
def test_malformed_pax_header_is_an_archive_error(bad):
    with pytest.raises(ArchiveError, match="PAX"):
        tarscan._pax_records(bad)


# stream hook --------------------------------------------------------------------------------


class RecordingSink:
    """A stream sink that records the pieces it receives and whether it was closed."""

    def __init__(self, name, size, log):
        self.name, self.size, self.log = name, size, log
        self.pieces = []
        self.closed = 0

    def write(self, chunk):
        assert not self.closed, "write after close"
        self.pieces.append(bytes(chunk))
        self.log.append(("write", self.name))

    def close(self):
        self.closed += 1
        self.log.append(("close", self.name))

    @property
    def body(self):
        return b"".join(self.pieces)


class Streams:
    """A stream(name, size) callback that opens a RecordingSink for every member, or for the
    members `wanted` allows."""

    def __init__(self, wanted=None):
        self.wanted = wanted
        self.calls = []
        self.sinks = {}
        self.log = []

    def __call__(self, name, size):
        self.calls.append((name, size))
        if self.wanted is not None and not self.wanted(name):
            return None
        sink = self.sinks[name] = RecordingSink(name, size, self.log)
        return sink


def chunk_pattern(data, sizes):
    """data cut into pieces whose sizes cycle through sizes."""
    pieces, pos, turn = [], 0, 0
    while pos < len(data):
        step = sizes[turn % len(sizes)]
        pieces.append(data[pos:pos + step])
        pos += step
        turn += 1
    return pieces


STREAMED = tar_bytes([
    ("dir/", None),
    ("dir/empty", b""),
    ("dir/one", b"x"),
    ("dir/511", random_bytes(1, 511)),
    ("dir/512", random_bytes(2, 512)),
    ("dir/513", random_bytes(3, 513)),
    ("big/layer.tar", random_bytes(4, 70000)),
    ("sub/", None),
    ("sub/empty-too", b""),
    ("manifest.json", b'[{"Config": "abc.json"}]'),
])


@pytest.mark.parametrize("pieces", [
    pytest.param(lambda data: chunks(data, 1), id="1-byte"),
    pytest.param(lambda data: chunks(data, 7), id="7"),
    pytest.param(lambda data: chunks(data, 511), id="511"),
    pytest.param(lambda data: chunks(data, 513), id="513"),
    pytest.param(lambda data: chunk_pattern(data, [3, 1021, 1, 4099, 17]), id="odd-mix"),
    pytest.param(lambda data: [data], id="whole"),
])
def test_stream_sinks_receive_every_regular_body_whatever_the_chunking(pieces):
    order, sizes, bodies = reference(STREAMED)
    streams = Streams()
    scanner = TarScanner(keep_none, stream=streams)
    for piece in pieces(STREAMED):
        scanner.feed(piece)
    scanner.finish()
    assert streams.calls == [(name, sizes[name]) for name in order]
    assert set(streams.sinks) == set(order)
    for name, sink in streams.sinks.items():
        assert sink.body == bodies[name], name
        assert sink.closed == 1, name
    # directories are never offered to the stream hook
    assert not any(name.endswith("/") for name, _size in streams.calls)
    # keep_none kept nothing, the stream hook does not change what is kept
    assert scanner.members == {}
    assert scanner.sizes == sizes


def test_stream_sink_is_closed_before_the_next_member_starts():
    streams = Streams()
    feed_all(TarScanner(keep_none, stream=streams), STREAMED, 1).finish()
    # every member's events form one contiguous run that ends with its close
    runs = []
    for event, name in streams.log:
        if not runs or runs[-1][0] != name:
            runs.append([name, []])
        runs[-1][1].append(event)
    assert [name for name, _events in runs] == [name for name, _size in streams.calls]
    for _name, events in runs:
        assert events[-1] == "close" and events.count("close") == 1


@pytest.mark.parametrize("chunk", [1, 512, 1 << 20])
def test_stream_sink_of_zero_size_member_is_closed_without_writes(chunk):
    streams = Streams()
    feed_all(TarScanner(keep_all, stream=streams), STREAMED, chunk).finish()
    for name in ("dir/empty", "sub/empty-too"):
        sink = streams.sinks[name]
        assert sink.closed == 1
        assert sink.pieces == []
        assert sink.size == 0


def test_stream_hook_may_decline_members():
    streams = Streams(wanted=lambda name: name.endswith("layer.tar"))
    scanner = feed_all(TarScanner(keep_all, stream=streams), STREAMED, 999)
    scanner.finish()
    bodies = reference(STREAMED)[2]
    assert list(streams.sinks) == ["big/layer.tar"]
    assert streams.sinks["big/layer.tar"].body == bodies["big/layer.tar"]
    # still asked about every regular member, and keep still works alongside the stream
    assert len(streams.calls) == len(bodies)
    assert scanner.members == bodies


def test_stream_and_keep_both_see_a_kept_member():
    streams = Streams()
    scanner = feed_all(TarScanner(keep_all, stream=streams), STREAMED, 100)
    scanner.finish()
    assert streams.sinks["manifest.json"].body == scanner.members["manifest.json"] == b'[{"Config": "abc.json"}]'


def test_stream_not_called_for_links_and_long_name_carriers():
    long_name = "blobs/sha256/" + "e" * 120
    data = tar_bytes([(long_name, b"long body")], fmt=tarfile.GNU_FORMAT)
    streams = Streams()
    feed_all(TarScanner(keep_none, stream=streams), SMALL, 512).finish()
    assert "dir/link" not in dict(streams.calls) and "dir/hard" not in dict(streams.calls)
    assert "dir/" not in dict(streams.calls)
    streams = Streams()
    feed_all(TarScanner(keep_none, stream=streams), data, 7).finish()
    # the GNU 'L' member carrying the name is not a member of its own
    assert streams.calls == [(long_name, 9)]
    assert streams.sinks[long_name].body == b"long body"


def test_stream_gets_the_pax_size_of_a_huge_member():
    size = 9 << 30
    header = _big_member_header("abc/layer.tar", size, tarfile.PAX_FORMAT)
    streams = Streams()
    scanner = TarScanner(keep_none, stream=streams)
    scanner.feed(header + b"\1" * 5000)
    assert streams.calls == [("abc/layer.tar", size)]
    sink = streams.sinks["abc/layer.tar"]
    assert sink.body == b"\1" * 5000
    assert sink.closed == 0  # the body is not over yet


def test_without_stream_hook_nothing_changes():
    order, sizes, bodies = reference(STREAMED)
    scanner = feed_all(TarScanner(keep_all), STREAMED, 333)
    scanner.finish()
    assert scanner.members == bodies and scanner.sizes == sizes and scanner.order == order


# links --------------------------------------------------------------------------------------


@pytest.mark.parametrize("chunk", [1, 512, 1 << 20])
def test_links_record_symlink_and_hardlink_targets(chunk):
    scanner = feed_all(TarScanner(keep_all), SMALL, chunk)
    scanner.finish()
    # A hard link's target is named from the archive's root, recorded as such.
    assert scanner.links == {"dir/link": "one", "dir/hard": "/dir/one"}
    # links are not regular members
    assert "dir/link" not in scanner.sizes and "dir/hard" not in scanner.members


def link_archive(entries, fmt=tarfile.PAX_FORMAT):
    """A tar of (name, kind, target-or-bytes): kind 'file', 'sym' or 'hard'."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=fmt) as tar:
        for name, kind, value in entries:
            info = tarfile.TarInfo(name)
            if kind == "file":
                info.size = len(value)
                tar.addfile(info, io.BytesIO(value))
            else:
                info.type = tarfile.SYMTYPE if kind == "sym" else tarfile.LNKTYPE
                info.linkname = value
                tar.addfile(info)
    return buffer.getvalue()


def test_links_of_legacy_layer_symlinks_and_absolute_targets():
    layer_id = "a" * 64
    data = link_archive([
        (layer_id + "/layer.tar", "file", b"layer"),
        ("b" * 64 + "/layer.tar", "sym", "../" + layer_id + "/layer.tar"),
        ("abs", "sym", "/" + layer_id + "/layer.tar"),
    ])
    scanner = feed_all(TarScanner(keep_none), data, 100)
    scanner.finish()
    assert scanner.links == {"b" * 64 + "/layer.tar": "../" + layer_id + "/layer.tar", "abs": "/" + layer_id + "/layer.tar"}
    assert scanner.sizes == {layer_id + "/layer.tar": 5}


def test_link_with_long_name_is_recorded_under_its_full_name():
    name = "l" * 150 + "/layer.tar"
    for fmt in (tarfile.PAX_FORMAT, tarfile.GNU_FORMAT):
        scanner = feed_all(TarScanner(keep_all), link_archive([(name, "sym", "target")], fmt=fmt), 512)
        scanner.finish()
        assert scanner.links == {name: "target"}


@pytest.mark.parametrize("fmt", [tarfile.PAX_FORMAT, tarfile.GNU_FORMAT])
def test_link_with_long_target_is_recorded_in_full(fmt):
    target = "../" + "t" * 130 + "/layer.tar"
    scanner = feed_all(TarScanner(keep_all), link_archive([("a/layer.tar", "sym", target)], fmt=fmt), 512)
    scanner.finish()
    assert scanner.links == {"a/layer.tar": target}


# headers as Go's archive/tar reads them -------------------------------------------------------


def scan_raw(data, chunk=512, **options):
    scanner = feed_all(TarScanner(keep_all, **options), data, chunk)
    scanner.finish()
    return scanner


def refused(data, fragment, **options):
    """data is refused with one sentence containing fragment, whatever the chunking, and at once:
    nothing after the offending header is needed."""
    for chunk in (1, 512, 1 << 20):
        with pytest.raises(ArchiveError) as info:
            scan_raw(data, chunk, **options)
        assert fragment in info.value.msg, info.value.msg
        assert "\n" not in info.value.msg
    return info.value.msg


NEGATIVE = b"\xff" * 12  # base-256 -1
LATER = raw_member(b"later", b"after") + END_OF_TAR


@pytest.mark.parametrize("size", [NEGATIVE, b"\xff" * 11 + b"\x00", b"\xff" * 8 + b"\x80" + bytes(3)])
def test_negative_size_is_refused_at_once(size):
    # Before, a negative size moved the scanner back onto an earlier header: it never ended.
    first = raw_member(b"a.json", b"{}")
    msg = refused(first + raw_header(b"b.json", size=size) + LATER, "negative size")
    assert "after 1 members" in msg


def test_negative_pax_size_is_refused():
    data = pax_member({b"size": b"-1024"}) + raw_header(b"layer.tar", size=0) + LATER
    refused(data, "negative size")


@pytest.mark.parametrize("offset, field, what", [
    (124, b"12345678x9\0", "size"),
    (124, b"-0000000012\0", "size"),
    (124, b"0o000000012\0", "size"),
    (124, b"1_000000000\0", "size"),
    (100, b"06x4\0", "mode"),
    (108, b"zz\0", "uid"),
    (116, b"+1\0", "gid"),
    (136, b"1 2 3\0", "mtime"),
    (329, b"9\0", "devmajor"),
    (337, b"x\0", "devminor"),
])
def test_non_octal_numeric_fields_are_refused(offset, field, what):
    data = raw_member(b"a", b"x", fields={offset: field}) + END_OF_TAR
    refused(data, "its %s field is not an octal number" % what)


def test_v7_header_has_no_device_fields_to_check():
    # Go parses devmajor/devminor only in ustar, GNU and STAR headers.
    data = raw_member(b"a", b"x", fmt="v7", fields={329: b"garbage!", 345: b"not/a/prefix\0"}) + END_OF_TAR
    scanner = scan_raw(data)
    assert scanner.members == {"a": b"x"}  # and bytes 345.. are no prefix


@pytest.mark.parametrize("checksum", ["unsigned", "signed"])
def test_checksum_signed_or_unsigned_like_go(checksum):
    name = "caf\u00e9-\u00fcber.json".encode()  # bytes >= 0x80: the two sums differ
    data = raw_member(name, b"{}", checksum=checksum) + END_OF_TAR
    assert scan_raw(data).members == {name.decode(): b"{}"}


def test_checksum_that_matches_neither_sum_is_refused():
    data = raw_member(b"a", b"x") + raw_member(b"b", b"y", checksum=b"0000001\0") + END_OF_TAR
    refused(data, "bad header checksum after 1 members")


def test_checksum_field_must_be_octal():
    good = raw_header(b"a")
    data = bytearray(good)
    data[148:156] = b"%06d\0 " % int(good[148:154], 8)  # the same number written in decimal
    refused(bytes(data) + END_OF_TAR, "not a tar archive")


# ustar, GNU and STAR name prefixes


def test_gnu_atime_is_not_a_prefix():
    """GNU headers hold atime and ctime where ustar has its prefix. The old scanner read those
    bytes as a prefix: for a second manifest.json with an atime it kept the first one, while
    Docker (Go) replaces it with the second."""
    first = raw_member(b"manifest.json", b'[{"Config": "first.json"}]')
    second = raw_member(b"manifest.json", b'[{"Config": "second.json"}]', fmt="gnu", prefix=b"14567012345\x0014567012345\0")
    scanner = scan_raw(first + second + END_OF_TAR)
    assert scanner.members == {"manifest.json": b'[{"Config": "second.json"}]'}
    assert list(scanner.sizes) == ["manifest.json"]


def test_gnu_unparsable_times_are_a_go18_prefix():
    # Go < 1.8 wrote a ustar prefix into GNU headers; Go reads it back when the times do not parse.
    data = raw_member(b"manifest.json", b"[]", fmt="gnu", prefix=b"old\0") + END_OF_TAR
    assert list(scan_raw(data).members) == ["old/manifest.json"]
    # ... but not when it is not ASCII.
    data = raw_member(b"manifest.json", b"[]", fmt="gnu", prefix="\u00e9t\u00e9\0".encode()) + END_OF_TAR
    assert list(scan_raw(data).members) == ["manifest.json"]


def test_the_header_shortcut_reads_what_the_general_parser_reads():
    """_read_header's regular expression (plain ustar and GNU headers) gives what Go's rules,
    as _parse_header follows them, give for the same block; every other block goes to those rules."""
    rng = random.Random(5)
    prefixes = [b"", b"p" * 155, b"dir\0junk", b"00000000000\0" * 2, b"\0" * 12 + b"00000000000\0", b"14567012345\0\0",
                b"\0junk" * 3, b"old\0", "\u00e9t\u00e9\0".encode(), b"\x80" + bytes(11) + b"\0" * 12]
    fields = [{}, {329: b"\0" * 16}, {329: b"0000001\x000000002\0"}, {329: b"0000001 0000002 "}, {100: b"0000644 "},
              {124: b"\x80" + bytes(10) + b"\x05"}, {136: b"77777777777\0"}, {345 + 155: b"x" * 12}, {508: b"tar\0"},
              # as libarchive (bsdtar) writes numbers, and near misses
              {100: b"000644 \0", 108: b"000000 \0", 116: b"000000 \0", 124: b"00000000001 ", 136: b"14567012345 ",
               329: b"000000 \0", 337: b"000000 \0"},
              {124: b"0000000001 \0"}, {100: b"00644 \0\0"}, {136: b"1456701234 5"}]
    shortcut = 0
    for _unused in range(3000):
        block = raw_header(rng.choice([b"a", b"b/c", b"\xff" * 100]), size=rng.choice([0, 1, 8 ** 11 - 1]),
                           typeflag=rng.choice([b"0", b"5", b"x", b"L"]), fmt=rng.choice(["ustar", "gnu", "star", "v7"]),
                           prefix=rng.choice(prefixes), linkname=rng.choice([b"", b"t" * 100]), fields=rng.choice(fields),
                           checksum=rng.choice(["unsigned", "signed"]))
        try:
            expected = tarscan._parse_header(block) if tarscan._checksum_ok(block) else None
        except tarscan._Malformed:
            expected = "malformed"
        try:
            found = tarscan._read_header(block)
        except tarscan._Malformed:
            found = "malformed"
        assert found == expected, block
        shortcut += tarscan._PLAIN_USTAR.fullmatch(block) is not None
    assert 300 < shortcut < 2700  # both ways were taken


def test_star_prefix_is_131_bytes():
    prefix = b"p" * 131
    data = raw_member(b"name.json", b"{}", fmt="star", prefix=prefix + b"00000000000\x0000000000000\0") + END_OF_TAR
    assert list(scan_raw(data).members) == ["p" * 131 + "/name.json"]


def test_star_times_must_be_numbers():
    data = raw_member(b"name.json", b"{}", fmt="star", prefix=b"p\0" + bytes(129) + b"xx\0") + END_OF_TAR
    refused(data, "atime field")


def test_ustar_prefix_is_155_bytes():
    prefix = b"q" * 155
    data = raw_member(b"n", b"1", prefix=prefix) + END_OF_TAR
    assert list(scan_raw(data).members) == ["q" * 155 + "/n"]


# member names as the engines see them


@pytest.mark.parametrize("raw, name", [
    ("./manifest.json", "manifest.json"),
    ("/manifest.json", "manifest.json"),
    ("//a//b/./c", "a/b/c"),
    ("a/../b", "b"),
    ("manifest.json/", "manifest.json"),
    ("", "."),
    ("/..", "."),
])
def test_member_name(raw, name):
    assert member_name(raw) == name


def test_member_name_is_path_clean_relative_to_the_root():
    """Every name of up to six pieces of "a", ".", "..", "/" and "b." against path.Clean (normpath)."""
    import itertools
    import posixpath

    for length in range(7):
        for pieces in itertools.product(["a", ".", "..", "/", "b."], repeat=length):
            path = "".join(pieces)
            assert member_name(path) == (posixpath.normpath(path).lstrip("/") or "." if path else "."), path


@pytest.mark.parametrize("order", [("./manifest.json", "manifest.json"), ("manifest.json", "./manifest.json"),
                                   ("/manifest.json", "manifest.json")])
def test_the_last_of_two_members_of_one_name_wins(order):
    data = raw_member(order[0].encode(), b"[1]") + raw_member(order[1].encode(), b"[2]") + END_OF_TAR
    scanner = scan_raw(data, digests=True)
    assert scanner.members == {"manifest.json": b"[2]"}
    assert scanner.sizes == {"manifest.json": 3}
    assert scanner.digests == {"manifest.json": "sha256:" + hashlib.sha256(b"[2]").hexdigest()}


def test_the_last_of_two_links_of_one_name_wins():
    data = (raw_header(b"a/layer.tar", typeflag=b"2", linkname=b"../b/layer.tar")
            + raw_header(b"./a/layer.tar", typeflag=b"2", linkname=b"../c/layer.tar") + END_OF_TAR)
    assert scan_raw(data).links == {"a/layer.tar": "../c/layer.tar"}


def test_a_link_replacing_a_file_is_refused():
    # The classic store would follow the link, the containerd store read the file.
    data = raw_member(b"a/layer.tar", b"data") + raw_header(b"a/layer.tar", typeflag=b"2", linkname=b"../b/layer.tar") + END_OF_TAR
    refused(data, "a/layer.tar both as a file and as a symbolic link")


def test_a_name_used_for_two_kinds_of_member_is_refused():
    data = raw_member(b"manifest.json", b"[]") + raw_header(b"manifest.json/", typeflag=b"5") + END_OF_TAR
    refused(data, "both as a file and as a directory")
    data = raw_member(b"blobs", b"x") + raw_member(b"blobs/sha256/abc", b"{}") + END_OF_TAR
    refused(data, "inside blobs, which is a file")


def test_a_member_below_a_symlink_is_refused():
    # Extracting it, the classic store would write through the link: to manifest.json itself.
    data = raw_header(b"evil", typeflag=b"2", linkname=b".") + raw_member(b"evil/manifest.json", b"[]") + END_OF_TAR
    refused(data, "inside evil, which is a symbolic link")


def test_a_file_named_like_the_root_is_refused():
    refused(raw_member(b"./", b"x") + END_OF_TAR, "both as a directory and as a file")


def test_a_member_outside_the_root_is_refused():
    refused(raw_member(b"../manifest.json", b"[]") + END_OF_TAR, "outside its root")


@pytest.mark.parametrize("typeflag", [b"7", b"S", b"V", b"Z"])
def test_member_types_docker_load_cannot_extract_are_refused(typeflag):
    data = raw_member(b"index.json", b"{}", typeflag=typeflag) + END_OF_TAR
    with pytest.raises(ArchiveError):
        scan_raw(data)


@pytest.mark.parametrize("typeflag", [b"7", b"V", b"Z"])
def test_other_types_in_a_filesystem_tar_are_skipped_with_their_body(typeflag):
    data = raw_member(b"odd", b"x" * 700, typeflag=typeflag) + raw_member(b"next", b"y") + END_OF_TAR
    scanner = scan_raw(data, record_members=False)
    assert scanner.count == 1 and scanner.ended


def test_typeflag_nul_with_a_trailing_slash_is_a_directory():
    # Go turns a '\0' member named "d/" into a directory, which has no body whatever its size.
    data = raw_header(b"d/", size=1024, typeflag=b"\0") + raw_member(b"d/f", b"1", typeflag=b"\0") + END_OF_TAR
    scanner = scan_raw(data)
    assert scanner.sizes == {"d/f": 1}


@pytest.mark.parametrize("typeflag", [b"1", b"2", b"3", b"4", b"5", b"6"])
def test_header_only_types_have_no_body_whatever_their_size(typeflag):
    # Go reads the next header right after a link, device, directory or fifo header.
    link = raw_header(b"x", size=1024, typeflag=typeflag, linkname=b"target")
    scanner = scan_raw(link + raw_member(b"after", b"ok") + END_OF_TAR)
    assert scanner.members == {"after": b"ok"}


def test_a_negative_size_on_a_header_only_type_is_ignored_like_go():
    link = raw_header(b"x", size=NEGATIVE, typeflag=b"2", linkname=b"target")
    assert scan_raw(link + LATER).members == {"later": b"after"}


# PAX and GNU long names


@pytest.mark.parametrize("typeflag, what", [(b"L", "GNU long name"), (b"K", "GNU long link name"), (b"x", "PAX header"),
                                            (b"g", "global PAX header")])
def test_special_headers_over_1_mib_are_refused_from_their_header(typeflag, what):
    header = raw_header(b"././@LongLink", size=512 << 20, typeflag=typeflag)
    scanner = TarScanner(keep_all)
    with pytest.raises(ArchiveError) as info:
        scanner.feed(header)  # only the header: nothing of the body is needed to refuse it
    assert "%s of %d bytes" % (what, 512 << 20) in info.value.msg


def test_special_headers_of_exactly_1_mib_are_read():
    name = b"n/" * ((MAX_SPECIAL - 2) // 2) + b"ab"
    assert len(name) == MAX_SPECIAL
    data = raw_member(b"././@LongLink", name, typeflag=b"L") + raw_member(b"short", b"1") + END_OF_TAR
    with pytest.raises(ArchiveError, match="member name of"):  # read, then too long to record
        scan_raw(data, 1 << 20)
    scanner = scan_raw(data, 1 << 20, record_members=False)
    assert scanner.count == 1


def test_special_header_with_a_negative_size_is_refused():
    refused(raw_header(b"L", size=NEGATIVE, typeflag=b"L") + LATER, "negative size")


def test_global_header_drops_what_was_pending():
    # Go returns a global header as an entry of its own: a long name read before it is lost.
    data = (raw_member(b"././@LongLink", b"long/name.json\0", typeflag=b"L") + pax_member({b"comment": b"x"}, b"g")
            + raw_member(b"short.json", b"{}") + END_OF_TAR)
    assert scan_raw(data).members == {"short.json": b"{}"}


def test_pax_and_gnu_names_combine_like_go():
    # PAX records first, then a GNU long name overrides the path; empty records keep the header's fields.
    data = (pax_member({b"path": b"from-pax", b"linkpath": b""}) + raw_member(b"././@LongLink", b"from-gnu\0", typeflag=b"L")
            + raw_member(b"header-name", b"1") + END_OF_TAR)
    assert scan_raw(data).members == {"from-gnu": b"1"}
    data = pax_member({b"path": b""}) + raw_member(b"header-name", b"1") + END_OF_TAR
    assert scan_raw(data).members == {"header-name": b"1"}


def test_a_later_pax_header_replaces_an_earlier_one():
    data = pax_member({b"path": b"first"}) + pax_member({b"mtime": b"1"}) + raw_member(b"header-name", b"1") + END_OF_TAR
    assert scan_raw(data).members == {"header-name": b"1"}


@pytest.mark.parametrize("records, size", [({b"size": b"+5"}, 5), ({b"size": b"0005"}, 5), ({b"size": b""}, 3),
                                           ({b"mtime": b"1."}, 3), ({b"mtime": b"-1.000000000001"}, 3), ({b"uid": b"-7"}, 3)])
def test_pax_numbers_go_accepts(records, size):
    body = b"12345"[:size]
    data = pax_member(records) + raw_member(b"a", body, size=3)[:512] + body + bytes(-len(body) % 512) + END_OF_TAR
    assert scan_raw(data).sizes == {"a": size}


@pytest.mark.parametrize("records", [{b"size": b"5 "}, {b"size": b"1_0"}, {b"size": b"0x10"}, {b"size": b"99999999999999999999"},
                                     {b"uid": b"abc"}, {b"gid": b"1.5"}, {b"mtime": b"1.5x"}, {b"atime": b"x"}, {b"ctime": b".5"}])
def test_pax_numbers_go_refuses(records):
    refused(pax_member(records) + raw_member(b"a", b"123") + END_OF_TAR, "PAX")


def test_global_header_values_are_not_checked_like_go():
    data = pax_member({b"size": b"nonsense"}, b"g") + raw_member(b"a", b"1") + END_OF_TAR
    assert scan_raw(data).members == {"a": b"1"}


def test_sparse_members_are_refused_in_image_archives():
    refused(raw_member(b"s", b"x", typeflag=b"S", fmt="gnu") + END_OF_TAR, "GNU sparse member")
    sparse = pax_member({b"GNU.sparse.major": b"1", b"GNU.sparse.minor": b"0", b"GNU.sparse.name": b"manifest.json"})
    refused(sparse + raw_member(b"GNUSparseFile.0/x", b"1") + END_OF_TAR, "sparse member")
    # In a filesystem tar the body is skipped by its stored size, as Go does.
    scanner = scan_raw(sparse + raw_member(b"GNUSparseFile.0/x", b"1") + raw_member(b"y", b"2") + END_OF_TAR, record_members=False)
    assert scanner.count == 2


def test_pax_record_helper_builds_self_counting_records():
    for value in (b"", b"x" * 5, b"y" * 95, b"z" * 994):
        record = pax_record(b"path", value)
        assert tarscan._pax_records(record) == {b"path": value}


# end of archive


def test_end_offset_is_where_the_end_marker_begins():
    data = tar_bytes([("a", b"1"), ("b", b"x" * 600)])
    scanner = TarScanner(keep_all)
    assert scanner.end_offset is None
    for piece in chunks(data, 100):
        scanner.feed(piece)
    assert scanner.end_offset == 512 + 512 + 512 + 1024
    assert data[scanner.end_offset:scanner.end_offset + 1024] == bytes(1024)


def test_end_offset_counts_every_byte_fed():
    data = raw_member(b"a", b"1") + pax_member({b"path": b"p" * 300}) + raw_member(b"b", b"2" * 513) + END_OF_TAR
    scanner = scan_raw(data, 7)
    assert scanner.end_offset == len(data) - 1024


def test_a_header_after_one_end_block_is_refused_like_go():
    data = raw_member(b"a", b"1") + bytes(512) + raw_member(b"b", b"2") + END_OF_TAR
    refused(data, "a header after its end-of-archive block")


def test_anything_after_two_end_blocks_is_ignored():
    data = raw_member(b"a", b"1") + END_OF_TAR + raw_member(b"b", b"2") + b"junk" * 1000
    scanner = scan_raw(data)
    assert scanner.members == {"a": b"1"} and scanner.end_offset == 1024


def test_observe_feeds_after_the_end_to_check_the_second_block():
    scanner = TarScanner(keep_all)
    scanner.observe(raw_member(b"a", b"1") + bytes(512))
    with pytest.raises(ArchiveError, match="after its end-of-archive block"):
        scanner.observe(raw_member(b"b", b"2"))


def test_a_stream_cut_inside_the_second_end_block_is_complete():
    # Go would report an unexpected EOF; callers that stop feeding at end_offset must not fail.
    scanner = TarScanner(keep_all)
    scanner.feed(raw_member(b"a", b"1") + bytes(600))
    scanner.finish()


# digests and heads


@pytest.mark.parametrize("chunk", [1, 7, 512, 1 << 20])
def test_digests_and_heads_of_every_regular_member(chunk):
    bodies = reference(STREAMED)[2]
    scanner = feed_all(TarScanner(keep_none, digests=True), STREAMED, chunk)
    scanner.finish()
    assert scanner.digests == {name: "sha256:" + hashlib.sha256(body).hexdigest() for name, body in bodies.items()}
    assert scanner.heads == {name: body[:4] for name, body in bodies.items()}
    assert scanner.members == {}


def test_no_digests_unless_asked():
    scanner = feed_all(TarScanner(keep_all), STREAMED, 512)
    assert scanner.digests == {} and scanner.heads == {}


def test_digests_skip_links_and_directories():
    scanner = feed_all(TarScanner(keep_none, digests=True), SMALL, 512)
    assert "dir/link" not in scanner.digests and "dir/" not in scanner.digests and "dir" not in scanner.digests


# keep decisions from the first bytes


def test_keep_function_decides_from_the_first_bytes(monkeypatch):
    seen = []

    def looks_like_json(head):
        seen.append(head)
        return head.startswith(b"{")

    monkeypatch.setattr(tarscan, "MAX_KEPT_TOTAL", 3000)
    layers = [("blobs/%d" % n, b"\x1f\x8b" + bytes(1500)) for n in range(20)]  # 30 KB never kept nor counted
    data = tar_bytes([*layers, ("blobs/config", b'{"a": 1}' + b" " * 1000), ("blobs/short", b"{}")])
    for chunk in (1, 100, 1 << 20):
        seen.clear()
        scanner = feed_all(TarScanner(lambda name, size: looks_like_json), data, chunk)
        scanner.finish()
        assert scanner.members == {"blobs/config": b'{"a": 1}' + b" " * 1000, "blobs/short": b"{}"}
        assert [len(head) for head in seen] == [512] * 21 + [2]
    assert scanner._kept_total == 1010


def test_kept_total_is_checked_when_a_body_is_confirmed(monkeypatch):
    monkeypatch.setattr(tarscan, "MAX_KEPT_TOTAL", 1500)
    data = tar_bytes([("a", b"{" + bytes(999)), ("b", b"{" + bytes(999))])
    with pytest.raises(ArchiveError, match="metadata is larger than"):
        feed_all(TarScanner(lambda name, size: lambda head: True), data, 1 << 20)


# caps and tables


def _until_the_end(data, **options):
    """data up to its end-of-archive marker: a scanner fed only that still holds its table of names."""
    return data[:scan_raw(data, chunk=1 << 20, **options).end_offset]


def test_filesystem_mode_records_no_tables():
    entries = [("d%d/" % (n % 7), None) if n % 5 == 0 else ("d%d/f%d" % (n % 7, n), b"x" * (n % 3)) for n in range(3000)]
    data = tar_bytes(entries)
    members = _until_the_end(data, record_members=False)
    scanner = feed_all(TarScanner(keep_none, record_members=False), members, 1 << 20)
    assert scanner._kinds == {".": "directory"}
    scanner.feed(data[len(members):])
    scanner.finish()
    assert scanner.sizes == {} and scanner.links == {} and scanner.order == [] and scanner.members == {}
    assert scanner.count == 2400


def test_filesystem_mode_accepts_what_only_matters_to_image_archives():
    data = (raw_header(b"evil", typeflag=b"2", linkname=b"/") + raw_member(b"evil/x", b"1") + raw_member(b"../up", b"2")
            + raw_member(b"x" * 90 + b"/" + b"y" * 90, b"3", prefix=b"p" * 150) + END_OF_TAR)
    assert scan_raw(data, record_members=False).count == 3


def test_member_count_is_capped(monkeypatch):
    monkeypatch.setattr(tarscan, "MAX_ENTRIES", 10)
    data = tar_bytes([("m%d" % n, b"") for n in range(11)])
    refused(data, "more than 10 entries")
    monkeypatch.setattr(tarscan, "MAX_ENTRIES", 11)
    assert len(scan_raw(data).sizes) == 11


def test_repeated_names_count_against_the_entry_cap(monkeypatch):
    monkeypatch.setattr(tarscan, "MAX_ENTRIES", 10)
    refused(b"".join(raw_member(b"same", b"x") for _unused in range(11)) + END_OF_TAR, "more than 10 entries")


@pytest.mark.parametrize("special", [
    lambda n: pax_member({b"path": b"p%d" % n}),
    lambda n: pax_member({b"comment": b"c%d" % n}, typeflag=b"g"),
    lambda n: raw_member(b"././@LongLink", b"long%d" % n, typeflag=b"L"),
    lambda n: raw_member(b"././@LongLink", b"target%d" % n, typeflag=b"K"),
], ids=["pax", "global-pax", "gnu-long-name", "gnu-long-link"])
def test_pax_and_gnu_headers_count_as_entries(monkeypatch, special):
    """Every header costs time and memory, whatever its kind: PAX and GNU headers are entries too."""
    monkeypatch.setattr(tarscan, "MAX_ENTRIES", 10)
    pairs = b"".join(special(n) + raw_member(b"m%d" % n, b"x") for n in range(5))
    assert len(scan_raw(pairs + END_OF_TAR).sizes) == 5  # 10 headers
    refused(pairs + special(5) + END_OF_TAR, "more than 10 entries")
    # A filesystem tar counts none: a container export may have millions.
    assert scan_raw(pairs * 3 + END_OF_TAR, record_members=False).count == 15


def test_implied_directories_count_as_entries(monkeypatch):
    monkeypatch.setattr(tarscan, "MAX_ENTRIES", 10)
    assert scan_raw(raw_member(b"a/b/c/d/e/f/g/h/i/x", b"1") + END_OF_TAR).sizes == {"a/b/c/d/e/f/g/h/i/x": 1}  # 1 + 9
    refused(raw_member(b"a/b/c/d/e/f/g/h/i/j/x", b"1") + END_OF_TAR, "more than 10 entries")
    # Directories seen once count once.
    assert len(scan_raw(raw_member(b"a/b/x", b"1") + raw_member(b"a/b/y", b"1") + END_OF_TAR).sizes) == 2


def test_pax_records_are_capped_across_the_archive(monkeypatch):
    monkeypatch.setattr(tarscan, "MAX_PAX_RECORDS", 6)
    three = {b"mtime": b"1", b"uid": b"0", b"comment": b"x"}
    data = pax_member(three) + raw_member(b"a", b"1") + pax_member(three, typeflag=b"g") + raw_member(b"b", b"2")
    assert len(scan_raw(data + END_OF_TAR).sizes) == 2
    refused(data + pax_member({b"mtime": b"1"}) + raw_member(b"c", b"3") + END_OF_TAR, "more than 6 PAX records")
    # Duplicate keys are records too.
    refused(pax_member(pax_record(b"mtime", b"1") * 7) + raw_member(b"a", b"1") + END_OF_TAR, "more than 6 PAX records")
    assert scan_raw(data * 3 + END_OF_TAR, record_members=False).count == 6


def test_a_pax_header_of_tiny_records_is_refused_at_the_cap():
    """1 MiB of 6-byte records is 170,000 records: refused once the cap is reached, not parsed to its end."""
    body = b"6 a=b\n" * ((1 << 20) // 6)
    refused(pax_member(body) + raw_member(b"a", b"1") + END_OF_TAR, "more than %d PAX records" % tarscan.MAX_PAX_RECORDS)


def _general_pax(data):
    """_parse_pax without its findall() shortcut."""
    saved, tarscan._PAX_PLAIN_RECORDS = tarscan._PAX_PLAIN_RECORDS, -1
    try:
        return tarscan._parse_pax(data)
    except ArchiveError as exc:
        return exc.msg
    finally:
        tarscan._PAX_PLAIN_RECORDS = saved


def _pax_either(data):
    try:
        return tarscan._parse_pax(data)
    except ArchiveError as exc:
        return exc.msg


PAX_PIECES = [pax_record(b"path", b"a/b"), pax_record(b"mtime", b"1.5"), pax_record(b"path", b"c"), b"0015 mtime=1.5\n",
              b"+14 mtime=1.5\n", b"14 mtime=1.5\n", b"13 mtime=1.5\n\0", pax_record(b"comment", b"a\nb"),
              pax_record(b"comment", b"a\0b"), pax_record(b"path", b"a\0b"), pax_record(b"a b", b"c=d"), b"6 =abc\n",
              b"5 a=\n", b"4 a=\n", b"6 a=b\n", b"6 a=b", pax_record(b"GNU.sparse.offset", b"1"),
              pax_record(b"GNU.sparse.numbytes", b"2"), b"x"]


def test_the_pax_shortcut_reads_what_the_general_parser_reads():
    rng = random.Random(11)
    bodies = [b""] + PAX_PIECES + [b"".join(rng.choice(PAX_PIECES) for _unused in range(rng.randint(1, 6))) for _unused in range(3000)]
    bodies += [pax_record(b"k%d" % n, b"v") * 1 for n in range(70)]  # more records than the shortcut takes
    bodies.append(b"".join(pax_record(b"k%d" % n, b"v") for n in range(70)))
    for body in bodies:
        assert _pax_either(body) == _general_pax(body), body


def test_name_length_is_capped():
    data = pax_member({b"path": b"n" * 4097}) + raw_member(b"a", b"1") + END_OF_TAR
    refused(data, "member name of 4097 characters")
    data = pax_member({b"linkpath": b"t" * 4097}) + raw_header(b"a", typeflag=b"2") + END_OF_TAR
    refused(data, "link target of 4097 characters")


def test_names_total_is_capped(monkeypatch):
    monkeypatch.setattr(tarscan, "MAX_NAMES_TOTAL", 5000)
    deep = b"/".join(b"d%d" % n for n in range(600))  # 600 directories implied by one name of ~2,900 characters
    refused(pax_member({b"path": deep}) + raw_member(b"a", b"1") + END_OF_TAR, "member names take more than")


def test_directories_are_implied_once():
    data = tar_bytes([("a/b/c/%d" % n, b"") for n in range(100)])
    scanner = feed_all(TarScanner(keep_all), _until_the_end(data), 512)
    assert scanner._kinds["a/b/c"] == scanner._kinds["a/b"] == scanner._kinds["a"] == "directory"
    assert scanner._names_total == sum(len("a/b/c/%d" % n) for n in range(100)) + len("a/b/c") + len("a/b") + len("a")
    assert scanner._entries == 100 + 3  # the members' headers and the three directories they imply


def test_the_table_of_names_is_dropped_at_the_end_of_the_archive():
    """Nothing is recorded after the end-of-archive marker: the names and kinds are dropped there,
    before the archive's documents are parsed, while the per-member tables stay."""
    data = tar_bytes([("a/b/c/%d" % n, b"%d" % n) for n in range(100)])
    scanner = feed_all(TarScanner(keep_all), _until_the_end(data), 512)
    assert len(scanner._kinds) == 1 + 100 + 3
    scanner.feed(data[len(_until_the_end(data)):])
    scanner.finish()
    assert scanner._kinds is None
    assert len(scanner.sizes) == len(scanner.members) == 100 and scanner.order[-1] == "a/b/c/99"


def test_a_name_with_control_characters_leaves_the_message_on_one_line():
    # Found by hypothesis: a member of an unknown type named "\n" split the sentence in two.
    stream = io.BytesIO()
    with tarfile.open(fileobj=stream, mode="w", format=tarfile.USTAR_FORMAT) as archive:
        member = tarfile.TarInfo("evil\n\x1b[2Jname")
        member.type = b"\x01"
        archive.addfile(member)
    with pytest.raises(ArchiveError) as info:
        feed_all(TarScanner(keep_all), stream.getvalue(), 512).finish()
    assert "\n" not in info.value.msg and "\x1b" not in info.value.msg
    assert "evil\\n\\x1b[2Jname" in info.value.msg
