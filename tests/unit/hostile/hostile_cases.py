# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Hostile image archives: each builder yields the chunks of a tar that must be refused.

Every one fits in less than 1 MiB once compressed with zstd (most also plain); several expand
to hundreds of MiB, or to work that grows exponentially, if followed naively. Each is written
plain and with zstd level 3 in the largest window the reader accepts (LARGEST_WINDOW_LOG). The
heaviest also come behind a member of zeros larger than that window (PADDED): the decoder's
window is full, the most memory a stream can make it hold, before their own cost begins. Some
fill several caps at once (every_cap_*, names_and_metadata): the caps must bound the sum, not
only each part. Their sizes follow the caps, so that they stay at the caps when a cap changes.
"""

from __future__ import annotations

import json

from archive_factory import (
    END_OF_TAR,
    ImageSpec,
    canonical,
    digest,
    files_archive,
    member_files,
    oci_archive,
    pax_member,
    pax_record,
    raw_header,
    raw_member,
)

from ansible_collections.airgap.docker.plugins.module_utils.archive_layout import MAX_JSON_VALUES, MAX_REFERENCES
from ansible_collections.airgap.docker.plugins.module_utils.compression import ZSTD_MAX_WINDOW
from ansible_collections.airgap.docker.plugins.module_utils.tarscan import (
    MAX_ENTRIES,
    MAX_KEPT_MEMBER,
    MAX_KEPT_TOTAL,
    MAX_NAMES_TOTAL,
    MAX_PAX_RECORDS,
)

MIB = 1 << 20
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
NEGATIVE = b"\xff" * 12  # GNU base-256 for -1
MANIFEST = raw_member(b"manifest.json", b'[{"Config": "%s.json", "RepoTags": ["a:1"], "Layers": []}]' % (b"a" * 64))


def negative_size():
    """A negative size once moved the scanner back onto an earlier header, forever."""
    yield MANIFEST + raw_header(b"layer.tar", size=NEGATIVE) + MANIFEST * 3 + END_OF_TAR


def negative_pax_size():
    yield MANIFEST + pax_member({b"size": b"-1536"}) + raw_header(b"layer.tar") + MANIFEST * 3 + END_OF_TAR


def non_octal_size():
    yield MANIFEST + raw_header(b"layer.tar", size=b"12345678x9\0") + END_OF_TAR


def non_octal_mode():
    yield raw_member(b"manifest.json", b"[]", fields={100: b"rwxr-xr-x"}) + END_OF_TAR


def gnu_long_name_512_mib():
    """512 MiB of name: 1.5 GiB of memory when long names were kept whatever their size."""
    yield raw_header(b"././@LongLink", size=512 * MIB, typeflag=b"L")
    piece = b"a" * MIB
    for _unused in range(512):
        yield piece
    yield raw_member(b"x", b"1") + END_OF_TAR


def pax_header_600_mib():
    yield raw_header(b"PaxHeaders/x", size=600 * MIB, typeflag=b"x")
    record = b"%d path=" % (600 * MIB)
    yield record
    piece = b"p" * MIB
    for _unused in range(600):
        yield piece
    yield END_OF_TAR


def pax_record_claiming_a_huge_length():
    body = b"999999999999999 path=" + b"a" * (MIB - 30) + b"\n"
    yield pax_member(body) + raw_member(b"manifest.json", b"[]") + END_OF_TAR


def end_block_then_header():
    yield MANIFEST + bytes(512) + MANIFEST + END_OF_TAR


def _oci_files():
    spec = ImageSpec(tags=["app:1"])
    return spec, member_files(oci_archive([spec], manifest_json=False, repositories=False))


def _index(descriptors):
    return canonical({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": descriptors})


def _descriptor(digest_value, media_type=OCI_MANIFEST, tag=None):
    desc = {"mediaType": media_type, "digest": digest_value, "size": 500}
    if tag:
        desc["annotations"] = {"io.containerd.image.name": "docker.io/library/%s" % tag}
    return desc


def index_listing_one_manifest_100k_times():
    """The same manifest, listed again and again: each listing once parsed it again and kept it."""
    spec, files = _oci_files()
    files["index.json"] = _index([_descriptor(spec.manifest_digest)] * 100000)
    yield files_archive(files)


def index_listing_30k_tags():
    spec, files = _oci_files()
    files["index.json"] = _index([_descriptor(spec.manifest_digest, tag="app:%d" % n) for n in range(30000)])
    yield files_archive(files)


def index_fanning_out_to_a_million_manifests():
    """index.json -> 1,000 x an index -> 1,000 x the manifest: a million paths down to it."""
    spec, files = _oci_files()
    inner = _index([_descriptor(spec.manifest_digest, tag="app:%d" % n) for n in range(1000)])
    outer = _index([_descriptor(digest(inner), OCI_INDEX)] * 1000)
    files.update({"blobs/sha256/" + digest(inner)[7:]: inner, "blobs/sha256/" + digest(outer)[7:]: outer})
    files["index.json"] = _index([_descriptor(digest(outer), OCI_INDEX)])
    yield files_archive(files)


def index_listing_itself():
    spec, files = _oci_files()
    claimed = "sha256:" + "1" * 64
    files["blobs/sha256/" + claimed[7:]] = _index([_descriptor(claimed, OCI_INDEX), _descriptor(spec.manifest_digest)])
    files["index.json"] = _index([_descriptor(claimed, OCI_INDEX)])
    yield files_archive(files)


def nested_indexes_22_deep():
    """22 indexes, each listing the next twice: 4x the work for every two levels once."""
    spec, files = _oci_files()
    target = _descriptor(spec.manifest_digest)
    for _unused in range(22):
        data = _index([target, target])
        files["blobs/sha256/" + digest(data)[7:]] = data
        target = _descriptor(digest(data), OCI_INDEX)
    files["index.json"] = _index([target])
    yield files_archive(files)


def many_big_json_blobs():
    """70 JSON blobs of 1 MiB: all kept as metadata, 70 MiB, unless kept metadata is capped."""
    _spec, files = _oci_files()
    for n in range(70):
        data = json.dumps({"n": n, "pad": "x" * (MIB - 30)}).encode()
        files["blobs/sha256/" + digest(data)[7:]] = data
    yield files_archive(files)


def json_blobs_of_the_largest_kept_size():
    """JSON blobs of MAX_KEPT_MEMBER bytes, the largest a member kept as metadata may be, until
    the cap on kept metadata: the most memory kept bodies take, the last one copied as it ends."""
    _spec, files = _oci_files()
    for n in range(MAX_KEPT_TOTAL // MAX_KEPT_MEMBER + 1):
        data = json.dumps({"n": n, "pad": "x" * (MAX_KEPT_MEMBER - 30)}).encode()
        files["blobs/sha256/" + digest(data)[7:]] = data
    yield files_archive(files)


def _fill_kept_metadata(files, margin=64 * 1024):
    """JSON blobs, kept as metadata, until the kept metadata is at its cap but for margin."""
    room = MAX_KEPT_TOTAL - sum(len(data) for data in files.values()) - margin
    while room > 1024:
        data = json.dumps({"n": room, "pad": "x" * (min(room, MAX_KEPT_MEMBER) - 30)}).encode()
        files["blobs/sha256/" + digest(data)[7:]] = data
        room -= len(data)


def index_of_the_most_values_beside_full_metadata():
    """An index of MAX_JSON_VALUES annotations, parsed whole (the most objects a document may
    make), while JSON blobs hold the rest of the kept metadata; its last annotation is not a string."""
    spec, files = _oci_files()
    descriptor = _descriptor(spec.manifest_digest, tag="app:1")
    descriptor["annotations"].update({"k%07d" % n: "" for n in range(MAX_JSON_VALUES - 20)}, last=0)
    files["index.json"] = _index([descriptor])
    _fill_kept_metadata(files)
    yield files_archive(files)


def json_nested_40k_deep():
    """Deeper than Python's parser recurses, within the cap on JSON values."""
    _spec, files = _oci_files()
    files["index.json"] = b"[" * 40000 + b"]" * 40000
    yield files_archive(files)


