# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import io
import json
import os
import random
import tarfile

import pytest
from archive_factory import (
    ImageSpec,
    chunks,
    layer_tar,
    legacy_archive,
    oci_archive,
    random_bytes,
    tar_bytes,
)

from ansible_collections.airgap.docker.plugins.module_utils import tarscan
from ansible_collections.airgap.docker.plugins.module_utils.errors import ArchiveError
from ansible_collections.airgap.docker.plugins.module_utils.tarscan import (
    MAX_KEPT_MEMBER,
    TarScanner,
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
    assert not tarscan._header_valid(b"\0" * 148 + b"zzzzzzzz" + b"\0" * 356)
    header = tarfile.TarInfo("x").tobuf(format=tarfile.USTAR_FORMAT)[:512]
    assert tarscan._header_valid(header)


def test_octal_or_base256():
    assert tarscan._octal_or_base256(b"0000644\0") == 0o644
    assert tarscan._octal_or_base256(b"  17 \0\0\0") == 0o17
    assert tarscan._octal_or_base256(b"\0" * 12) == 0
    assert tarscan._octal_or_base256(bytes([0x80]) + (9 << 30).to_bytes(11, "big")) == 9 << 30


def test_pax_records_helper():
    assert tarscan._pax_records(b"13 mtime=1.5\n19 path=x/y/z.json\n") == {"mtime": b"1.5", "path": b"x/y/z.json"}
    assert "path" not in tarscan._pax_records(b"13 mtime=1.5\n")
    assert tarscan._pax_records("25 path=\u00fcn\u00efc\u00f8d\u00e9.json\n".encode())["path"].decode() == "\u00fcn\u00efc\u00f8d\u00e9.json"
    assert tarscan._pax_records(b"19 size=9663676416\n")["size"] == b"9663676416"


@pytest.mark.parametrize("bad", [b"x path=a\n", b"20 path=a\n", b"9 nokey\n"])
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
