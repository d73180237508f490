# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import gzip
import hashlib
import io
import os
import time

import pytest

from ansible_collections.airgap.docker.plugins.module_utils import checksums, compression, streaming
from ansible_collections.airgap.docker.plugins.module_utils.checksums import HashingReader, HashingWriter
from ansible_collections.airgap.docker.plugins.module_utils.streaming import read_chunks

# hashing wrappers ---------------------------------------------------------------------------


def test_hashing_reader_read():
    data = os.urandom(3 * streaming.CHUNK + 17)
    reader = HashingReader(io.BytesIO(data))
    assert reader.readable()
    blocks = list(read_chunks(reader))
    assert b"".join(blocks) == data
    assert [len(b) for b in blocks] == [streaming.CHUNK] * 3 + [17]
    assert reader.count == len(data)
    assert reader.sha256.hexdigest() == hashlib.sha256(data).hexdigest()


def test_hashing_reader_readinto():
    data = b"0123456789" * 100
    reader = HashingReader(io.BytesIO(data))
    buffer = bytearray(300)
    got = []
    while True:
        size = reader.readinto(buffer)
        if not size:
            break
        got.append(bytes(buffer[:size]))
    assert b"".join(got) == data
    assert reader.count == len(data)
    assert reader.sha256.hexdigest() == hashlib.sha256(data).hexdigest()


def test_hashing_reader_feeds_a_decompressor():
    data = os.urandom(50_000) * 3
    packed = gzip.compress(data)
    reader = HashingReader(io.BytesIO(packed))
    assert b"".join(read_chunks(compression.open_reader(reader, compression.GZIP))) == data
    assert reader.count == len(packed)
    assert reader.sha256.hexdigest() == hashlib.sha256(packed).hexdigest()


def test_hashing_writer():
    sink = io.BytesIO()
    writer = HashingWriter(sink)
    assert writer.write(b"abc") == 3
    assert writer.write(memoryview(b"defg")) == 4
    writer.flush()
    assert sink.getvalue() == b"abcdefg"
    assert writer.count == 7
    assert writer.sha256.hexdigest() == hashlib.sha256(b"abcdefg").hexdigest()


# hash_open_file ------------------------------------------------------------------------------


def test_hash_open_file_returns_the_stat_of_an_unchanged_file(tmp_path):
    path = tmp_path / "a.tar"
    path.write_bytes(b"x" * (streaming.CHUNK + 5))
    with open(path, "rb") as handle:
        handle.read(10)  # hashed from the start whatever was read before
        digest, size, found = checksums.hash_open_file(handle)
    assert (digest, size) == (hashlib.sha256(b"x" * (streaming.CHUNK + 5)).hexdigest(), streaming.CHUNK + 5)
    assert checksums.stat_identity(found) == checksums.stat_identity(os.stat(path))


class GrowsWhileRead(io.FileIO):
    """A file that another writer appends to (or rewrites) while it is being hashed."""

    def __init__(self, path, change):
        super().__init__(path, "rb")
        self.change = change

    def read(self, size=-1):
        data = super().read(size)
        if self.change:
            self.change()
            self.change = None
        return data


@pytest.mark.parametrize("how", ["append", "rewrite in place"])
def test_hash_open_file_vouches_for_nothing_when_the_file_changes(tmp_path, how):
    path = tmp_path / "a.tar"
    path.write_bytes(b"a" * (3 * streaming.CHUNK))

    def change():
        time.sleep(0.01)  # a later timestamp than the file had
        with open(path, "r+b") as writer:
            if how == "append":
                writer.seek(0, os.SEEK_END)
            writer.write(b"b" * 100)

    with GrowsWhileRead(str(path), change) as handle:
        _digest, _size, found = checksums.hash_open_file(handle)
    assert found is None


def test_file_sha256(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"abc")
    assert checksums.file_sha256(str(path)) == (hashlib.sha256(b"abc").hexdigest(), 3)
