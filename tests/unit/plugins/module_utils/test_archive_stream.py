# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import errno
import gzip
import hashlib
import os

import pytest
import zstandard
from archive_factory import ImageSpec, chunks, legacy_archive, random_bytes, tar_bytes

from ansible_collections.airgap.docker.plugins.module_utils import disk_space, sidecar
from ansible_collections.airgap.docker.plugins.module_utils.archive_stream import (
    Transfer,
    commit_archive,
    held_back,
    read_archive,
    sniff_compression,
    until_end_of_archive,
    write_archive,
)
from ansible_collections.airgap.docker.plugins.module_utils.atomic_file import AtomicFile
from ansible_collections.airgap.docker.plugins.module_utils.compression import GZIP, KINDS, NONE, ZSTD
from ansible_collections.airgap.docker.plugins.module_utils.errors import AirgapError, ArchiveError, SpaceError
from ansible_collections.airgap.docker.plugins.module_utils.tarscan import TarScanner

SUFFIX = {NONE: ".tar", GZIP: ".tar.gz", ZSTD: ".tar.zst"}
# A tar with an image in it, plus incompressible bytes, cut into blocks of uneven sizes.
TAR = legacy_archive([ImageSpec(tags=["app:1"], layers=[tar_bytes([("blob", random_bytes(41, 70_000))])])])
BLOCKS = chunks(TAR, 10_007)


class Recorder:
    """An observer that remembers every block it was shown (None for the end)."""

    def __init__(self, fail_at=None, error=None):
        self.seen = []
        self.fail_at = fail_at
        self.error = error

    def __call__(self, block):
        if self.fail_at is not None and len(self.seen) == self.fail_at:
            raise self.error
        self.seen.append(block)


def listing(directory):
    return sorted(os.listdir(str(directory)))


def sha256_file(path):
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


def decompress(data, kind):
    if kind == GZIP:
        return gzip.decompress(data)
    if kind == ZSTD:
        return zstandard.ZstdDecompressor().stream_reader(data, read_across_frames=True).read()
    return data


# held_back ----------------------------------------------------------------------------------


def test_held_back_yields_every_block_the_last_after_verify():
    log = []

    def source():
        for block in (b"a", b"", b"c", b"last"):
            log.append(("produced", block))
            yield block
        log.append(("exhausted", None))

    def verify():
        log.append(("verify", None))

    for block in held_back(source(), verify):
        log.append(("got", block))
    assert [entry for entry in log if entry[0] == "got"] == [("got", b"a"), ("got", b""), ("got", b"c"), ("got", b"last")]
    assert log.index(("exhausted", None)) < log.index(("verify", None)) < log.index(("got", b"last"))
    assert log.count(("verify", None)) == 1
    # every block but the last reached the consumer before verify ran
    assert log.index(("got", b"c")) < log.index(("verify", None))


def test_held_back_is_lazy_and_verifies_only_at_the_end():
    calls = []
    stream = held_back(iter([b"1", b"2", b"3"]), lambda: calls.append("verify"))
    assert next(stream) == b"1"
    assert next(stream) == b"2"
    assert calls == []
    assert next(stream) == b"3"
    assert calls == ["verify"]
    with pytest.raises(StopIteration):
        next(stream)
    assert calls == ["verify"]


def test_held_back_failing_verify_withholds_the_last_block():
    received = []

    def verify():
        raise ArchiveError("checksum mismatch")

    with pytest.raises(ArchiveError, match="checksum mismatch"):
        for block in held_back(iter([b"one", b"two", b"three"]), verify):
            received.append(block)
    assert received == [b"one", b"two"]


def test_held_back_single_block():
    calls = []
    assert list(held_back([b"only"], lambda: calls.append(1))) == [b"only"]
    assert calls == [1]
    received = []
    with pytest.raises(ValueError):
        for block in held_back([b"only"], _raise_value_error):
            received.append(block)
    assert received == []


def _raise_value_error():
    raise ValueError("nope")


def test_held_back_empty_input_still_verifies():
    calls = []
    assert list(held_back(iter([]), lambda: calls.append(1))) == []
    assert calls == [1]
    with pytest.raises(ValueError):
        list(held_back([], _raise_value_error))


