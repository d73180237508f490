# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Builds image archives in memory, in the layouts `docker save` writes, for the unit tests.

legacy (Docker <= 24): <config hex>.json, <layer id>/{VERSION,json,layer.tar}, manifest.json,
repositories.
oci (Docker >= 25): oci-layout, index.json, blobs/sha256/<digest> (manifest, config, layers),
manifest.json (Config/Layers as blobs/sha256/...) and, for the classic store, repositories.
With nested=True index.json points at an image index per tag (containerd image store).
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from dataclasses import dataclass, field

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
IN_TOTO = "application/vnd.in-toto+json"


def sha256_hex(data):
    return hashlib.sha256(data).hexdigest()


def digest(data):
    return "sha256:" + sha256_hex(data)


def canonical(document):
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode("utf-8")


def tar_bytes(entries, fmt=tarfile.PAX_FORMAT):
    """A tar of entries: (name, bytes) for files, (name, None) for directories."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=fmt) as tar:
        for name, data in entries:
            info = tarfile.TarInfo(name)
            info.mtime = 0
            if data is None:
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
                tar.addfile(info)
            else:
                info.size = len(data)
                info.mode = 0o644
                tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def layer_tar(files):
    """A layer: a tar of {path: bytes}."""
    return tar_bytes(sorted(files.items()))


@dataclass
class ImageSpec:
    """An image to put into an archive, and after building, its digests."""

    tags: list = field(default_factory=list)  # references as docker save writes them (RepoTags)
    layers: list = field(default_factory=list)  # bytes of each layer tar
    created: str = "2024-03-01T12:00:00.123456789Z"
    os: str = "linux"
    architecture: str = "amd64"
    variant: str = None
    runtime: dict = field(default_factory=lambda: {"Cmd": ["sh"], "Env": ["PATH=/usr/bin:/bin"]})
    # filled by the builders
    config_bytes: bytes = None
    manifest_bytes: bytes = None
    index_bytes: bytes = None

    def __post_init__(self):
        if not self.layers:
            self.layers = [layer_tar({"etc/hostname": b"airgap\n", "bin/sh": b"#!fake shell\n"})]

    @property
    def diff_ids(self):
        return [digest(layer) for layer in self.layers]

    @property
    def config(self):
        document = {
            "architecture": self.architecture,
            "os": self.os,
            "created": self.created,
            "config": dict(self.runtime),
            "rootfs": {"type": "layers", "diff_ids": self.diff_ids},
            "history": [{"created": self.created, "created_by": "test"}],
        }
        if self.variant:
            document["variant"] = self.variant
        return document

    @property
    def config_digest(self):
        return digest(self.config_bytes or canonical(self.config))

    @property
    def manifest_digest(self):
        return digest(self.manifest_bytes) if self.manifest_bytes else None

    @property
    def index_digest(self):
        return digest(self.index_bytes) if self.index_bytes else None

    @property
    def layers_size(self):
        return sum(len(layer) for layer in self.layers)

    def inspect(self, image_id=None, repo_tags=None, **overrides):
        """What `docker image inspect` would show for this image."""
        info = {
            "Id": image_id or self.config_digest,
            "RepoTags": list(self.tags if repo_tags is None else repo_tags),
            "Created": self.created,
            "Os": self.os,
            "Architecture": self.architecture,
            "RootFS": {"Type": "layers", "Layers": self.diff_ids},
            "Config": dict(self.runtime, Hostname="", Image="", OnBuild=None),
            "Size": self.layers_size,
        }
        if self.variant:
            info["Variant"] = self.variant
        info.update(overrides)
        return info


def _legacy_layer_ids(image):
    ids, parent = [], ""
    for diff_id in image.diff_ids:
        parent = sha256_hex((parent + diff_id).encode())
        ids.append(parent)
    return ids


def legacy_archive(images, repositories=True, fmt=tarfile.PAX_FORMAT):
    """The bytes of a legacy `docker save` archive of images (ImageSpec list)."""
    files, manifest, repos = {}, [], {}
    for image in images:
        image.config_bytes = canonical(image.config)
        config_name = sha256_hex(image.config_bytes) + ".json"
        files[config_name] = image.config_bytes
        layer_paths = []
        for layer_id, layer in zip(_legacy_layer_ids(image), image.layers):
            files[layer_id + "/VERSION"] = b"1.0"
            files[layer_id + "/json"] = canonical({"id": layer_id})
            files[layer_id + "/layer.tar"] = layer
            layer_paths.append(layer_id + "/layer.tar")
        manifest.append({"Config": config_name, "RepoTags": list(image.tags) or None, "Layers": layer_paths})
        for ref in image.tags:
            repo, tag = _repo_and_tag(ref)
            repos.setdefault(repo, {})[tag] = _legacy_layer_ids(image)[-1]
    files["manifest.json"] = json.dumps(manifest).encode()
    if repositories and repos:
        files["repositories"] = json.dumps(repos).encode()
    return tar_bytes(_with_directories(files), fmt=fmt)


def _with_directories(files):
    entries, seen = [], set()
    for name in sorted(files):
        if "/" in name:
            directory = name.rsplit("/", 1)[0] + "/"
            parts = directory.strip("/").split("/")
            for depth in range(1, len(parts) + 1):
                path = "/".join(parts[:depth]) + "/"
                if path not in seen:
                    seen.add(path)
                    entries.append((path, None))
        entries.append((name, files[name]))
    return entries


def _descriptor(media_type, data, **extra):
    desc = {"mediaType": media_type, "digest": digest(data), "size": len(data)}
    desc.update(extra)
    return desc


def _repo_and_tag(ref):
    """`repo:tag` -> (repo, tag); a reference without a tag gives an empty tag."""
    repo, separator, tag = ref.rpartition(":")
    return (repo, tag) if separator else (tag, "")


def _annotations(ref):
    """Annotations of an index.json entry for a docker save reference such as `busybox:1`."""
    repo, tag = _repo_and_tag(ref)
    if "/" not in repo:
        repo = "library/" + repo
    if repo.split("/")[0].count(".") == 0 and ":" not in repo.split("/")[0] and repo.split("/")[0] != "localhost":
        repo = "docker.io/" + repo
    return {"io.containerd.image.name": "%s:%s" % (repo, tag), "org.opencontainers.image.ref.name": tag}


def oci_archive(images, nested=False, manifest_json=True, repositories=True, attestation=False,
                missing_platform=False, extra_blobs=None):
    """The bytes of an OCI-layout `docker save` archive of images (ImageSpec list).

    nested: index.json entries point at an image index (containerd image store).
    attestation: the nested index also lists a buildkit attestation manifest, with its blobs.
    missing_platform: the nested index also lists an arm64 manifest whose blobs are absent.
    """
    blobs, index_entries, manifest, repos = {}, [], [], {}
    for image in images:
        image.config_bytes = canonical(image.config)
        blobs[image.config_digest] = image.config_bytes
        for layer in image.layers:
            blobs[digest(layer)] = layer
        image.manifest_bytes = canonical({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": _descriptor(OCI_CONFIG, image.config_bytes),
            "layers": [_descriptor(OCI_LAYER, layer) for layer in image.layers],
        })
        blobs[image.manifest_digest] = image.manifest_bytes
        platform = {"os": image.os, "architecture": image.architecture}
        target = _descriptor(OCI_MANIFEST, image.manifest_bytes, platform=platform)
        if nested:
            children = [target]
            if missing_platform:
                children.append({"mediaType": OCI_MANIFEST, "digest": "sha256:" + "e" * 64, "size": 500,
                                 "platform": {"os": "linux", "architecture": "arm64"}})
            if attestation:
                statement = canonical({"_type": "https://in-toto.io/Statement/v0.1", "subject": []})
                att_config = canonical({"architecture": "unknown", "os": "unknown", "config": {},
                                        "rootfs": {"type": "layers", "diff_ids": [digest(statement)]}})
                att_manifest = canonical({
                    "schemaVersion": 2, "mediaType": OCI_MANIFEST,
                    "config": _descriptor(OCI_CONFIG, att_config),
                    "layers": [_descriptor(IN_TOTO, statement)],
                })
                blobs[digest(att_config)] = att_config
                blobs[digest(statement)] = statement
                blobs[digest(att_manifest)] = att_manifest
                children.append(_descriptor(OCI_MANIFEST, att_manifest, platform={"os": "unknown", "architecture": "unknown"},
                                            annotations={"vnd.docker.reference.digest": image.manifest_digest,
                                                         "vnd.docker.reference.type": "attestation-manifest"}))
            image.index_bytes = canonical({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": children})
            blobs[image.index_digest] = image.index_bytes
            target = _descriptor(OCI_INDEX, image.index_bytes)
        if image.tags:
            for ref in image.tags:
                index_entries.append(dict(target, annotations=_annotations(ref)))
        else:
            index_entries.append(dict(target))
        manifest.append({
            "Config": "blobs/sha256/" + image.config_digest[7:],
            "RepoTags": list(image.tags) or None,
            "Layers": ["blobs/sha256/" + digest(layer)[7:] for layer in image.layers],
        })
        for ref in image.tags:
            repo, tag = _repo_and_tag(ref)
            repos.setdefault(repo, {})[tag] = image.config_digest[7:]
    blobs.update(extra_blobs or {})
    files = {"blobs/sha256/" + d[7:]: data for d, data in blobs.items()}
    files["oci-layout"] = b'{"imageLayoutVersion":"1.0.0"}'
    files["index.json"] = canonical({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": index_entries})
    if manifest_json:
        files["manifest.json"] = json.dumps(manifest).encode()
    if repositories and repos:
        files["repositories"] = json.dumps(repos).encode()
    return tar_bytes(_with_directories(files))


def random_bytes(seed, size):
    """Reproducible incompressible bytes (random.randbytes needs Python 3.9)."""
    import random

    return random.Random(seed).getrandbits(8 * size).to_bytes(size, "little") if size else b""


def chunks(data, size):
    """data cut into pieces of size bytes (the last may be shorter)."""
    return [data[i:i + size] for i in range(0, len(data), size)] or [b""]


def scan(data, keep=None, chunk=1 << 20):
    """Feed data to a TarScanner (keep defaults to archive_layout.wants_member); return it."""
    from ansible_collections.airgap.docker.plugins.module_utils.archive_layout import (
        wants_member,
    )
    from ansible_collections.airgap.docker.plugins.module_utils.tarscan import (
        TarScanner,
    )

    scanner = TarScanner(keep or wants_member)
    for piece in chunks(data, chunk):
        scanner.feed(piece)
    scanner.finish()
    return scanner


def parse(data):
    """(layout, images) of archive bytes, through the scanner and parse_layout."""
    from ansible_collections.airgap.docker.plugins.module_utils.archive_layout import (
        parse_layout,
    )

    scanner = scan(data)
    return parse_layout(scanner.members, scanner.sizes)


def rewrite_archive(data, drop=(), links=None):
    """archive bytes with the members in drop left out and the members in links replaced by
    link members: links maps a name to ("sym" or "hard", target)."""
    links = dict(links or {})
    buffer = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO(data)) as src, tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as dst:
        for info in src:
            if info.name in drop:
                continue
            if info.name in links:
                kind, target = links.pop(info.name)
                link = tarfile.TarInfo(info.name)
                link.mtime = 0
                link.type = tarfile.SYMTYPE if kind == "sym" else tarfile.LNKTYPE
                link.linkname = target
                dst.addfile(link)
                continue
            dst.addfile(info, src.extractfile(info) if info.isreg() else None)
    assert not links, "no such members: %s" % sorted(links)
    return buffer.getvalue()


def member_names(data):
    """Every member name of a tar, in order."""
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return tar.getnames()


def parse_with_links(data):
    """(layout, images) of archive bytes, passing the scanner's links to parse_layout."""
    from ansible_collections.airgap.docker.plugins.module_utils.archive_layout import (
        parse_layout,
    )

    scanner = scan(data)
    return parse_layout(scanner.members, scanner.sizes, scanner.links)


