# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What an image archive holds, in either layout `docker save` writes.

legacy (Docker <= 24): manifest.json, <config digest>.json, <id>/layer.tar, repositories.
oci (Docker >= 25): oci-layout, index.json, blobs/sha256/<digest>, plus manifest.json.
"""

from __future__ import annotations

import json
import posixpath
from dataclasses import asdict, dataclass, field

from ansible_collections.airgap.docker.plugins.module_utils.errors import ArchiveError
from ansible_collections.airgap.docker.plugins.module_utils.identity import fingerprint_from_config_blob
from ansible_collections.airgap.docker.plugins.module_utils.oci_layout import INDEX_TYPE, blob_name
from ansible_collections.airgap.docker.plugins.module_utils.references import familiar_repo, split_reference

LEGACY = "legacy"
OCI = "oci"
_INDEX_TYPES = (INDEX_TYPE, "application/vnd.docker.distribution.manifest.list.v2+json")
_TOP_LEVEL = ("manifest.json", "index.json", "oci-layout", "repositories")


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


def wants_member(name, size):
    """TarScanner.keep: the members that describe the archive (manifests, configs)."""
    if name in _TOP_LEVEL:
        return True
    if "/" not in name and name.endswith(".json"):
        return True  # legacy config <digest>.json
    return name.startswith("blobs/sha256/") and size <= 4 << 20


def _json(members, name, what):
    try:
        return json.loads(members[name])
    except KeyError:
        raise ArchiveError("The archive has no %s (%s is missing)." % (what, name))
    except ValueError as exc:
        raise ArchiveError("The archive's %s is not valid JSON (%s)." % (name, exc))


def _digest_of_path(path):
    """`blobs/sha256/abc` or `abc.json` -> `sha256:abc`."""
    base = path.rsplit("/", 1)[-1]
    if base.endswith(".json"):
        base = base[: -len(".json")]
    return "sha256:" + base


def _tag_from_annotations(annotations):
    name = (annotations or {}).get("io.containerd.image.name")
    if not name:
        return None
    repo, tag, digest = split_reference(name)
    if digest or not tag:
        return None
    return "%s:%s" % (familiar_repo(repo), tag)


def _is_attestation(desc):
    """BuildKit stores provenance/SBOM as extra manifests in an index; they are not images."""
    annotations = desc.get("annotations") or {}
    platform = desc.get("platform") or {}
    return (annotations.get("vnd.docker.reference.type") == "attestation-manifest"
            or (platform.get("os") == "unknown" and platform.get("architecture") == "unknown"))


def _oci_manifests(members, descriptors, index_digest=None):
    """Walk index.json (and nested indexes) -> [(manifest digest, index digest, tag, manifest)]."""
    found = []
    for desc in descriptors:
        digest = desc.get("digest")
        if not digest or _is_attestation(desc):
            continue
        path = blob_name(digest)
        tag = _tag_from_annotations(desc.get("annotations"))
        if desc.get("mediaType") in _INDEX_TYPES:
            nested = _json(members, path, "nested index") if path in members else {}
            for item in _oci_manifests(members, nested.get("manifests") or [], index_digest or digest):
                found.append(item[:2] + (item[2] or tag,) + item[3:])
            continue
        manifest = _json(members, path, "image manifest") if path in members else None
        found.append((digest, index_digest, tag, manifest))
    return found


def parse_layout(members, sizes, links=None):
    """Turn the kept members of an image archive into (layout, [ArchiveImage]).

    sizes: every regular member's size; links: link members' targets. Layers whose member is
    absent make the image thin (omitted_layers), which is only valid for a bottom run of layers.
    """
    has_index = "index.json" in members and "oci-layout" in members
    if not has_index and "manifest.json" not in members:
        raise ArchiveError("The archive is a tar but not a Docker image archive (no manifest.json or index.json).")
    layout = OCI if has_index else LEGACY
    images = {}
    if "manifest.json" in members:
        for entry in _json(members, "manifest.json", "image manifest") or []:
            config_path = entry.get("Config")
            if not config_path:
                raise ArchiveError("The archive's manifest.json has an entry without a Config.")
            image = images.setdefault(_digest_of_path(config_path), ArchiveImage(_digest_of_path(config_path)))
            image.tags.extend(_familiar_tags(entry.get("RepoTags")))
            image.layers = list(entry.get("Layers") or [])
            image.size = sum(sizes.get(layer, 0) for layer in image.layers)
            _apply_config(image, members, config_path)
    if has_index:
        for manifest_digest, index_digest, tag, manifest in _oci_manifests(members, _json(members, "index.json", "OCI index").get("manifests") or []):
            if not manifest or "config" not in manifest:
                continue  # attestation or platform not in the archive
            config_digest = manifest["config"]["digest"]
            image = images.get(config_digest)
            if image is None:
                image = images[config_digest] = ArchiveImage(config_digest)
                image.size = sum(layer.get("size", 0) for layer in manifest.get("layers") or [])
                image.layers = [blob_name(layer["digest"]) for layer in manifest.get("layers") or [] if layer.get("digest")]
                _apply_config(image, members, blob_name(config_digest))
            image.manifest_digest = image.manifest_digest or manifest_digest
            image.index_digest = image.index_digest or index_digest
            if tag:
                image.tags.append(tag)
    for image in images.values():
        image.tags = sorted(set(image.tags))
        image.omitted_layers = _omitted_bottom_layers(image, sizes, links or {})
    return layout, sorted(images.values(), key=lambda i: (i.tags, i.config_digest))


def resolve_member(path, links):
    """The member a path names, following link members of the archive."""
    seen = set()
    while path in links and path not in seen:
        seen.add(path)
        target = links[path]
        path = target.lstrip("/") if target.startswith("/") else posixpath.normpath(posixpath.join(posixpath.dirname(path), target))
    return path


def member_present(path, sizes, links):
    """Whether the archive holds the member at path (a regular file, maybe behind links)."""
    return resolve_member(path, links) in sizes


def _omitted_bottom_layers(image, sizes, links):
    if image.diff_ids and len(image.layers) != len(image.diff_ids):
        raise ArchiveError("The archive's manifest lists %d layers for %s but its config %d; the archive is damaged." % (
            len(image.layers), ", ".join(image.tags) or image.config_digest, len(image.diff_ids)))
    absent = [i for i, path in enumerate(image.layers) if not member_present(path, sizes, links)]
    if absent != list(range(len(absent))):
        first_gap = next(i for position, i in enumerate(absent) if i != position)
        raise ArchiveError("The archive lacks layer %d of %d of %s while holding layers below it; only a bottom run of "
                           "layers may be left out, so the archive is damaged." % (
                               first_gap + 1, len(image.layers), ", ".join(image.tags) or image.config_digest))
    return len(absent)


def _familiar_tags(repo_tags):
    tags = []
    for ref in repo_tags or []:
        repo, tag = split_reference(ref)[:2]
        tags.append("%s:%s" % (familiar_repo(repo), tag or "latest"))
    return tags


def _apply_config(image, members, config_path):
    blob = _json(members, config_path, "image config")
    image.diff_ids = list((blob.get("rootfs") or {}).get("diff_ids") or [])
    image.created = blob.get("created")
    image.os = blob.get("os")
    image.architecture = blob.get("architecture")
    image.fingerprint = fingerprint_from_config_blob(blob)
