# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A one-layer image built from a container's exported filesystem, deterministically.

`docker import` stamps the current time into the image, so every import is a new image. Here
the image config is built from fixed inputs only (the layer's digest, the creation time taken
at export, the restored config and the changes), serialized canonically, and streamed to the
engine's load endpoint as an OCI image layout that also carries manifest.json. The same archive
with the same config and changes gives the same image ID on every host and every run: the
config digest on the classic store, the manifest digest on the containerd store.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile

from ansible_collections.airgap.docker.plugins.module_utils.archive_layout import ArchiveImage
from ansible_collections.airgap.docker.plugins.module_utils.identity import RUNTIME_KEYS, fingerprint_from_config_blob
from ansible_collections.airgap.docker.plugins.module_utils.references import full_name, split_repo_tag

CONFIG_TYPE = "application/vnd.oci.image.config.v1+json"
MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
INDEX_TYPE = "application/vnd.oci.image.index.v1+json"
LAYER_TYPE = "application/vnd.oci.image.layer.v1.tar"
HISTORY_BY = "airgap.docker.container_archive import"


def canonical_json(document):
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def sha256_digest(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def capture_config(container_config):
    """The runtime configuration of a container worth giving its image, empty values dropped."""
    captured = {}
    for key in RUNTIME_KEYS:
        value = (container_config or {}).get(key)
        if value not in (None, "", [], {}):
            captured[key] = value
    return captured


def image_config(layer_digest, created, platform, config, message=None):
    """The image config document (bytes, canonical) for the single layer `layer_digest`."""
    history = {"created": created, "created_by": HISTORY_BY}
    if message:
        history["comment"] = message
    document = {
        "architecture": platform.get("architecture") or "amd64",
        "os": platform.get("os") or "linux",
        "created": created,
        "config": config or {},
        "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
        "history": [history],
    }
    if platform.get("variant"):
        document["variant"] = platform["variant"]
    return canonical_json(document)


def image_manifest(config_bytes, layer_digest, layer_size):
    return canonical_json({
        "schemaVersion": 2,
        "mediaType": MANIFEST_TYPE,
        "config": {"mediaType": CONFIG_TYPE, "digest": sha256_digest(config_bytes), "size": len(config_bytes)},
        "layers": [{"mediaType": LAYER_TYPE, "digest": layer_digest, "size": layer_size}],
    })


def _index(manifest_bytes, name):
    tag = split_repo_tag(name)[1]
    return canonical_json({
        "schemaVersion": 2,
        "mediaType": INDEX_TYPE,
        "manifests": [{
            "mediaType": MANIFEST_TYPE, "digest": sha256_digest(manifest_bytes), "size": len(manifest_bytes),
            "annotations": {"io.containerd.image.name": full_name(name), "org.opencontainers.image.ref.name": tag},
        }],
    })


def _blob_name(digest):
    return "blobs/sha256/" + digest.split(":", 1)[1]


def _header(name, size):
    info = tarfile.TarInfo(name)
    info.size = size
    info.mode = 0o444
    info.mtime = 0
    return info.tobuf(format=tarfile.PAX_FORMAT)


def _padding(size):
    return b"\0" * ((512 - size % 512) % 512)


def _member(name, data):
    return _header(name, len(data)) + data + _padding(len(data))


class ImportArchive:
    """The image archive the engine loads: small members first, then the layer, streamed.

    head() is everything before the layer's bytes; tail() is what follows them.
    """

    def __init__(self, name, config_bytes, layer_digest, layer_size):
        self.name = name
        self.config_bytes = config_bytes
        self.layer_digest = layer_digest
        self.layer_size = layer_size
        self.manifest_bytes = image_manifest(config_bytes, layer_digest, layer_size)
        self.config_digest = sha256_digest(config_bytes)
        self.manifest_digest = sha256_digest(self.manifest_bytes)

    def head(self):
        docker_manifest = canonical_json([{
            "Config": _blob_name(self.config_digest), "RepoTags": [self.name], "Layers": [_blob_name(self.layer_digest)],
        }])
        out = io.BytesIO()
        out.write(_member("oci-layout", b'{"imageLayoutVersion":"1.0.0"}'))
        out.write(_member("index.json", _index(self.manifest_bytes, self.name)))
        out.write(_member("manifest.json", docker_manifest))
        out.write(_member(_blob_name(self.config_digest), self.config_bytes))
        out.write(_member(_blob_name(self.manifest_digest), self.manifest_bytes))
        out.write(_header(_blob_name(self.layer_digest), self.layer_size))
        return out.getvalue()

    def tail(self):
        return _padding(self.layer_size) + b"\0" * 1024


def import_plan(name, layer_sha256, layer_size, created, platform, config, comment=None):
    """(ImportArchive, ArchiveImage) for importing a layer as image `name`.

    The ArchiveImage is the identity the engine will report, known before anything is imported:
    what lets a host tell, without the archive, whether it already holds the import.
    """
    config_bytes = image_config(layer_sha256, created, platform, config, comment)
    archive = ImportArchive(name, config_bytes, layer_sha256, layer_size)
    image = ArchiveImage(archive.config_digest, tags=[name], manifest_digest=archive.manifest_digest, diff_ids=[layer_sha256],
                         fingerprint=fingerprint_from_config_blob(json.loads(config_bytes)), created=created,
                         os=platform.get("os"), architecture=platform.get("architecture"), size=layer_size)
    return archive, image


def planned_from_sidecar(meta, name):
    """The image a default import (configuration restored, no changes) of a container archive creates."""
    layer = meta.get("layer") or {}
    return import_plan(name, layer.get("sha256"), layer.get("size") or 0, meta.get("created"), meta.get("platform") or {},
                       meta.get("config") or {})[1]