# Hand-made tar headers, for the formats and malformations tarfile does not write -------------

END_OF_TAR = bytes(1024)


def raw_header(name=b"member", size=0, typeflag=b"0", fmt="ustar", prefix=b"", linkname=b"", fields=None,
               checksum="unsigned"):
    """One 512-byte tar header, byte by byte.

    fmt: "ustar" (magic "ustar\\0", version "00"), "gnu" ("ustar  \\0"), "star" (ustar magic with
    the "tar\\0" trailer) or "v7" (no magic). prefix: bytes at offset 345 (a ustar or STAR name
    prefix, a GNU header's atime and ctime). fields: {offset: bytes} written last, e.g. a size
    field that is not octal. checksum: "unsigned", "signed" (Go accepts both) or raw bytes.
    """
    block = bytearray(512)
    block[0:len(name)] = name
    block[100:108] = b"0000644\0"
    block[108:116] = b"0000000\0"
    block[116:124] = b"0000000\0"
    block[124:136] = b"%011o\0" % size if isinstance(size, int) else size
    block[136:148] = b"00000000000\0"
    block[156:157] = typeflag
    block[157:157 + len(linkname)] = linkname
    if fmt in ("ustar", "star"):
        block[257:265] = b"ustar\x0000"
    elif fmt == "gnu":
        block[257:265] = b"ustar  \0"
    if fmt != "v7":
        block[329:345] = b"0000000\x000000000\0"
    block[345:345 + len(prefix)] = prefix
    if fmt == "star":
        block[508:512] = b"tar\0"
    for offset, value in (fields or {}).items():
        block[offset:offset + len(value)] = value
    block[148:156] = b" " * 8
    if checksum == "unsigned":
        block[148:156] = b"%06o\0 " % sum(block)
    elif checksum == "signed":
        block[148:156] = b"%06o\0 " % sum(byte - 256 if byte >= 128 else byte for byte in block)
    else:
        block[148:156] = checksum
    return bytes(block)