def test_held_back_source_error_skips_verify():
    calls = []

    def source():
        yield b"a"
        raise OSError("read failed")

    with pytest.raises(OSError):
        list(held_back(source(), lambda: calls.append(1)))
    assert calls == []


# write_archive / read_archive ----------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("as_iterable", [list, tuple, iter, lambda blocks: (block for block in blocks)], ids=["list", "tuple", "iter", "generator"])
def test_write_then_read_round_trip(tmp_path, kind, as_iterable):
    path = str(tmp_path / ("images" + SUFFIX[kind]))
    observed = Recorder()
    target, transfer = write_archive(as_iterable(BLOCKS), path, kind, None, len(TAR), observed)
    assert observed.seen == BLOCKS + [None]
    assert isinstance(transfer, Transfer)
    assert transfer.tar_size == len(TAR)
    assert transfer.seconds >= 0
    # written beside the target under a temporary name; the target does not exist yet
    assert os.path.dirname(target.temp_path) == str(tmp_path)
    assert os.path.basename(target.temp_path).startswith(".images")
    assert listing(tmp_path) == [os.path.basename(target.temp_path)]
    assert not os.path.exists(path)

    target.commit()
    assert listing(tmp_path) == [os.path.basename(path)]
    with open(path, "rb") as handle:
        data = handle.read()
    assert transfer.archive_size == len(data)
    assert transfer.archive_sha256 == hashlib.sha256(data).hexdigest()
    assert decompress(data, kind) == TAR
    if kind == NONE:
        assert data == TAR
    else:
        assert len(data) < len(TAR)

    assert sniff_compression(path) == kind
    read = Recorder()
    back = read_archive(path, read)
    assert read.seen[-1] is None
    assert None not in read.seen[:-1]
    assert b"".join(read.seen[:-1]) == TAR
    assert back.tar_size == len(TAR)
    assert back.archive_size == transfer.archive_size
    assert back.archive_sha256 == transfer.archive_sha256


@pytest.mark.parametrize("kind, level", [(GZIP, 1), (GZIP, 9), (ZSTD, 1), (ZSTD, 19)])
def test_write_archive_applies_the_level(tmp_path, kind, level):
    data = b"a line that repeats, with a number: 7\n" * 20_000
    path = str(tmp_path / ("x" + SUFFIX[kind]))
    sizes = []
    for chosen_level in (1 if kind == GZIP else -7, level):
        target, transfer = write_archive(chunks(data, 65_536), path, kind, chosen_level, len(data), Recorder())
        assert os.path.getsize(target.temp_path) == transfer.archive_size
        with open(target.temp_path, "rb") as handle:
            assert decompress(handle.read(), kind) == data
        target.abort()
        sizes.append(transfer.archive_size)
    fast, chosen = sizes
    if level > 1:
        assert chosen < fast
    else:
        assert chosen <= fast


@pytest.mark.parametrize("kind", [GZIP, ZSTD])
def test_write_and_read_an_empty_stream(tmp_path, kind):
    path = str(tmp_path / ("empty" + SUFFIX[kind]))
    observed = Recorder()
    target, transfer = write_archive([], path, kind, None, 0, observed)
    target.commit()
    assert observed.seen == [None]
    assert transfer.tar_size == 0
    assert transfer.archive_size == os.path.getsize(path) > 0
    read = Recorder()
    assert read_archive(path, read).tar_size == 0
    assert read.seen == [None]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("fail_at", [0, 3, len(BLOCKS)], ids=["first block", "middle", "end"])
def test_observer_error_aborts_and_leaves_nothing(tmp_path, kind, fail_at):
    path = str(tmp_path / ("images" + SUFFIX[kind]))
    observed = Recorder(fail_at=fail_at, error=ArchiveError("The archive is truncated."))
    with pytest.raises(ArchiveError, match="truncated"):
        write_archive(iter(BLOCKS), path, kind, None, len(TAR), observed)
    assert len(observed.seen) == fail_at
    assert listing(tmp_path) == []


def test_source_error_aborts_and_keeps_the_old_file(tmp_path):
    path = tmp_path / "images.tar.gz"
    path.write_bytes(b"the old archive")

    def source():
        yield BLOCKS[0]
        yield BLOCKS[1]
        raise AirgapError("The engine closed the connection.")

    with pytest.raises(AirgapError, match="closed the connection"):
        write_archive(source(), str(path), GZIP, None, len(TAR), Recorder())
    assert listing(tmp_path) == ["images.tar.gz"]
    assert path.read_bytes() == b"the old archive"