def json_number_of_3m_digits():
    _spec, files = _oci_files()
    files["index.json"] = b'{"schemaVersion": ' + b"9" * (3 * MIB) + b"}"
    yield files_archive(files)


def json_of_2m_values():
    _spec, files = _oci_files()
    files["index.json"] = b'{"manifests": [' + b"0," * (2 * MIB - 10) + b"0]}"
    yield files_archive(files)


def images_of_the_most_layers():
    """Images whose configs list the most layers a document may, in documents within the caps on
    size and on JSON values, together beyond the references an archive may make."""
    files, entries, per_config = {}, [], MAX_JSON_VALUES - 100
    for image in range(MAX_REFERENCES // per_config + 1):
        diff_ids = ["sha256:%064x" % (image * 1000000 + n) for n in range(per_config)]
        config = canonical({"os": "linux", "architecture": "amd64", "rootfs": {"type": "layers", "diff_ids": diff_ids}})
        files[digest(config)[7:] + ".json"] = config
        entries.append({"Config": digest(config)[7:] + ".json", "RepoTags": ["a:%d" % image], "Layers": []})
    files["manifest.json"] = json.dumps(entries).encode()
    yield files_archive(files)


def too_many_members():
    for start in range(0, 150000, 1000):
        yield b"".join(raw_member(b"m%d" % n) for n in range(start, start + 1000))
    yield END_OF_TAR


def zeros_300_mib_in_the_largest_window():
    """One member of 300 MiB of zeros and no manifest, written with the largest zstd window the
    reader accepts: the decoder fills its whole window, the most memory a stream can make it hold
    (issue 11, class 9)."""
    yield raw_header(b"layer.tar", size=300 * MIB)
    piece = bytes(MIB)
    for _unused in range(300):
        yield piece
    yield END_OF_TAR


def names_implying_millions_of_directories():
    """Names of 4,000 characters, each 2,000 directories deep from a new top directory."""
    deep = b"/d" * 1990
    for n in range(200):
        yield pax_member({b"path": b"t%d" % n + deep}) + raw_member(b"x")
    yield END_OF_TAR


# Every cap at once: what the caps bound must be bounded in sum -------------------------------


def _in_batches(member, count):
    for start in range(0, count, 1000):
        yield b"".join(member(n) for n in range(start, min(start + 1000, count)))


def _members_filling_the_tables(spare_entries, spare_names):
    """Members with a one-byte body each (their own digest), filling the caps on entries and on
    names but for the spares: the member tables as large as the caps let them grow. Each name is
    a shared directory (one entry) and 100 characters of its own."""
    count = MAX_ENTRIES - spare_entries
    directory = b"p" * min(155, (MAX_NAMES_TOTAL - spare_names) // count - 101)
    yield from _in_batches(lambda n: raw_member(b"%0100d" % n, bytes((n % 256,)), prefix=directory), count)


def every_cap_at_once():
    """Member tables and names at their caps, then kept metadata at its cap (refused at the blob
    beyond it): the most a scan holds while the tar streams."""
    yield from _members_filling_the_tables(spare_entries=20, spare_names=2000)
    for n in range(MAX_KEPT_TOTAL // MAX_KEPT_MEMBER + 1):
        data = json.dumps({"n": n, "pad": "x" * (MAX_KEPT_MEMBER - 30)}).encode()
        yield raw_member(b"blobs/sha256/" + digest(data)[7:].encode(), data)
    yield END_OF_TAR


# Layers listed by the configs of every_cap_then_parse: the references cap, but for room to spare.
EVERY_CAP_DIFF_IDS = MAX_REFERENCES - 4000


def every_cap_then_parse():
    """Member tables and names at their caps, and kept metadata at its cap in image configs that
    make the most references, the last of them MAX_JSON_VALUES keys of an object read as a struct
    (the costliest value there is): the most a scan holds while it parses. The configs list
    layers the manifest does not: refused once all are parsed."""
    yield from _members_filling_the_tables(spare_entries=200, spare_names=40000)
    files, entries = {}, []
    diff_ids = EVERY_CAP_DIFF_IDS
    per_config = MAX_JSON_VALUES - 100
    configs = [canonical({"rootfs": {"diff_ids": ["sha256:%064x" % (first + n) for n in range(min(per_config, diff_ids - first))]}})
               for first in range(0, diff_ids, per_config)]
    costly = {"K%07d" % n: n for n in range(MAX_JSON_VALUES - 100)}
    configs.append(json.dumps(dict(costly, rootfs={"diff_ids": ["sha256:" + "0" * 64]})).encode())
    for config in configs:
        files[digest(config)[7:] + ".json"] = config
        entries.append({"Config": digest(config)[7:] + ".json", "RepoTags": [], "Layers": []})
    files["manifest.json"] = json.dumps(entries).encode()
    assert sum(len(data) for data in files.values()) <= MAX_KEPT_TOTAL
    yield files_archive(files)


def names_and_metadata():
    """One name as deep as the cap on names allows (its directories take the names cap), then
    kept metadata at its cap."""
    depth = 1
    while sum(1 + 2 * level for level in range(1, depth + 2)) < MAX_NAMES_TOTAL - 100000 and 2 * depth + 3 < 4096:
        depth += 1
    yield pax_member({b"path": b"t" + b"/d" * depth}) + raw_member(b"x")
    for n in range(MAX_KEPT_TOTAL // MAX_KEPT_MEMBER + 1):
        data = json.dumps({"n": n, "pad": "x" * (MAX_KEPT_MEMBER - 30)}).encode()
        yield raw_member(b"blobs/sha256/" + digest(data)[7:].encode(), data)
    yield END_OF_TAR


def document_of_4_mib_of_emoji():
    """A config of 4 MiB of four-byte characters: decoded at once, Python's decoder would take
    five times that; its rootfs is not an object."""
    config = b'{"rootfs": 1, "x": "' + "\U0001F600".encode() * ((MAX_KEPT_MEMBER - 100) // 4) + b'"}'
    files = {digest(config)[7:] + ".json": config,
             "manifest.json": json.dumps([{"Config": digest(config)[7:] + ".json", "Layers": []}]).encode()}
    yield files_archive(files)


# The most headers: every kind counts against MAX_ENTRIES ---------------------------------------


def pax_headers_to_the_entry_cap():
    """A PAX header of four records (a long path, mtime, uid, gid) before every member, until
    the cap on entries: the costliest header pair Go's and Python's writers make."""
    count = MAX_ENTRIES // 2 + 10
    length = min(4000, MAX_NAMES_TOTAL // count)
    yield from _in_batches(lambda n: pax_member({b"path": b"%09d" % n + b"n" * (length - 9), b"mtime": b"1.5", b"uid": b"0",
                                                 b"gid": b"0"}) + raw_member(b"x"), count)
    yield END_OF_TAR


def gnu_long_names_to_the_entry_cap():
    """A GNU long name and a long link name before every symbolic link, until the cap on entries."""
    count = MAX_ENTRIES // 3 + 10
    length = min(4000, MAX_NAMES_TOTAL // (2 * count))
    yield from _in_batches(lambda n: raw_member(b"././@LongLink", b"%09d" % n + b"n" * (length - 9), typeflag=b"L")
                           + raw_member(b"././@LongLink", b"%09d" % n + b"t" * (length - 9), typeflag=b"K")
                           + raw_header(b"x", typeflag=b"2"), count)
    yield END_OF_TAR


_GENERAL_FIELDS = {100: b"000644 \0", 108: b"     0 \0", 116: b"     0 \0", 136: b"         0 \0", 329: b"     0 \0",
                   337: b"     0 \0"}


def _for_the_general_parser(name, body=b"", typeflag=b"0"):
    """A header that only the general parser reads: GNU times, numbers padded with spaces."""
    fields = dict(_GENERAL_FIELDS)
    fields[124] = b"%10o \0" % len(body)
    header = raw_header(name, fmt="gnu", prefix=b"         1 \0" * 2, fields=fields, typeflag=typeflag)
    return header + body + bytes(-len(body) % 512)


def general_parser_headers_to_the_entry_cap():
    """PAX headers of four records and members, both in forms only the general parser reads,
    until the cap on entries."""
    count = MAX_ENTRIES // 2 + 10
    length = min(4000, MAX_NAMES_TOTAL // count)

    def pair(n):
        records = {b"path": b"%09d" % n + b"n" * (length - 9), b"mtime": b"1.5", b"uid": b"0", b"gid": b"0"}
        body = b"".join(pax_record(key, value) for key, value in records.items())
        return _for_the_general_parser(b"PaxHeaders/x", body, typeflag=b"x") + _for_the_general_parser(b"x")
    yield from _in_batches(pair, count)
    yield END_OF_TAR


def pax_headers_of_170k_records():
    """PAX headers of 1 MiB (the most Go reads) made of the shortest records: each would take half
    a second to parse; the cap on PAX records refuses the first."""
    for _unused in range(MAX_PAX_RECORDS // 170000 + 8):
        yield pax_member(b"6 a=b\n" * ((1 << 20) // 6)) + raw_member(b"x")
    yield END_OF_TAR


def _behind_a_full_window(builder):
    """builder's archive behind a member of zeros a little larger than the largest zstd window."""
    def padded():
        size = ZSTD_MAX_WINDOW + 2 * MIB
        yield raw_header(b"padding", size=size)
        piece = bytes(MIB)
        for _unused in range(size // MIB):
            yield piece
        yield from builder()
    padded.__name__ = builder.__name__ + "_behind_a_full_window"
    return padded


_BASE = (
    negative_size, negative_pax_size, non_octal_size, non_octal_mode, gnu_long_name_512_mib, pax_header_600_mib,
    pax_record_claiming_a_huge_length, end_block_then_header, index_listing_one_manifest_100k_times, index_listing_30k_tags,
    index_fanning_out_to_a_million_manifests, index_listing_itself, nested_indexes_22_deep, many_big_json_blobs,
    json_blobs_of_the_largest_kept_size, index_of_the_most_values_beside_full_metadata, json_nested_40k_deep,
    json_number_of_3m_digits, json_of_2m_values, images_of_the_most_layers, too_many_members,
    names_implying_millions_of_directories, zeros_300_mib_in_the_largest_window, every_cap_at_once, every_cap_then_parse,
    names_and_metadata, document_of_4_mib_of_emoji, pax_headers_to_the_entry_cap, gnu_long_names_to_the_entry_cap,
    general_parser_headers_to_the_entry_cap, pax_headers_of_170k_records,
)
# The cases that cost the most memory of their own, each also behind a full window.
PADDED = tuple(_behind_a_full_window(builder) for builder in (
    many_big_json_blobs, json_blobs_of_the_largest_kept_size, index_of_the_most_values_beside_full_metadata,
    images_of_the_most_layers, too_many_members, names_implying_millions_of_directories, index_listing_one_manifest_100k_times,
    index_listing_30k_tags, json_of_2m_values, every_cap_at_once, every_cap_then_parse, names_and_metadata,
))
CASES = {builder.__name__: builder for builder in _BASE + PADDED}
# Too large to write uncompressed for a test (and that is the point): zstd only.
ZSTD_ONLY = ("gnu_long_name_512_mib", "pax_header_600_mib", "many_big_json_blobs", "json_blobs_of_the_largest_kept_size",
             "index_of_the_most_values_beside_full_metadata", "zeros_300_mib_in_the_largest_window", "every_cap_at_once",
             "every_cap_then_parse", "names_and_metadata", "document_of_4_mib_of_emoji", "pax_headers_to_the_entry_cap",
             "gnu_long_names_to_the_entry_cap", "general_parser_headers_to_the_entry_cap", "pax_headers_of_170k_records",
             "images_of_the_most_layers") + tuple(builder.__name__ for builder in PADDED)
# The largest zstd window the reader accepts, as a window_log (level 3 alone writes 2 MiB).
LARGEST_WINDOW_LOG = ZSTD_MAX_WINDOW.bit_length() - 1
