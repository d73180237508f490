# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The one writer of the image archives this project writes itself (imports of container
filesystems, thin archives): an OCI image layout that also carries manifest.json, with canonical
JSON and tar members of fixed metadata (mode FILE_MODE, owner 0, mtime 0) in one fixed order, so
that the same content always gives the same bytes.
"""

from __future__ import annotations

import hashlib
import json
import tarfile
from typing import Iterable, Iterator, Protocol, Union

from ansible_collections.airgap.docker.plugins.module_utils.references import full_name, split_repo_tag

CONFIG_TYPE = "application/vnd.oci.image.config.v1+json"
MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
INDEX_TYPE = "application/vnd.oci.image.index.v1+json"
LAYER_TYPE = "application/vnd.oci.image.layer.v1.tar"
LAYOUT_FILE = b'{"imageLayoutVersion":"1.0.0"}'
BLOCK = 512
END_OF_ARCHIVE = b"\0" * (2 * BLOCK)
FILE_MODE = 0o644
DIRECTORY_MODE = 0o755
DIRECTORIES = ("blobs/", "blobs/sha256/")


def canonical_json(document) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def blob_name(digest: str) -> str:
    """`sha256:abc` -> `blobs/sha256/abc`."""
    algorithm, hexdigest = digest.split(":", 1)
    return "blobs/%s/%s" % (algorithm, hexdigest)


def manifest_descriptor(manifest_bytes: bytes, tag: str | None = None) -> dict:
    """An index entry for a manifest; with a tag (`repo:tag`), named as the containerd store names images."""
    descriptor = {"mediaType": MANIFEST_TYPE, "digest": sha256_digest(manifest_bytes), "size": len(manifest_bytes)}
    if tag:
        descriptor["annotations"] = {"io.containerd.image.name": full_name(tag),
                                     "org.opencontainers.image.ref.name": split_repo_tag(tag)[1]}
    return descriptor


def index(descriptors: Iterable[dict]) -> bytes:
    return canonical_json({"schemaVersion": 2, "mediaType": INDEX_TYPE, "manifests": list(descriptors)})


def tar_header(name: str, size: int, mode: int = FILE_MODE, directory: bool = False) -> bytes:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = size, mode, 0
    if directory:
        info.type = tarfile.DIRTYPE
    return info.tobuf(format=tarfile.PAX_FORMAT)


def tar_padding(size: int) -> bytes:
    return b"\0" * ((BLOCK - size % BLOCK) % BLOCK)


def tar_member(name: str, data: bytes, mode: int = FILE_MODE) -> bytes:
    return tar_header(name, len(data), mode) + data + tar_padding(len(data))


class StreamedBlob(Protocol):
    """A blob whose bytes are streamed (a layer): its size, known beforehand, and its chunks."""

    size: int

    def chunks(self) -> Iterable[bytes]: ...


Blob = Union[bytes, StreamedBlob]


def layout_blocks(descriptors: Iterable[dict], docker_manifest: list, blobs: dict[str, Blob]) -> Iterator[bytes]:
    """The tar of an OCI image layout that also carries manifest.json, block by block.

    descriptors: index.json's manifest entries (see manifest_descriptor); docker_manifest:
    manifest.json's entries; blobs: {`blobs/sha256/<hex>`: bytes, or a StreamedBlob}.

    One order for every archive written: the directories, oci-layout, index.json, manifest.json,
    the blobs held as bytes (configs, manifests) by name, then the streamed blobs (layers) by name.
    Streamed blobs come last, so a writer that streams one layer (an import) has every small
    member sent before the layer, and only padding and the end-of-archive marker after it.
    """
    for directory in DIRECTORIES:
        yield tar_header(directory, 0, DIRECTORY_MODE, directory=True)
    yield tar_member("oci-layout", LAYOUT_FILE)
    yield tar_member("index.json", index(descriptors))
    yield tar_member("manifest.json", canonical_json(docker_manifest))
    held = sorted(name for name, data in blobs.items() if isinstance(data, bytes))
    streamed = sorted(name for name, data in blobs.items() if not isinstance(data, bytes))
    for name in held:
        yield tar_member(name, blobs[name])
    for name in streamed:
        data = blobs[name]
        yield tar_header(name, data.size)
        yield from data.chunks()
        yield tar_padding(data.size)
    yield END_OF_ARCHIVE