def test_disk_full_while_writing_is_a_space_error(tmp_path):
    path = str(tmp_path / "images.tar")
    observed = Recorder(fail_at=2, error=OSError(errno.ENOSPC, "No space left on device"))
    with pytest.raises(SpaceError) as info:
        write_archive(BLOCKS, path, NONE, None, len(TAR), observed)
    assert path in info.value.msg
    assert listing(tmp_path) == []


def test_abort_after_a_successful_write_leaves_nothing(tmp_path):
    path = str(tmp_path / "images.tar.zst")
    target, _transfer = write_archive(BLOCKS, path, ZSTD, None, len(TAR), Recorder())
    assert len(listing(tmp_path)) == 1
    target.abort()
    assert listing(tmp_path) == []


@pytest.mark.parametrize("kind", KINDS)
def test_write_false_writes_nothing_but_hashes_the_same(tmp_path, kind):
    path = str(tmp_path / ("images" + SUFFIX[kind]))
    observed = Recorder()
    target, dry = write_archive(iter(BLOCKS), path, kind, None, len(TAR), observed, write=False)
    assert target is None
    assert listing(tmp_path) == []
    assert observed.seen == BLOCKS + [None]
    assert dry.tar_size == len(TAR)

    target, real = write_archive(iter(BLOCKS), path, kind, None, len(TAR), Recorder())
    target.commit()
    assert dry.archive_size == real.archive_size == os.path.getsize(path)
    assert dry.archive_sha256 == real.archive_sha256 == sha256_file(path)


def test_write_into_a_missing_directory(tmp_path):
    path = str(tmp_path / "missing" / "images.tar")
    with pytest.raises(ArchiveError, match="does not exist"):
        write_archive(BLOCKS, path, NONE, None, len(TAR), Recorder())
    assert listing(tmp_path) == []


@pytest.mark.parametrize("kind, estimate, fits", [
    (NONE, 1500, False),  # an uncompressed archive needs its full size
    (NONE, 900, True),
    (GZIP, 1500, True),  # a compressed one is assumed to need half
    (ZSTD, 1900, True),
    (ZSTD, 2100, False),
])
def test_free_space_is_checked_up_front(tmp_path, monkeypatch, kind, estimate, fits):
    monkeypatch.setattr(disk_space, "free_bytes", lambda directory: 1000)
    path = str(tmp_path / ("images" + SUFFIX[kind]))
    observed = Recorder()
    if fits:
        target, _transfer = write_archive([b"x" * 10], path, kind, None, estimate, observed)
        target.abort()
    else:
        with pytest.raises(SpaceError, match="Not enough free space"):
            write_archive([b"x" * 10], path, kind, None, estimate, observed)
        assert observed.seen == []  # failed before any work
    assert listing(tmp_path) == []


def test_read_archive_of_a_truncated_file_names_it(tmp_path):
    path = tmp_path / "images.tar.gz"
    path.write_bytes(gzip.compress(TAR)[:-100])
    observed = Recorder()
    with pytest.raises(ArchiveError) as info:
        read_archive(str(path), observed)
    assert info.value.msg == "%s: The gzip stream is truncated." % path
    assert None not in observed.seen


def test_read_archive_of_a_truncated_zstd_file(tmp_path):
    path = tmp_path / "images.tar.zst"
    path.write_bytes(zstandard.ZstdCompressor(write_checksum=True).compress(TAR)[:-3])
    with pytest.raises(ArchiveError) as info:
        read_archive(str(path), Recorder())
    assert info.value.msg.startswith("%s: The zstd stream is" % path)


def test_read_archive_prefixes_an_observer_archive_error_with_the_path(tmp_path):
    path = tmp_path / "images.tar"
    path.write_bytes(TAR)
    observed = Recorder(fail_at=len(chunks(TAR, 1 << 20)), error=ArchiveError("The archive is truncated."))
    with pytest.raises(ArchiveError) as info:
        read_archive(str(path), observed)
    assert info.value.msg == "%s: The archive is truncated." % path


