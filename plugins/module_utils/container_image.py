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

import json
from typing import Iterable, Iterator

from ansible_collections.airgap.docker.plugins.module_utils.archive_layout import ArchiveImage
from ansible_collections.airgap.docker.plugins.module_utils.identity import (
    RUNTIME_KEYS,
    fingerprint_from_config_blob,
    normalize_created,
)
from ansible_collections.airgap.docker.plugins.module_utils.oci_layout import (
    CONFIG_TYPE,
    END_OF_ARCHIVE,
    LAYER_TYPE,
    MANIFEST_TYPE,
    blob_name,
    canonical_json,
    layout_blocks,
    manifest_descriptor,
    sha256_digest,
    tar_padding,
)

HISTORY_BY = "airgap.docker.container_archive import"
SNAPSHOT_SCHEMA = 1
_STRING_LISTS = ("Cmd", "Entrypoint", "Env", "Shell", "OnBuild")
_STRINGS = ("WorkingDir", "User", "StopSignal")
_OBJECT_SETS = ("ExposedPorts", "Volumes")  # {"80/tcp": {}}


def capture_config(container_config: dict | None) -> dict:
    """The runtime configuration of a container worth giving its image, empty values dropped."""
    captured = {}
    for key in RUNTIME_KEYS:
        value = (container_config or {}).get(key)
        if value not in (None, "", [], {}):
            captured[key] = value
    return captured


def snapshot_record(config: dict, created: str, platform: dict, container: dict) -> dict:
    """The snapshot record an export appends to its archive: what an import gives the image."""
    return {"schema": SNAPSHOT_SCHEMA, "config": config, "created": created,
            "platform": {"os": platform.get("os"), "architecture": platform.get("architecture"),
                         "variant": platform.get("variant")},
            "container": {key: container.get(key) for key in ("id", "name", "image")}}


def _string_list(value):
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def _config_problem(config):
    """What makes `config` unfit to be an image's runtime config, or None."""
    if not isinstance(config, dict):
        return "config is not an object"
    for key, value in config.items():
        if key not in RUNTIME_KEYS:
            return "config has the key %r, which is not runtime configuration" % key
        if key in _STRING_LISTS and not _string_list(value):
            return "config.%s is not a list of strings" % key
        if key in _STRINGS and not isinstance(value, str):
            return "config.%s is not a string" % key
        if key == "Labels" and not (isinstance(value, dict) and all(isinstance(v, str) for v in value.values())):
            return "config.Labels is not an object of strings"
        if key in _OBJECT_SETS and not (isinstance(value, dict) and all(isinstance(v, dict) for v in value.values())):
            return "config.%s is not an object of objects" % key
        if key == "Healthcheck" and not (isinstance(value, dict) and _string_list(value.get("Test", []))):
            return "config.Healthcheck is not an object with a list of strings as Test"
    return None


def _platform_problem(platform):
    if not isinstance(platform, dict) or set(platform) - {"os", "architecture", "variant"}:
        return "platform is not an object of os, architecture and variant"
    if not all(isinstance(platform.get(key), str) and platform[key] for key in ("os", "architecture")):
        return "platform lacks its os or architecture"
    if platform.get("variant") is not None and not isinstance(platform["variant"], str):
        return "platform.variant is not a string"
    return None


def check_snapshot_record(record) -> str | None:
    """None when record has the shape of a snapshot record; else what is wrong, as a phrase.

    Everything the import uses is checked here, so that a hand-made record fails with one
    sentence instead of deep inside the import.
    """
    if not isinstance(record, dict):
        return "it is not an object"
    if record.get("schema") != SNAPSHOT_SCHEMA:
        return "schema %r, this version reads schema %d" % (record.get("schema"), SNAPSHOT_SCHEMA)
    if set(record) != {"schema", "config", "created", "platform", "container"}:
        return "its keys are %s" % ", ".join(sorted(map(str, record)))
    created = record["created"]
    if not isinstance(created, str) or len(created) > 64 or normalize_created(created) in ("", created):
        return "created is not an RFC 3339 time"
    container = record["container"]
    if not isinstance(container, dict) or not all(value is None or isinstance(value, str) for value in container.values()):
        return "container is not an object of strings"
    return _config_problem(record["config"]) or _platform_problem(record["platform"])


def image_config(layer_digest: str, created: str, platform: dict, config: dict | None, message: str | None = None) -> bytes:
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


def image_manifest(config_bytes: bytes, layer_digest: str, layer_size: int) -> bytes:
    return canonical_json({
        "schemaVersion": 2,
        "mediaType": MANIFEST_TYPE,
        "config": {"mediaType": CONFIG_TYPE, "digest": sha256_digest(config_bytes), "size": len(config_bytes)},
        "layers": [{"mediaType": LAYER_TYPE, "digest": layer_digest, "size": layer_size}],
    })


class _Layer:
    """The layer member of an import: its size, and its bytes as the caller streams them."""

    def __init__(self, size, chunks):
        self.size = size
        self._chunks = chunks

    def chunks(self):
        return self._chunks


class ImportArchive:
    """The image archive the engine loads: small members first, then the layer, streamed.

    head() is everything before the layer's bytes; tail() is what follows them.
    """

    def __init__(self, name: str, config_bytes: bytes, layer_digest: str, layer_size: int):
        self.name = name
        self.config_bytes = config_bytes
        self.layer_digest = layer_digest
        self.layer_size = layer_size
        self.manifest_bytes = image_manifest(config_bytes, layer_digest, layer_size)
        self.config_digest = sha256_digest(config_bytes)
        self.manifest_digest = sha256_digest(self.manifest_bytes)

    def blocks(self, layer_chunks: Iterable[bytes] = ()) -> Iterator[bytes]:
        """The whole archive, the layer's bytes taken from layer_chunks (written by oci_layout's one writer)."""
        docker_manifest = [{"Config": blob_name(self.config_digest), "RepoTags": [self.name], "Layers": [blob_name(self.layer_digest)]}]
        blobs = {blob_name(self.config_digest): self.config_bytes, blob_name(self.manifest_digest): self.manifest_bytes,
                 blob_name(self.layer_digest): _Layer(self.layer_size, layer_chunks)}
        return layout_blocks([manifest_descriptor(self.manifest_bytes, self.name)], docker_manifest, blobs)

    def head(self) -> bytes:
        """Everything before the layer's bytes: the layer is the archive's last member (streamed blobs come last)."""
        whole = b"".join(self.blocks())
        return whole[:len(whole) - len(self.tail())]

    def tail(self) -> bytes:
        return tar_padding(self.layer_size) + END_OF_ARCHIVE


def import_plan(name: str, layer_sha256: str, layer_size: int, created: str, platform: dict, config: dict | None,
                comment: str | None = None) -> tuple[ImportArchive, ArchiveImage]:
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


def planned_from_sidecar(meta: dict, name: str) -> ArchiveImage:
    """The image a default import (configuration restored, no changes) of a container archive creates."""
    layer = meta.get("layer") or {}
    return import_plan(name, layer.get("sha256"), layer.get("size") or 0, meta.get("created"), meta.get("platform") or {},
                       meta.get("config") or {})[1]