def raw_member(name, body=b"", **header):
    """A regular member (header, body, padding) made with raw_header."""
    header.setdefault("size", len(body))
    return raw_header(name, **header) + body + bytes(-len(body) % 512)


def pax_record(key, value):
    """One PAX record `<length> <key>=<value>\\n`, its length counting itself."""
    payload = b" %s=%s\n" % (key, value)
    length = len(payload) + 1
    while len(b"%d" % length) + len(payload) != length:
        length += 1
    return b"%d%s" % (length, payload)


def pax_member(records, typeflag=b"x"):
    """A PAX header member ('x' or 'g') carrying records ({key: value} or the raw body)."""
    body = records if isinstance(records, bytes) else b"".join(pax_record(k, v) for k, v in records.items())
    return raw_member(b"PaxHeaders/member", body, typeflag=typeflag)


# Archives generated on the fly, for layer sizes that should not sit in memory --------------


def _stream_layer(index, size):
    """The chunks of a layer: a tar holding one file of `size` bytes."""
    info = tarfile.TarInfo("data/layer-%d.bin" % index)
    info.size, info.mtime, info.mode = size, 0, 0o644
    yield info.tobuf(format=tarfile.PAX_FORMAT)
    piece = (b"layer %06d " % index) * ((1 << 20) // 13 + 1)
    remaining = size
    while remaining:
        chunk = piece[:min(remaining, 1 << 20)]
        remaining -= len(chunk)
        yield chunk
    yield bytes(-size % 512) + END_OF_TAR


def _stream_member(name, size, chunks):
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = size, 0, 0o644
    yield info.tobuf(format=tarfile.PAX_FORMAT)
    yield from chunks
    yield bytes(-size % 512)


class StreamedImage:
    """A docker save archive of one image with `count` layers of `size` bytes each, produced as
    chunks without holding a layer in memory (layer_chunks are generated twice: once to digest)."""

    def __init__(self, count, size, tag="big:1"):
        self.count, self.layer_size, self.tag = count, size, tag
        self.layer_sizes, self.diff_ids = [], []
        for index in range(count):
            hasher, total = hashlib.sha256(), 0
            for chunk in _stream_layer(index, size):
                hasher.update(chunk)
                total += len(chunk)
            self.layer_sizes.append(total)
            self.diff_ids.append("sha256:" + hasher.hexdigest())
        self.spec = ImageSpec(tags=[tag], layers=[b""])  # for its config; the layers are replaced below
        self.config_bytes = canonical(dict(self.spec.config, rootfs={"type": "layers", "diff_ids": self.diff_ids}))
        self.config_digest = digest(self.config_bytes)

    def chunks(self, layout):
        """The archive's tar, in the layout docker save writes ("legacy" or "oci")."""
        if layout == "legacy":
            yield from self._legacy()
        else:
            yield from self._oci()
        yield END_OF_TAR

    def _layers(self, names):
        for index, name in enumerate(names):
            yield from _stream_member(name, self.layer_sizes[index], _stream_layer(index, self.layer_size))

    def _legacy(self):
        names = ["%064x/layer.tar" % (index + 1) for index in range(self.count)]
        yield from self._layers(names)
        config_name = sha256_hex(self.config_bytes) + ".json"
        yield from _stream_member(config_name, len(self.config_bytes), [self.config_bytes])
        manifest = json.dumps([{"Config": config_name, "RepoTags": [self.tag], "Layers": names}]).encode()
        yield from _stream_member("manifest.json", len(manifest), [manifest])

    def _oci(self):
        names = ["blobs/sha256/" + diff_id[7:] for diff_id in self.diff_ids]
        yield from self._layers(names)
        manifest = canonical({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": _descriptor(OCI_CONFIG, self.config_bytes),
                              "layers": [{"mediaType": OCI_LAYER, "digest": d, "size": s} for d, s in zip(self.diff_ids, self.layer_sizes)]})
        index = canonical({"schemaVersion": 2, "mediaType": OCI_INDEX,
                           "manifests": [dict(_descriptor(OCI_MANIFEST, manifest), annotations=_annotations(self.tag))]})
        docker = json.dumps([{"Config": "blobs/sha256/" + self.config_digest[7:], "RepoTags": [self.tag], "Layers": names}]).encode()
        for name, data in (("blobs/sha256/" + self.config_digest[7:], self.config_bytes), ("blobs/sha256/" + sha256_hex(manifest), manifest),
                           ("index.json", index), ("manifest.json", docker), ("oci-layout", b'{"imageLayoutVersion":"1.0.0"}')):
            yield from _stream_member(name, len(data), [data])


def member_files(data):
    """The regular members of a tar as {name: bytes}, to be changed and put back with files_archive."""
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return {info.name: tar.extractfile(info).read() for info in tar if info.isreg()}


def files_archive(files):
    """A tar of {name: bytes}, with the directory entries docker save writes."""
    return tar_bytes(_with_directories(files))