def test_read_archive_of_a_file_that_is_no_archive(tmp_path):
    path = tmp_path / "images.tar"
    path.write_bytes(b"not an archive at all" * 50)
    with pytest.raises(ArchiveError, match="is not a tar archive"):
        read_archive(str(path), Recorder())


# sniff_compression --------------------------------------------------------------------------


@pytest.mark.parametrize("name, data, kind", [
    ("a.tar", TAR, NONE),
    ("a.tar.gz", gzip.compress(TAR), GZIP),
    ("a.tar.zst", zstandard.ZstdCompressor().compress(TAR), ZSTD),
    # the name does not matter, only the bytes
    ("misnamed.tar", gzip.compress(TAR), GZIP),
    ("misnamed.tar.gz", zstandard.ZstdCompressor().compress(b"x"), ZSTD),
    ("misnamed.tar.zst", TAR, NONE),
])
def test_sniff_compression(tmp_path, name, data, kind):
    path = tmp_path / name
    path.write_bytes(data)
    assert sniff_compression(str(path)) == kind


def test_sniff_empty_file(tmp_path):
    path = tmp_path / "empty.tar"
    path.write_bytes(b"")
    with pytest.raises(ArchiveError) as info:
        sniff_compression(str(path))
    assert info.value.msg == "%s is empty, not an archive." % path


@pytest.mark.parametrize("data", [b"garbage", b"PK\x03\x04" + b"\0" * 600, b"x" * 511, b"\0" * 1024])
def test_sniff_garbage(tmp_path, data):
    path = tmp_path / "garbage.tar"
    path.write_bytes(data)
    with pytest.raises(ArchiveError) as info:
        sniff_compression(str(path))
    assert info.value.msg == "%s is not a tar archive (nor a gzip or zstd compressed one)." % path


def test_sniff_missing_file_and_directory(tmp_path):
    with pytest.raises(ArchiveError, match="does not exist"):
        sniff_compression(str(tmp_path / "missing.tar"))
    with pytest.raises(ArchiveError, match="is a directory"):
        sniff_compression(str(tmp_path))


# commit_archive -----------------------------------------------------------------------------


def written(tmp_path, name="images.tar.gz", data=TAR, kind=GZIP):
    path = str(tmp_path / name)
    target, _transfer = write_archive(chunks(data, 4096), path, kind, None, len(data), Recorder())
    return target, path


def test_commit_archive_puts_archive_and_sidecar_in_place(tmp_path):
    target, path = written(tmp_path)
    temp_stat = os.stat(target.temp_path)
    calls = []

    def make_sidecar(stat):
        calls.append(stat)
        return sidecar.build(sidecar.file_identity(stat), [], extra={"marker": "new"})

    final = commit_archive(target, path, make_sidecar)
    assert listing(tmp_path) == ["images.tar.gz", "images.tar.gz.airgap.json"]
    with open(path, "rb") as handle:
        assert gzip.decompress(handle.read()) == TAR
    assert len(calls) == 1
    stat = calls[0]
    actual = os.stat(path)
    assert (final.st_size, final.st_mtime_ns, final.st_ino) == (actual.st_size, actual.st_mtime_ns, actual.st_ino)
    # make_sidecar saw the final file's stat
    assert (stat.st_size, stat.st_mtime_ns, stat.st_ino) == (actual.st_size, actual.st_mtime_ns, actual.st_ino)
    assert (temp_stat.st_size, temp_stat.st_ino) == (actual.st_size, actual.st_ino)
    document = sidecar.read_sidecar(path)
    assert document == sidecar.build(sidecar.file_identity(actual), [], extra={"marker": "new"})
    assert sidecar.describes(document, os.stat(path))
    with open(sidecar.sidecar_path(path), "rb") as handle:
        assert handle.read() == sidecar.encode(document)


def test_commit_archive_replaces_an_old_archive_and_removes_the_old_sidecar_first(tmp_path):
    path = tmp_path / "images.tar.gz"
    path.write_bytes(b"old archive")
    sidecar.write(str(path), sidecar.build({"size": 11}, [], extra={"marker": "old"}))
    target, _path = written(tmp_path)
    seen = []

    def make_sidecar(stat):
        # at this moment the old sidecar is gone and the new archive is in place
        seen.append(os.path.exists(sidecar.sidecar_path(str(path))))
        seen.append(os.path.getsize(str(path)) == stat.st_size)
        return sidecar.build(sidecar.file_identity(stat), [], extra={"marker": "new"})

    commit_archive(target, str(path), make_sidecar)
    assert seen == [False, True]
    assert sidecar.read_sidecar(str(path))["marker"] == "new"
    assert path.read_bytes() != b"old archive"
    assert listing(tmp_path) == ["images.tar.gz", "images.tar.gz.airgap.json"]


