# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The pieces of the image archives this project writes itself (imports of container filesystems,
thin archives): an OCI image layout that also carries manifest.json, with canonical JSON and tar
members of fixed metadata, so that the same content always gives the same bytes.
"""

from __future__ import annotations

import hashlib
import json
import tarfile

from ansible_collections.airgap.docker.plugins.module_utils.references import full_name, split_repo_tag

CONFIG_TYPE = "application/vnd.oci.image.config.v1+json"
MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
INDEX_TYPE = "application/vnd.oci.image.index.v1+json"
LAYER_TYPE = "application/vnd.oci.image.layer.v1.tar"
LAYOUT_FILE = b'{"imageLayoutVersion":"1.0.0"}'
BLOCK = 512
END_OF_ARCHIVE = b"\0" * (2 * BLOCK)


def canonical_json(document):
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def sha256_digest(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def blob_name(digest):
    """`sha256:abc` -> `blobs/sha256/abc`."""
    algorithm, hexdigest = digest.split(":", 1)
    return "blobs/%s/%s" % (algorithm, hexdigest)


def manifest_descriptor(manifest_bytes, tag=None):
    """An index entry for a manifest; with a tag (`repo:tag`), named as the containerd store names images."""
    descriptor = {"mediaType": MANIFEST_TYPE, "digest": sha256_digest(manifest_bytes), "size": len(manifest_bytes)}
    if tag:
        descriptor["annotations"] = {"io.containerd.image.name": full_name(tag),
                                     "org.opencontainers.image.ref.name": split_repo_tag(tag)[1]}
    return descriptor


def index(descriptors):
    return canonical_json({"schemaVersion": 2, "mediaType": INDEX_TYPE, "manifests": list(descriptors)})


def tar_header(name, size, mode=0o444, directory=False):
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = size, mode, 0
    if directory:
        info.type = tarfile.DIRTYPE
    return info.tobuf(format=tarfile.PAX_FORMAT)


def tar_padding(size):
    return b"\0" * ((BLOCK - size % BLOCK) % BLOCK)


def tar_member(name, data, mode=0o444):
    return tar_header(name, len(data), mode) + data + tar_padding(len(data))
