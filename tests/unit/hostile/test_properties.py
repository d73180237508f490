# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Property tests: whatever tar headers or JSON shapes an archive holds, the scanner and the
layout parser either succeed or raise one ArchiveError; nothing else comes out."""

from __future__ import annotations

import json

import pytest
from archive_factory import (
    END_OF_TAR,
    ImageSpec,
    layer_tar,
    legacy_archive,
    oci_archive,
    pax_record,
    raw_header,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ansible_collections.airgap.docker.plugins.module_utils.archive_layout import parse_layout, verify_members, wants_member
from ansible_collections.airgap.docker.plugins.module_utils.errors import ArchiveError
from ansible_collections.airgap.docker.plugins.module_utils.tarscan import TarScanner

SETTINGS = settings(max_examples=250, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
# For the tests parametrized over every document of the archives (ten of them).
PER_DOCUMENT = settings(SETTINGS, max_examples=60)

# tar headers ----------------------------------------------------------------------------------

octal_sizes = st.integers(0, 3000).map(lambda n: b"%011o\0" % n)
numeric_fields = st.one_of(
    octal_sizes,
    st.binary(min_size=12, max_size=12),
    st.binary(min_size=11, max_size=11).map(lambda b: b"\x80" + b),  # base-256, positive
    st.binary(min_size=11, max_size=11).map(lambda b: b"\xff" + b),  # base-256, negative
    st.sampled_from([b"-0000000001\0", b"0o7\0", b"1_0\0", b"  12 \0", b"12\x0099\0", b"9" * 12]),
)
typeflags = st.one_of(st.sampled_from([b"0", b"\0", b"1", b"2", b"3", b"5", b"7", b"x", b"g", b"L", b"K", b"S"]), st.binary(min_size=1, max_size=1))
pax_bodies = st.one_of(
    st.binary(max_size=300),
    st.lists(st.tuples(st.sampled_from([b"path", b"linkpath", b"size", b"mtime", b"uid", b"GNU.sparse.major", b"comment", b""]),
                       st.binary(max_size=40)), max_size=4).map(lambda records: b"".join(pax_record(k, v) for k, v in records)),
)


@st.composite
def members(draw):
    typeflag = draw(typeflags)
    body = draw(pax_bodies) if typeflag in (b"x", b"g") else draw(st.binary(max_size=1200))
    size = draw(st.one_of(st.just(len(body)), numeric_fields))
    fields = draw(st.dictionaries(st.sampled_from([100, 108, 116, 136, 329, 337, 345, 357, 476, 508]),
                                  st.binary(min_size=1, max_size=12), max_size=2))
    header = raw_header(draw(st.binary(max_size=100)), size=size, typeflag=typeflag, fmt=draw(st.sampled_from(["ustar", "gnu", "star", "v7"])),
                        prefix=draw(st.binary(max_size=155)), linkname=draw(st.binary(max_size=100)), fields=fields,
                        checksum=draw(st.sampled_from(["unsigned", "unsigned", "signed", b"bad\0\0\0\0\0"])))
    return header + body + bytes(-len(body) % 512)


@st.composite
def tar_streams(draw):
    data = b"".join(draw(st.lists(members(), min_size=1, max_size=5)))
    data += draw(st.sampled_from([END_OF_TAR, bytes(512), b"", END_OF_TAR + b"junk", bytes(512) + b"\1" * 512]))
    return data, draw(st.integers(1, 2000))


@SETTINGS
@given(tar_streams(), st.booleans(), st.booleans())
def test_any_tar_headers_give_members_or_one_archive_error(stream, record_members, digests):
    data, chunk = stream
    scanner = TarScanner(lambda name, size: True, record_members=record_members, digests=digests)
    try:
        for start in range(0, len(data), chunk):
            scanner.feed(data[start:start + chunk])
        scanner.finish()
    except ArchiveError as exc:
        assert exc.msg and "\n" not in exc.msg
        return
    assert scanner.ended and 0 <= scanner.end_offset <= len(data) - 512
    assert all(size >= 0 for size in scanner.sizes.values())
    assert set(scanner.members) <= set(scanner.sizes) or not record_members


@SETTINGS
@given(st.binary(max_size=2000), st.integers(1, 600))
def test_any_bytes_give_members_or_one_archive_error(data, chunk):
    scanner = TarScanner(wants_member, digests=True)
    try:
        for start in range(0, len(data), chunk):
            scanner.feed(data[start:start + chunk])
        scanner.finish()
    except ArchiveError:
        pass


# JSON shapes ----------------------------------------------------------------------------------

json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2 ** 70), 2 ** 70), st.floats(allow_nan=False), st.text(max_size=20),
              st.sampled_from(["sha256:" + "a" * 64, "blobs/sha256/" + "b" * 64, "application/vnd.oci.image.index.v1+json"])),
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.sampled_from(["config", "Config", "layers", "Layers", "RepoTags", "digest", "DIGEST",
                                                             "manifests", "mediaType", "annotations", "platform", "rootfs",
                                                             "diff_ids", "size", "os", "created", "x"]), inner, max_size=4)),
    max_leaves=12)


def _paths(document, prefix=()):
    """Every place in a JSON document: the document itself, then each key or position."""
    yield prefix
    if isinstance(document, dict):
        for key, value in document.items():
            yield from _paths(value, prefix + (key,))
    elif isinstance(document, list):
        for position, value in enumerate(document):
            yield from _paths(value, prefix + (position,))


def _replaced(document, path, value):
    if not path:
        return value
    copy = json.loads(json.dumps(document))
    target = copy
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return copy


def _archives():
    spec = ImageSpec(tags=["app:1"], layers=[layer_tar({"a": b"1"}), layer_tar({"b": b"2"})])
    archives = {}
    for name, data in (("legacy", legacy_archive([spec])), ("oci", oci_archive([spec], nested=True, attestation=True))):
        scanner = TarScanner(wants_member, digests=True)
        scanner.feed(data)
        scanner.finish()
        archives[name] = scanner
    return archives


ARCHIVES = _archives()
DOCUMENTS = [(layout, name) for layout, scanner in ARCHIVES.items() for name in scanner.members
             if name not in ("oci-layout", "repositories")]


@pytest.mark.parametrize("layout, name", DOCUMENTS, ids=["%s-%s" % (layout, name[:24]) for layout, name in DOCUMENTS])
@PER_DOCUMENT
@given(data=st.data())
def test_any_json_shape_gives_images_or_one_archive_error(layout, name, data):
    scanner = ARCHIVES[layout]
    document = json.loads(scanner.members[name])
    path = data.draw(st.sampled_from(list(_paths(document))))
    changed = _replaced(document, path, data.draw(json_values))
    members = dict(scanner.members, **{name: json.dumps(changed).encode()})
    try:
        found, images = parse_layout(members, scanner.sizes, scanner.links)
        verify_members(found, images, scanner.digests, scanner.heads, scanner.sizes, scanner.links)
    except ArchiveError as exc:
        assert exc.msg and "\n" not in exc.msg


@SETTINGS
@given(json_values, st.sampled_from(["manifest.json", "index.json"]))
def test_any_json_document_gives_images_or_one_archive_error(value, name):
    members = dict(ARCHIVES["oci"].members, **{name: json.dumps(value).encode()})
    try:
        parse_layout(members, ARCHIVES["oci"].sizes)
    except ArchiveError as exc:
        assert exc.msg and "\n" not in exc.msg


@SETTINGS
@given(st.binary(max_size=400))
def test_any_bytes_as_json_give_one_archive_error(text):
    members = dict(ARCHIVES["legacy"].members, **{"manifest.json": text})
    try:
        parse_layout(members, ARCHIVES["legacy"].sizes)
    except ArchiveError as exc:
        assert exc.msg and "\n" not in exc.msg


def test_the_genuine_archives_parse_and_verify():
    for layout, scanner in ARCHIVES.items():
        found, images = parse_layout(scanner.members, scanner.sizes, scanner.links)
        assert found == layout and [image.tags for image in images] == [["app:1"]]
        assert verify_members(found, images, scanner.digests, scanner.heads, scanner.sizes, scanner.links) > 0
