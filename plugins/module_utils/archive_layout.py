# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What an image archive holds, in either layout `docker save` writes.

legacy (Docker <= 24): manifest.json, <config digest>.json, <id>/layer.tar, repositories.
oci (Docker >= 25): oci-layout, index.json, blobs/sha256/<digest>, plus manifest.json.

An archive is not trusted: its JSON documents are parsed one at a time, each at most once and
under caps, and only those index.json and manifest.json reference. They are read the way the
engines' Go code reads them (struct fields match keys ignoring case, the last duplicate wins),
and a shape the engines would not accept is one ArchiveError naming the file and the problem.
"""

from __future__ import annotations

import codecs
import json
import posixpath
import re
from dataclasses import asdict, dataclass, field

from ansible_collections.airgap.docker.plugins.module_utils.errors import ArchiveError
from ansible_collections.airgap.docker.plugins.module_utils.identity import RUNTIME_KEYS, fingerprint_from_config_blob
from ansible_collections.airgap.docker.plugins.module_utils.oci_layout import INDEX_TYPE, blob_name
from ansible_collections.airgap.docker.plugins.module_utils.references import familiar_repo, split_reference
from ansible_collections.airgap.docker.plugins.module_utils.tarscan import MAX_KEPT_MEMBER, member_name

LEGACY = "legacy"
OCI = "oci"
_INDEX_TYPES = (INDEX_TYPE, "application/vnd.docker.distribution.manifest.list.v2+json")
_TOP_LEVEL = ("manifest.json", "index.json", "oci-layout", "repositories")

# Values in one JSON document, counted cheaply (commas, brackets, braces) before it is parsed:
# a manifest of 500 layers has ~2,500, an index of 1,000 tags ~8,000, a config ~5,000, the
# manifest.json of 300 images of 40 layers ~14,000. A parsed value takes up to ~300 bytes (a key
# and its value in an object read as a struct): the cap keeps the largest parse near 15 MB, which
# comes on top of the kept metadata and the member tables (tarscan.MAX_KEPT_TOTAL, MAX_ENTRIES).
MAX_JSON_VALUES = 50000
# Bytes of a JSON document decoded at a time when it is not ASCII (see _utf8_text).
_DECODE_PIECE = 256 << 10
# Image indexes inside one another: docker save writes index.json -> image index -> manifest.
MAX_INDEX_DEPTH = 8
# Descriptors, tags and layers read from all documents together: bounds the work (an index may
# list the same manifest many times) and what the images keep (~200 bytes a reference, with the
# digest it names). A layer is counted where each document lists it (manifest.json, the OCI
# manifest, the config): 300 images of 40 layers make ~37,000.
MAX_REFERENCES = 50000
# Digits of a JSON integer: int64 has 19 (Go refuses more); Python's int() of a long number is slow.
_MAX_DIGITS = 19
# Symbolic links followed to find a member, as the classic store's FollowSymlinkInScope allows.
_MAX_LINK_HOPS = 255

_SHA256 = re.compile(r"sha256:[0-9a-f]{64}\Z")
_LONG_DIGITS = re.compile(rb"[0-9]{%d}" % (_MAX_DIGITS + 1))
_BLOB_PATH = re.compile(r"blobs/sha256/([0-9a-f]{64})\Z")
_CONFIG_PATH = re.compile(r"([0-9a-f]{64})\.json\Z")
# Unicode simple case folding takes these two non-ASCII letters to ASCII, so Go matches them.
_FOLD_TO_ASCII = {0x17F: "s", 0x212A: "k"}
_COMPRESSED = (b"\x1f\x8b", b"\x28\xb5\x2f\xfd")


@dataclass
class ArchiveImage:
    """One image in an archive, with what identifies it on any engine."""

    config_digest: str
    tags: list = field(default_factory=list)
    manifest_digest: str = None
    index_digest: str = None
    diff_ids: list = field(default_factory=list)
    fingerprint: str = None
    created: str = None
    os: str = None
    architecture: str = None
    size: int = 0
    # Archive members holding the layers, aligned with diff_ids.
    layers: list = field(default_factory=list)
    # A thin archive omits the data of this many bottom layers: the receiving engine must
    # already hold diff_ids[:omitted_layers] as one stack.
    omitted_layers: int = 0

    def engine_ids(self):
        """IDs under which an engine may list this image: config digest (classic store),
        manifest or index digest (containerd store)."""
        return [d for d in (self.config_digest, self.manifest_digest, self.index_digest) if d]

    def required_layers(self):
        """The bottom layers a receiver must already hold (empty for a full archive)."""
        return list(self.diff_ids[:self.omitted_layers])

    def to_dict(self):
        return asdict(self)

    @classmethod
    def from_dict(cls, data):
        known = {k: data.get(k) for k in cls.__dataclass_fields__ if k in data}
        return cls(**known)


def may_be_metadata(head: bytes) -> bool:
    """Whether a body starting with head can be a manifest, index or config: a JSON object.

    Layers are tar, gzip or zstd, and BuildKit's attestation layers (which may be large SBOMs)
    are in-toto statements, whose first key is `_type`.
    """
    text = head.lstrip(b" \t\r\n")
    if not text:
        return True  # nothing but white space yet: cannot tell, keep it (it counts against the cap)
    if text[:1] != b"{" or text.startswith(b'{"_type"'):
        return False
    return head[257:262] != b"ustar"  # a tar whose first name starts with "{"


def wants_member(name, size):
    """TarScanner.keep: the members that describe the archive (manifests, indexes, configs).

    Blobs and legacy configs are kept only when their body can be metadata (may_be_metadata
    decides from the first bytes), so layers, whatever their size, never count as metadata.
    """
    if name in _TOP_LEVEL:
        return True
    if ("/" not in name and name.endswith(".json")) or (name.startswith("blobs/sha256/") and size <= MAX_KEPT_MEMBER):
        return may_be_metadata
    return False


# JSON, read as Go reads it -------------------------------------------------------------------


def _fold(key):
    """A JSON key as Go's encoding/json compares it with a struct field's name (None: matches none)."""
    if not key.isascii():
        key = key.translate(_FOLD_TO_ASCII)
        if not key.isascii():
            return None
    folded = key.lower()
    return key if folded == key else folded  # the key itself when it is folded already: no second string


class _Object(dict):
    """A JSON object as Go reads it: as a map its keys are exact; as a struct, field(name) matches
    keys ignoring case. Either way the last of duplicate keys wins."""

    __slots__ = ("_fields",)

    def __init__(self, pairs):
        super().__init__(pairs)
        self._fields = {_fold(key): value for key, value in pairs}

    def field(self, name):
        return self._fields.get(_fold(name))


_EMPTY = _Object([])


def _json_int(text):
    if len(text.lstrip("-")) > _MAX_DIGITS:
        raise ValueError("a number of more than %d digits" % _MAX_DIGITS)
    return int(text)


def _json_constant(name):
    raise ValueError("%s is not JSON" % name)


def _utf8_text(data):
    """data decoded as Go's encoding/json reads it (invalid UTF-8 becomes U+FFFD). Python's decoder
    sizes its buffer for the widest character it meets: 5 times a 4 MiB document of emoji at once,
    so text that is not ASCII is decoded a piece at a time."""
    if data.isascii():
        return data.decode("ascii")
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    view = memoryview(data)
    pieces = [decoder.decode(view[start:start + _DECODE_PIECE]) for start in range(0, len(data), _DECODE_PIECE)]
    pieces.append(decoder.decode(b"", True))
    return "".join(pieces)


def _parse_json(data, name):
    if data.count(b",") + data.count(b"[") + data.count(b"{") > MAX_JSON_VALUES:
        raise ArchiveError("The archive's %s has more than %d JSON values; refusing to parse it." % (name, MAX_JSON_VALUES))
    # Integers are checked for their length only when the document has a run of that many digits.
    parse_int = _json_int if _LONG_DIGITS.search(data) else None
    try:
        return json.loads(_utf8_text(data), object_pairs_hook=_Object, parse_int=parse_int, parse_constant=_json_constant)
    except RecursionError:
        raise ArchiveError("The archive's %s nests JSON too deeply; refusing to parse it." % name)
    except ValueError as exc:
        raise ArchiveError("The archive's %s is not valid JSON (%s)." % (name, exc))


def _malformed(document, problem):
    return ArchiveError("The archive's %s is malformed (%s)." % (document, problem))


def _text(obj, key, document, where=""):
    value = obj.field(key)
    if value is None or isinstance(value, str):
        return value
    raise _malformed(document, "%s%s is not a string" % (where, key))


def _array(obj, key, document, where=""):
    value = obj.field(key)
    if value is None:
        return []
    if isinstance(value, list):
        return value
    raise _malformed(document, "%s%s is not a list" % (where, key))


def _texts(obj, key, document, where=""):
    values = _array(obj, key, document, where)
    if not all(isinstance(value, str) for value in values):
        raise _malformed(document, "%s%s lists something that is not a string" % (where, key))
    return values


def _mapping(obj, key, document, where=""):
    value = obj.field(key)
    if value is None:
        return _EMPTY
    if isinstance(value, _Object):
        return value
    raise _malformed(document, "%s%s is not an object" % (where, key))


def _byte_count(obj, key, document, where=""):
    value = obj.field(key)
    if value is None:
        return 0
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    raise _malformed(document, "%s%s is not a size in bytes" % (where, key))


def _check_digest(value, document, what):
    if not _SHA256.match(value):
        raise _malformed(document, "%s %r is not a sha256 digest" % (what, value[:80]))
    return value


# Reading an archive's documents --------------------------------------------------------------


class _Archive:
    """The kept members of an archive; each document parsed at most once, what it says kept small."""

    def __init__(self, members, sizes):
        self.members = members
        self.sizes = sizes
        self._references = 0
        self._manifests = {}
        self._indexes = {}
        self._configs = {}

    def has(self, name):
        return name in self.members or name in self.sizes

    def count(self, references):
        self._references += references
        if self._references > MAX_REFERENCES:
            raise ArchiveError("The archive's manifests and indexes list more than %d images, tags and layers; refusing "
                               "them." % MAX_REFERENCES)

    def document(self, name, what):
        data = self.members.get(name)
        if data is None:
            if name in self.sizes:
                raise ArchiveError("The archive's %s (%s) is not a JSON object of at most %d MiB; refusing it."
                                   % (what, name, MAX_KEPT_MEMBER >> 20))
            raise ArchiveError("The archive has no %s (%s is missing)." % (what, name))
        return _parse_json(data, name)

    def index_entries(self, name, what):
        """(digest, media type, tag) of the descriptors an index lists, attestations left out."""
        index = self.document(name, what)
        if not isinstance(index, _Object):
            raise _malformed(name, "it is not an object")
        entries = []
        for number, desc in enumerate(_array(index, "manifests", name), 1):
            where = "descriptor %d's " % number
            if not isinstance(desc, _Object):
                raise _malformed(name, "descriptor %d is not an object" % number)
            self.count(1)
            digest = _text(desc, "digest", name, where)
            annotations = _mapping(desc, "annotations", name, where)
            if not all(isinstance(value, str) for value in annotations.values()):
                raise _malformed(name, "%sannotations are not all strings" % where)
            if not digest or _is_attestation(desc, annotations, name, where):
                continue
            _check_digest(digest, name, where + "digest")
            entries.append((digest, _text(desc, "mediaType", name, where), _tag_from_annotations(annotations)))
        return entries

    def walk(self, entries, index_digest, inherited_tag, stack, found):
        """Follow nested indexes down to manifests: found gets (manifest digest, index digest, tag)."""
        for digest, media_type, tag in entries:
            tag = tag or inherited_tag
            if media_type not in _INDEX_TYPES:
                found.append((digest, index_digest, tag))
                self.count(1)
                continue
            if digest in stack:
                raise ArchiveError("The archive's image index %s lists itself; refusing it." % digest)
            if len(stack) >= MAX_INDEX_DEPTH:
                raise ArchiveError("The archive nests image indexes more than %d deep; refusing it." % MAX_INDEX_DEPTH)
            nested = self.nested_index(digest)
            if nested:
                stack.append(digest)
                self.walk(nested, index_digest or digest, tag, stack, found)
                stack.pop()

    def nested_index(self, digest):
        if digest not in self._indexes:
            path = blob_name(digest)
            self._indexes[digest] = self.index_entries(path, "nested index") if self.has(path) else None
        return self._indexes[digest]

    def manifest(self, digest):
        """(config digest, layer digests, size of the layers) of an image manifest; None when the
        archive does not hold it (another platform) or it describes no image."""
        if digest not in self._manifests:
            path = blob_name(digest)
            summary = _manifest_summary(self.document(path, "image manifest"), path) if self.has(path) else None
            if summary:
                self.count(len(summary[1]))
            self._manifests[digest] = summary
        return self._manifests[digest]

    def apply_config(self, image, path):
        if path not in self._configs:
            self._configs[path] = self._config_facts(path)
        diff_ids, image.created, image.os, image.architecture, image.fingerprint = self._configs[path]
        image.diff_ids = list(diff_ids)

    def _config_facts(self, path):
        config = self.document(path, "image config")
        if not isinstance(config, _Object):
            raise _malformed(path, "it is not an object")
        diff_ids = _texts(_mapping(config, "rootfs", path), "diff_ids", path, "rootfs.")
        for diff_id in diff_ids:
            _check_digest(diff_id, path, "rootfs.diff_ids lists")
        self.count(len(diff_ids))
        created, os_name, architecture, variant = (_text(config, key, path) for key in ("created", "os", "architecture", "variant"))
        runtime = _mapping(config, "config", path)
        blob = {"rootfs": {"diff_ids": diff_ids}, "created": created, "os": os_name, "architecture": architecture,
                "variant": variant, "config": {key: runtime.field(key) for key in RUNTIME_KEYS}}
        return diff_ids, created, os_name, architecture, fingerprint_from_config_blob(blob)


def _manifest_summary(manifest, path):
    if not isinstance(manifest, _Object):
        raise _malformed(path, "it is not an object")
    config = manifest.field("config")
    if config is None:
        return None  # not an image manifest
    if not isinstance(config, _Object):
        raise _malformed(path, "config is not an object")
    config_digest = _text(config, "digest", path, "config.")
    if not config_digest:
        raise _malformed(path, "config has no digest")
    _check_digest(config_digest, path, "config.digest")
    digests, size = [], 0
    for number, layer in enumerate(_array(manifest, "layers", path), 1):
        where = "layer %d's " % number
        if not isinstance(layer, _Object):
            raise _malformed(path, "layer %d is not an object" % number)
        digest = _text(layer, "digest", path, where)
        if not digest:
            raise _malformed(path, "layer %d has no digest" % number)
        digests.append(_check_digest(digest, path, where + "digest"))
        size += _byte_count(layer, "size", path, where)
    return config_digest, digests, size


def manifest_layer_digests(data: bytes, name: str = "image manifest") -> list:
    """The layer digests an OCI image manifest lists, read as parse_layout reads it."""
    summary = _manifest_summary(_parse_json(data, name), name)
    return list(summary[1]) if summary else []


def _tag_from_annotations(annotations):
    name = annotations.get("io.containerd.image.name")
    if not name:
        return None
    repo, tag, digest = split_reference(name)
    if digest or not tag:
        return None
    return "%s:%s" % (familiar_repo(repo), tag)


def _is_attestation(desc, annotations, document, where):
    """BuildKit stores provenance/SBOM as extra manifests in an index; they are not images."""
    platform = _mapping(desc, "platform", document, where)
    return (annotations.get("vnd.docker.reference.type") == "attestation-manifest"
            or (_text(platform, "os", document, where + "platform.") == "unknown"
                and _text(platform, "architecture", document, where + "platform.") == "unknown"))


def _config_digest(path):
    match = _BLOB_PATH.match(path) or _CONFIG_PATH.match(path)
    if not match:
        raise ArchiveError("The archive's manifest.json names a config (%s) that is not named by its digest." % path[:200])
    return "sha256:" + match.group(1)


def _read_docker_manifest(archive, images):
    name = "manifest.json"
    entries = archive.document(name, "image manifest")
    if entries is None:
        return
    if not isinstance(entries, list):
        raise _malformed(name, "it is not a list")
    for number, entry in enumerate(entries, 1):
        where = "entry %d's " % number
        if not isinstance(entry, _Object):
            raise _malformed(name, "entry %d is not an object" % number)
        config_path = _text(entry, "Config", name, where)
        if not config_path:
            raise ArchiveError("The archive's manifest.json has an entry without a Config.")
        config_path = member_name(config_path)
        digest = _config_digest(config_path)
        tags = _texts(entry, "RepoTags", name, where)
        layers = [member_name(path) for path in _texts(entry, "Layers", name, where)]
        archive.count(1 + len(tags) + len(layers))
        image = images.setdefault(digest, ArchiveImage(digest))
        image.tags.extend(_familiar_tags(tags))
        image.layers = layers
        image.size = sum(archive.sizes.get(layer, 0) for layer in layers)
        archive.apply_config(image, config_path)


def _read_index(archive, images):
    found = []
    archive.walk(archive.index_entries("index.json", "OCI index"), None, None, [], found)
    for manifest_digest, index_digest, tag in found:
        summary = archive.manifest(manifest_digest)
        if summary is None:
            continue  # a platform the archive does not hold
        config_digest, layer_digests, size = summary
        image = images.get(config_digest)
        if image is None:
            image = images[config_digest] = ArchiveImage(config_digest)
            image.size = size
            image.layers = [blob_name(digest) for digest in layer_digests]
            archive.apply_config(image, blob_name(config_digest))
        image.manifest_digest = image.manifest_digest or manifest_digest
        image.index_digest = image.index_digest or index_digest
        if tag:
            image.tags.append(tag)


def parse_layout(members, sizes, links=None):
    """Turn the kept members of an image archive into (layout, [ArchiveImage]).

    sizes: every regular member's size; links: link members' targets. Layers whose member is
    absent make the image thin (omitted_layers), which is only valid for a bottom run of layers.
    """
    archive = _Archive(members, sizes)
    has_index = archive.has("index.json") and archive.has("oci-layout")
    if not has_index and not archive.has("manifest.json"):
        raise ArchiveError("The archive is a tar but not a Docker image archive (no manifest.json or index.json).")
    images = {}
    if archive.has("manifest.json"):
        _read_docker_manifest(archive, images)
    if has_index:
        _read_index(archive, images)
    for image in images.values():
        image.tags = sorted(set(image.tags))
        image.omitted_layers = _omitted_bottom_layers(image, sizes, links or {})
    return OCI if has_index else LEGACY, sorted(images.values(), key=lambda i: (i.tags, i.config_digest))


def resolve_member(path, links):
    """The member a path names, following link members of the archive."""
    seen = set()
    while path in links and path not in seen and len(seen) < _MAX_LINK_HOPS:
        seen.add(path)
        target = links[path]
        path = member_name(target) if target.startswith("/") else posixpath.normpath(posixpath.join(posixpath.dirname(path), target))
    return path


def member_present(path, sizes, links):
    """Whether the archive holds the member at path (a regular file, maybe behind links)."""
    return resolve_member(path, links) in sizes


def _omitted_bottom_layers(image, sizes, links):
    if image.diff_ids and len(image.layers) != len(image.diff_ids):
        raise ArchiveError("The archive's manifest lists %d layers for %s but its config %d; the archive is damaged." % (
            len(image.layers), _name(image), len(image.diff_ids)))
    absent = [i for i, path in enumerate(image.layers) if not member_present(path, sizes, links)]
    if absent != list(range(len(absent))):
        first_gap = next(i for position, i in enumerate(absent) if i != position)
        raise ArchiveError("The archive lacks layer %d of %d of %s while holding layers below it; only a bottom run of "
                           "layers may be left out, so the archive is damaged." % (first_gap + 1, len(image.layers), _name(image)))
    return len(absent)


def _name(image):
    return ", ".join(image.tags) or image.config_digest


def _familiar_tags(repo_tags):
    tags = []
    for ref in repo_tags:
        repo, tag = split_reference(ref)[:2]
        tags.append("%s:%s" % (familiar_repo(repo), tag or "latest"))
    return tags


# Verification against the archive's own digests ----------------------------------------------


def _named_digest(name):
    """The digest a member's name claims for its content: blobs by name, legacy configs by file name."""
    match = _BLOB_PATH.match(name) or _CONFIG_PATH.match(name)
    return "sha256:" + match.group(1) if match else None


