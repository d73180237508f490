# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The snapshot record inside container archives: written after Docker's export tar, read back
from the archive's own bytes, and what an import checks before the engine gets the last block."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import tarfile

import pytest
from archive_factory import chunks, digest, random_bytes

from ansible_collections.airgap.docker.plugins.module_utils import sidecar
from ansible_collections.airgap.docker.plugins.module_utils.archive_stream import commit_archive
from ansible_collections.airgap.docker.plugins.module_utils.compression import GZIP, NONE, ZSTD
from ansible_collections.airgap.docker.plugins.module_utils.container_image import ImportArchive, snapshot_record
from ansible_collections.airgap.docker.plugins.module_utils.container_transfer import (
    MAX_SNAPSHOT,
    SNAPSHOT_NAME,
    LayerFacts,
    SnapshotReader,
    disagreement,
    export_container,
    import_layer,
    mismatch_error,
    read_layer_archive,
    snapshot_member,
)
from ansible_collections.airgap.docker.plugins.module_utils.errors import ArchiveError, ChecksumMismatch, EngineError
from ansible_collections.airgap.docker.plugins.module_utils.oci_layout import tar_header, tar_padding

RECORD = snapshot_record({"Cmd": ["/srv/run.sh"], "Env": ["PATH=/usr/bin:/bin", "MODE=offline"], "WorkingDir": "/srv",
                          "User": "app", "ExposedPorts": {"8080/tcp": {}}, "Labels": {"team": "air gap"}},
                         "2026-11-29T03:00:00.123456789Z", {"os": "linux", "architecture": "amd64", "variant": None},
                         {"id": "c0ffee" * 10 + "abcd", "name": "app", "image": "app:1"})
CHUNK_SIZES = [1, 7, 511, 512, 513, 4096, 1 << 20]