def test_commit_archive_sidecar_failure_leaves_no_stale_sidecar(tmp_path):
    path = tmp_path / "images.tar.gz"
    path.write_bytes(b"old archive")
    sidecar.write(str(path), sidecar.build({"size": 11}, [], extra={"marker": "old"}))
    target, _path = written(tmp_path)

    def make_sidecar(stat):
        raise OSError(errno.EACCES, "Permission denied")

    with pytest.raises(AirgapError, match="Permission denied while replacing"):
        commit_archive(target, str(path), make_sidecar)
    # the new archive is in place, and no sidecar describes the old one
    assert listing(tmp_path) == ["images.tar.gz"]
    assert gzip.decompress(path.read_bytes()) == TAR


def test_commit_archive_rename_failure_aborts_the_temp_file(tmp_path):
    path = tmp_path / "images.tar.gz"
    path.mkdir()  # a directory where the archive should go: the rename fails
    target, _path = written(tmp_path)
    calls = []
    with pytest.raises(AirgapError, match="while replacing"):
        commit_archive(target, str(path), calls.append)
    assert calls == []
    assert listing(tmp_path) == ["images.tar.gz"]
    assert path.is_dir()


def test_commit_archive_stat_is_the_final_files_also_when_the_target_was_not_synced(tmp_path):
    """AtomicFile.commit() syncs a file that is still open, so commit_archive accepts one; the
    stat handed to make_sidecar must still be that of the final file, not of the half-flushed
    temporary file."""
    path = str(tmp_path / "images.tar")
    target = AtomicFile(path)
    target.file.write(TAR[:3000])  # still in the file object's buffer
    calls = []

    def make_sidecar(stat):
        calls.append(stat)
        return sidecar.build(sidecar.file_identity(stat), [])

    commit_archive(target, path, make_sidecar)
    actual = os.stat(path)
    assert actual.st_size == 3000
    assert (calls[0].st_size, calls[0].st_mtime_ns) == (actual.st_size, actual.st_mtime_ns)
    assert sidecar.describes(sidecar.read_sidecar(path), actual)


# until_end_of_archive ---------------------------------------------------------------------


def _sent_until_end(data, block_size, verify=lambda: None):
    scanner = TarScanner(lambda name, size: False)
    sent = []
    for block in until_end_of_archive(chunks(data, block_size), scanner, verify):
        sent.append(bytes(block))
    return b"".join(sent)


@pytest.mark.parametrize("block_size", [512, 1000, 10_007, 1 << 20])
def test_until_end_sends_the_tar_then_its_end_marker(block_size):
    sent = _sent_until_end(TAR, block_size)
    end = len(sent) - 1024
    assert sent[end:] == b"\0" * 1024
    assert TAR.startswith(sent[:end])
    assert set(TAR[end:]) <= {0}


@pytest.mark.parametrize("block_size", [512, 1000, 10_007, 1 << 20])
def test_data_after_the_end_marker_is_never_sent(block_size):
    """Issue 11, class 6: trailing bytes must not carry the marker to the engine before verification."""
    trailing = TAR + b"garbage after the end" * 1000
    sent = _sent_until_end(trailing, block_size)
    assert b"garbage" not in sent
    assert sent.endswith(b"\0" * 1024)


@pytest.mark.parametrize("block_size", [100, 512, 700, 10_007, 1 << 20])
def test_nothing_of_the_end_marker_leaves_before_verify(block_size):
    """When verification fails, the engine has received the members but no end-of-archive marker."""
    sent = []

    def verify():
        raise ArchiveError("mismatch")

    scanner = TarScanner(lambda name, size: False)
    with pytest.raises(ArchiveError):
        for block in until_end_of_archive(chunks(TAR + b"trailer" * 100, block_size), scanner, verify):
            sent.append(bytes(block))
    body = b"".join(sent)
    assert len(body) == scanner.end_offset
    assert TAR.startswith(body)
    # What was sent ends on a member boundary and holds no all-zero header block.
    assert len(body) % 512 == 0