def verify_members(layout, images, digests, heads, sizes, links) -> int:
    """Check an archive against its own digests; return the number of bytes verified.

    digests/heads: every regular member's sha256 and first bytes (TarScanner(digests=True)).
    Every `blobs/sha256/<hex>` member and legacy config `<hex>.json` must hash to its name, and
    every layer an image holds to the diff ID its config lists at that position. A compressed
    (gzip or zstd) OCI blob that hashes to its name is accepted as a layer: the engine checks the
    diff ID of what it unpacks. Layers a thin archive leaves out are not looked for. layout is
    accepted for symmetry with parse_layout; both layouts are checked alike. Raises ArchiveError
    naming the first member that does not match.
    """
    verified = set()
    for name in sorted(digests):
        expected = _named_digest(name)
        if expected is None:
            continue
        if digests[name] != expected:
            raise ArchiveError("The archive's member %s does not match its name (its sha256 is %s); the archive is damaged."
                               % (name, digests[name]))
        verified.add(name)
    for image in images:
        for position, path in enumerate(image.layers):
            member = resolve_member(path, links)
            if member not in digests and position < image.omitted_layers:
                continue  # left out of a thin archive; the receiver holds it
            _verify_layer(image, position, member, digests, heads)
            verified.add(member)
    return sum(sizes.get(name, 0) for name in verified)


def _verify_layer(image, position, member, digests, heads):
    where = "layer %d of %d of %s (%s)" % (position + 1, len(image.layers), _name(image), member)
    if member not in digests:
        raise ArchiveError("The archive lacks %s; the archive is damaged." % where)
    if position >= len(image.diff_ids):
        raise ArchiveError("The config of %s lists no diff ID for %s; the archive is damaged." % (_name(image), where))
    digest = digests[member]
    if digest == image.diff_ids[position]:
        return
    if _BLOB_PATH.match(member) and heads.get(member, b"").startswith(_COMPRESSED) and digest == _named_digest(member):
        return
    raise ArchiveError("The archive's %s does not match the diff ID its config lists (its sha256 is %s, expected %s); "
                       "the archive is damaged." % (where, digest, image.diff_ids[position]))