def export_tar(files, mtime=1_700_000_000):
    """A tar as Docker's export writes it (Go's archive/tar): members, then exactly two zero blocks."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), mtime, 0o644
            tar.addfile(info, io.BytesIO(data))
        end = tar.offset
    return buffer.getvalue()[:end] + bytes(1024)


EXPORT = export_tar({"srv/run.sh": b"#!/bin/sh\necho hi\n", "srv/data.bin": random_bytes(3, 70_000), "etc/hostname": b"x\n"})


def read_all(data, size=1 << 20):
    """Feed data in chunks of `size`; (what feed() gave as layer bytes, the reader)."""
    reader = SnapshotReader()
    given = b"".join(bytes(reader.feed(chunk)) for chunk in chunks(data, size))
    reader.finish()
    return given, reader


def member(name, data, mode=0o600):
    return tar_header(name, len(data), mode) + data + tar_padding(len(data))


# writing and reading the record ---------------------------------------------------------------


@pytest.mark.parametrize("size", CHUNK_SIZES)
def test_round_trip_in_chunks_of_any_size(size):
    given, reader = read_all(EXPORT + snapshot_member(RECORD), size)
    assert given == EXPORT, "the layer is the export tar, end-of-archive marker included, and nothing of the record"
    assert (reader.layer_sha256, reader.layer_size) == (digest(EXPORT), len(EXPORT))
    assert reader.record == RECORD
    assert reader.newest_mtime == 1_700_000_000


def test_the_record_member_is_deterministic():
    first = snapshot_member(RECORD)
    assert first == snapshot_member(json.loads(json.dumps(RECORD, sort_keys=False)))
    assert first == snapshot_member(dict(reversed(list(RECORD.items()))))
    info = tarfile.TarInfo.frombuf(first[:512], "utf-8", "surrogateescape")
    assert (info.name, info.mode, info.mtime, info.uid, info.gid, info.uname, info.type) == (
        SNAPSHOT_NAME, 0o600, 0, 0, 0, "", tarfile.REGTYPE)
    assert len(first) % 512 == 0 and first.endswith(bytes(1024))


def test_tar_readers_stop_before_the_record(tmp_path):
    """Python's tarfile and GNU tar see only the container's files, as docker import does (Go's archive/tar)."""
    data = EXPORT + snapshot_member(RECORD)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        assert sorted(tar.getnames()) == ["etc/hostname", "srv/data.bin", "srv/run.sh"]
    if shutil.which("tar") is None:
        pytest.skip("no tar command")
    path = tmp_path / "snap.tar"
    path.write_bytes(data)
    listed = subprocess.run(["tar", "-tf", str(path)], check=True, capture_output=True, text=True)
    assert sorted(listed.stdout.split()) == ["etc/hostname", "srv/data.bin", "srv/run.sh"]
    assert listed.stderr == ""


def test_plain_docker_export_has_no_record():
    given, reader = read_all(EXPORT)
    assert given == EXPORT and reader.record is None and reader.layer_sha256 == digest(EXPORT)


@pytest.mark.parametrize("with_record", [True, False])
def test_zero_padding_after_the_marker_belongs_to_the_layer(with_record):
    padded = EXPORT + bytes(10240 - len(EXPORT) % 10240) + bytes(512 * 3)
    data = padded + (snapshot_member(RECORD) if with_record else b"")
    for size in (1, 513, 1 << 20):
        given, reader = read_all(data, size)
        assert given == padded and reader.layer_size == len(padded)
        assert reader.record == (RECORD if with_record else None)


def test_zeros_after_the_record_are_not_layer_bytes():
    given, reader = read_all(EXPORT + snapshot_member(RECORD) + bytes(4096) + bytes(100))
    assert given == EXPORT and reader.record == RECORD


# refused trailers -----------------------------------------------------------------------------


def refused(data, *fragments):
    """Refused with one sentence holding one of fragments, whatever the chunk size."""
    for size in (1, 512, 1 << 20):
        with pytest.raises(ArchiveError) as caught:
            read_all(data, size)
        assert any(fragment in caught.value.msg for fragment in fragments), caught.value.msg
        assert "\n" not in caught.value.msg


@pytest.mark.parametrize("trailer", [
    b"garbage" * 100,
    member("other.json", b"{}"),
    member("dir/" + SNAPSHOT_NAME, b"{}"),
    bytes(511) + b"\x01",
    bytes(512) + b"\x01" * 512,  # a record header must follow the whole marker (two zero blocks)
], ids=["garbage", "other-member", "other-path", "partial-block", "lone-zero-block"])
def test_data_after_the_marker_that_is_not_the_record_is_refused(trailer):
    base = EXPORT[:-1024] if trailer.startswith(bytes(512) + b"\x01") else EXPORT
    # The tar scanner itself refuses a lone zero block when it sees the next block in the same chunk.
    refused(base + trailer, "not an airgap.docker snapshot record", "a header after its end-of-archive block")


def test_a_second_record_is_refused():
    refused(EXPORT + snapshot_member(RECORD) + snapshot_member(RECORD), "more than a snapshot record")


def test_garbage_after_the_record_is_refused():
    refused(EXPORT + snapshot_member(RECORD) + b"\x01" * 512, "more than a snapshot record")


def test_an_oversized_record_is_refused_from_its_header():
    # Only the header: the size is refused before any body is kept.
    refused(EXPORT + tar_header(SNAPSHOT_NAME, MAX_SNAPSHOT + 1, 0o600), "larger than 1024 KiB")


@pytest.mark.parametrize("body,fragment", [
    (b"not json", "not valid JSON"),
    (b"\xff\xfe", "not valid JSON"),
    (b"", "not valid JSON"),
    (b"[]", "it is not an object"),
    (json.dumps(dict(RECORD, schema=2)).encode(), "schema 2"),
    (json.dumps(dict(RECORD, extra=1)).encode(), "its keys are"),
    (json.dumps(dict(RECORD, config={"Cmd": "sh -c x"})).encode(), "config.Cmd is not a list of strings"),
    (json.dumps(dict(RECORD, config={"Privileged": True})).encode(), "not runtime configuration"),
    (json.dumps(dict(RECORD, created="yesterday")).encode(), "created is not an RFC 3339 time"),
    (json.dumps(dict(RECORD, platform={"os": "linux"})).encode(), "lacks its os or architecture"),
], ids=["text", "binary", "empty", "list", "schema", "key", "cmd", "privileged", "created", "platform"])
def test_a_malformed_record_is_refused(body, fragment):
    refused(EXPORT + member(SNAPSHOT_NAME, body) + bytes(1024), fragment)


def test_a_record_with_garbage_in_its_padding_is_refused():
    data = bytearray(EXPORT + snapshot_member(RECORD))
    body = len(json.dumps(RECORD, sort_keys=True, separators=(",", ":")).encode())
    data[len(EXPORT) + 512 + body] = 1
    refused(bytes(data), "not an airgap.docker snapshot record")


@pytest.mark.parametrize("cut", [100, 600, 700])
def test_an_archive_cut_inside_the_record_is_truncated(cut):
    refused(EXPORT + snapshot_member(RECORD)[:cut], "truncated")


def test_a_tar_without_its_marker_is_truncated():
    refused(EXPORT[:-1024], "truncated")


# comparing what was read with what was planned -----------------------------------------------


def facts(**overrides):
    base = LayerFacts(digest(EXPORT), len(EXPORT), NONE, "a" * 64, 4096, 0, RECORD)
    for key, value in overrides.items():
        setattr(base, key, value)
    return base


@pytest.mark.parametrize("overrides,fragment", [
    ({"tar_sha256": "sha256:" + "0" * 64}, "its layer is"),
    ({"tar_size": 1}, "its layer is"),
    ({"archive_sha256": "b" * 64}, "the file's sha256 is"),
    ({"record": None}, "carries a snapshot record"),
    ({"record": dict(RECORD, config={"User": "root"})}, "another configuration"),
    ({"record": dict(RECORD, created="2020-01-01T00:00:00Z")}, "another configuration, creation time"),
])
def test_disagreement_names_what_differs(overrides, fragment):
    assert disagreement(facts(), facts()) is None
    assert fragment in disagreement(facts(**overrides), facts())


def test_disagreement_ignores_the_container_identity_and_an_unknown_checksum():
    other = dict(RECORD, container={"id": "x", "name": "y", "image": "z"})
    assert disagreement(facts(record=other, archive_sha256=None), facts()) is None


# export ---------------------------------------------------------------------------------------


class FakeEngine:
    def __init__(self, export=b""):
        self.export = export
        self.received = None

    def export_stream(self, container_id):
        return iter(chunks(self.export, 7_777))

    def load(self, body, platform=None):
        self.received = bytearray()
        for block in body:
            self.received += block
        return []


@pytest.mark.parametrize("kind,suffix", [(NONE, ".tar"), (GZIP, ".tar.gz"), (ZSTD, ".tar.zst")])
def test_export_appends_the_record_and_reads_back(tmp_path, kind, suffix):
    path = str(tmp_path / ("snap" + suffix))
    target, written = export_container(FakeEngine(EXPORT), "c0ffee", RECORD, path, kind, None, len(EXPORT))
    target.commit()
    assert (written.tar_sha256, written.tar_size, written.record) == (digest(EXPORT), len(EXPORT), RECORD)
    assert written.stats["bytes_from_engine"] == len(EXPORT)
    read = read_layer_archive(path)
    assert (read.tar_sha256, read.tar_size, read.record, read.archive_sha256, read.compression) == (
        written.tar_sha256, written.tar_size, RECORD, written.archive_sha256, kind)
    assert read.file_stat is not None and read.stats["archive_bytes_read"] == os.path.getsize(path)


def test_export_is_deterministic(tmp_path):
    digests = set()
    for name in ("a.tar.gz", "b.tar.gz"):
        target, written = export_container(FakeEngine(EXPORT), "c0ffee", RECORD, str(tmp_path / name), GZIP, 6, 0)
        target.commit()
        digests.add(written.archive_sha256)
    assert len(digests) == 1


@pytest.mark.parametrize("export", [EXPORT[:-1024], EXPORT[:-1024] + b"\x01" * 512],
                         ids=["without-marker", "data-after-marker"])
def test_an_incomplete_export_writes_nothing(tmp_path, export):
    with pytest.raises((EngineError, ArchiveError)):
        export_container(FakeEngine(export), "c0ffee", RECORD, str(tmp_path / "x.tar"), NONE, None, 0)
    assert os.listdir(str(tmp_path)) == []


# import ---------------------------------------------------------------------------------------


def written_archive(tmp_path, kind=NONE, record=None, export=EXPORT):
    record = RECORD if record is None else record
    path = str(tmp_path / "snap.tar")
    target, written = export_container(FakeEngine(export), "c0ffee", record, path, kind, None, 0)
    target.commit()
    return path, written


def test_import_sends_the_layer_alone(tmp_path):
    path, written = written_archive(tmp_path)
    archive = ImportArchive("app:1", b"{}", written.tar_sha256, written.tar_size)
    engine = FakeEngine()
    stats, found = import_layer(engine, path, written, archive, mismatch_error(path, None))
    assert bytes(engine.received) == archive.head() + EXPORT + archive.tail()
    assert found.record == RECORD and found.file_stat is not None
    assert stats["archive_bytes_read"] == os.path.getsize(path)


@pytest.mark.parametrize("claim,fragment", [
    ({"tar_sha256": "sha256:" + "0" * 64}, "its layer is"),
    ({"tar_size": len(EXPORT) - 512}, "larger than"),
    ({"tar_size": len(EXPORT) + 512}, "its layer is"),
    ({"archive_sha256": "0" * 64}, "the file's sha256"),
    ({"record": dict(RECORD, config={"Entrypoint": ["/bin/evil"], "User": "root"})}, "another configuration"),
])
def test_import_against_a_wrong_claim_never_completes(tmp_path, claim, fragment):
    path, written = written_archive(tmp_path)
    for key, value in claim.items():
        setattr(written, key, value)
    archive = ImportArchive("app:1", b"{}", written.tar_sha256, written.tar_size)
    engine = FakeEngine()
    with pytest.raises(ChecksumMismatch) as caught:
        import_layer(engine, path, written, archive, mismatch_error(path, path + ".airgap.json"))
    assert fragment in caught.value.msg and "does not describe the archive" in caught.value.msg
    assert "nothing was imported" in caught.value.msg
    sent = bytes(engine.received or b"")
    full = len(archive.head()) + written.tar_size
    assert len(sent) < full, "the engine must never receive the whole layer"


# split archives ----------------------------------------------------------------------------

BIG_EXPORT = export_tar({"srv/data.bin": random_bytes(8, (2 << 20) + 3000)})


def _split_export(tmp_path):
    """A container archive of BIG_EXPORT written as parts of 1 MiB, with a sidecar recording them."""
    path = str(tmp_path / "snap.tar")
    target, written = export_container(FakeEngine(BIG_EXPORT), "c0ffee", RECORD, path, NONE, None, 0, split_size=1 << 20)
    assert [p["size"] for p in written.parts][:2] == [1 << 20, 1 << 20] and len(written.parts) == 3
    commit_archive(target, path, lambda stat: sidecar.build({"size": stat.st_size, "sha256": written.archive_sha256}, [],
                                                            kind="container"))
    return path, written


def test_an_export_as_parts_reads_back_as_one_archive(tmp_path):
    path, written = _split_export(tmp_path)
    assert not os.path.exists(path)
    read = read_layer_archive(path)
    assert (read.tar_sha256, read.record, read.archive_sha256) == (written.tar_sha256, RECORD, written.archive_sha256)
    assert read.parts == written.parts and read.file_stat is not None


def test_an_import_from_parts_names_a_damaged_part_and_never_completes(tmp_path):
    path, written = _split_export(tmp_path)
    archive = ImportArchive("app:1", b"{}", written.tar_sha256, written.tar_size)
    engine = FakeEngine()
    stats, found = import_layer(engine, path, written, archive, mismatch_error(path, None))
    assert bytes(engine.received) == archive.head() + BIG_EXPORT + archive.tail() and found.parts == written.parts
    assert "parts" not in stats
    with open(path + ".part002", "r+b") as handle:
        handle.seek(4096)
        handle.write(b"\xff")
    engine = FakeEngine()
    with pytest.raises(ChecksumMismatch) as caught:
        import_layer(engine, path, written, archive, mismatch_error(path, None))
    assert caught.value.msg.startswith("%s.part002 does not match the sidecar of %s" % (path, path))
    assert caught.value.msg.endswith("; nothing was imported.")
    assert len(bytes(engine.received or b"")) < len(archive.head()) + written.tar_size