@pytest.mark.parametrize("block_size", [100, 512, 1000, 2048, 1 << 20])
def test_a_header_after_a_lone_zero_block_is_refused_whatever_the_chunking(block_size):
    """Go refuses a non-zero block right after the first zero block; so must a load, however the stream is cut."""
    end = len(TAR.rstrip(b"\0"))
    end += -end % 512  # the first zero block
    bad = TAR[:end] + b"\0" * 512 + TAR[:512] + b"\0" * 1024
    with pytest.raises(ArchiveError):
        _sent_until_end(bad, block_size)


@pytest.mark.parametrize("block_size", [100, 512, 700, 1 << 20])
def test_only_whole_tar_blocks_are_sent(block_size):
    scanner = TarScanner(lambda name, size: False)
    for block in until_end_of_archive(chunks(TAR, block_size), scanner, lambda: None):
        assert len(block) % 512 == 0


# split archives ----------------------------------------------------------------------------

BIG = legacy_archive([ImageSpec(tags=["big:1"], layers=[tar_bytes([("blob", random_bytes(43, (2 << 20) + 5000))])])])


def test_write_archive_splits_once_the_archive_outgrows_split_size(tmp_path):
    path = str(tmp_path / "big.tar")
    target, transfer = write_archive(chunks(BIG, 65_536), path, NONE, None, len(BIG), Recorder(), split_size=1 << 20)
    assert [p["size"] for p in transfer.parts] == [1 << 20, 1 << 20, len(BIG) - (2 << 20)]
    assert transfer.archive_sha256 == hashlib.sha256(BIG).hexdigest()
    with open(path + ".part001", "wb") as handle:
        handle.write(b"an earlier split, of another size")
    with open(path, "wb") as handle:
        handle.write(b"an earlier whole archive")
    stat = commit_archive(target, path, lambda s: sidecar.build({"size": s.st_size, "mtime_ns": s.st_mtime_ns}, []))
    assert listing(tmp_path) == ["big.tar.airgap.json", "big.tar.part001", "big.tar.part002", "big.tar.part003"]
    meta = sidecar.read_sidecar(path)
    assert meta["archive"]["parts"] == transfer.parts and meta["archive"]["size"] == len(BIG) == stat.st_size
    assert sidecar.describes(meta, stat)


def test_write_archive_under_split_size_stays_whole(tmp_path):
    path = str(tmp_path / "small.tar")
    target, transfer = write_archive(BLOCKS, path, NONE, None, len(TAR), Recorder(), split_size=1 << 20)
    commit_archive(target, path, lambda s: sidecar.build({"size": s.st_size}, []))
    assert transfer.parts == [] and listing(tmp_path) == ["small.tar", "small.tar.airgap.json"]
    assert "parts" not in sidecar.read_sidecar(path)["archive"]


def test_read_archive_and_sniff_compression_read_the_parts(tmp_path):
    path = str(tmp_path / "big.tar.zst")
    target, written = write_archive(chunks(BIG, 65_536), path, ZSTD, 1, len(BIG), Recorder(), split_size=1 << 20)
    target.commit()
    assert sniff_compression(path) == ZSTD
    seen = Recorder()
    transfer = read_archive(path, seen)
    assert b"".join(seen.seen[:-1]) == BIG
    assert (transfer.archive_sha256, transfer.parts) == (written.archive_sha256, written.parts)
    assert transfer.file_stat is not None and transfer.file_stat.st_size == written.archive_size


def test_read_archive_names_a_damaged_part_its_sidecar_records(tmp_path):
    path = str(tmp_path / "big.tar.gz")
    target, written = write_archive(chunks(BIG, 65_536), path, GZIP, 1, len(BIG), Recorder(), split_size=1 << 20)
    commit_archive(target, path, lambda s: sidecar.build({"size": s.st_size, "sha256": written.archive_sha256}, []))
    with open(path + ".part002", "r+b") as handle:
        handle.seek(1000)
        handle.write(b"\x00\x01\x02\x03")
    with pytest.raises(ArchiveError) as raised:
        read_archive(path, Recorder())
    assert raised.value.msg.startswith("%s.part002 does not match the sidecar of %s (sha256 " % (path, path))
