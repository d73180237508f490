# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The bundle: a self-describing directory of archives that travels to an air-gapped site.

    manifest.json          what the bundle holds (schema below), canonical JSON
    manifest.json.sig      optional SSH signature of manifest.json (ssh-keygen -Y sign)
    SHA256SUMS             `sha256sum -c` input for every file above except itself and the signature
    images/<name>.tar.zst  one image archive per requested image, with its sidecar <name>.tar.zst.airgap.json
    containers/<name>.tar.zst  one filesystem snapshot per container, with its sidecar

Everything in it is derived from the archives' content only (no packing time, no file times,
sorted keys and entries), so packing the same images twice gives byte-identical files.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath

from ansible_collections.airgap.docker.plugins.module_utils import container_image
from ansible_collections.airgap.docker.plugins.module_utils.archive_layout import ArchiveImage
from ansible_collections.airgap.docker.plugins.module_utils.errors import AirgapError, ArchiveError, ChecksumMismatch, InvalidInput
from ansible_collections.airgap.docker.plugins.module_utils.files import file_sha256, stat_or_none, write_bytes_atomically
from ansible_collections.airgap.docker.plugins.module_utils.identity import normalize_created
from ansible_collections.airgap.docker.plugins.module_utils.sidecar import KIND_IMAGES, SUFFIX
from ansible_collections.airgap.docker.plugins.module_utils.sidecar import SCHEMA as SIDECAR_SCHEMA

SCHEMA = 1
# A bundle with thin archives (entries with delta_of) is schema 2, so that a collection that does not
# know thin archives refuses it instead of delivering them as if they were whole.
SCHEMA_WITH_DELTAS = 2
READABLE_SCHEMAS = (SCHEMA, SCHEMA_WITH_DELTAS)
KIND = "airgap.docker/bundle"
KIND_CONTAINER = "container"
MANIFEST = "manifest.json"
SIGNATURE = "manifest.json.sig"
SUMS = "SHA256SUMS"
AREAS = {KIND_IMAGES: "images", KIND_CONTAINER: "containers"}


def encode(document):
    return (json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


def safe_relative_path(path):
    """`path` when it names a file inside a bundle area (images/ or containers/), else InvalidInput."""
    text = str(path)
    normal = posixpath.normpath(text)
    parts = normal.split("/")
    if text != normal or normal.startswith("/") or ".." in parts or len(parts) != 2 or parts[0] not in AREAS.values():
        raise InvalidInput("%r is not a path inside a bundle (images/<file> or containers/<file>)." % text)
    return normal


def bundle_file(bundle_dir, relative):
    return os.path.join(bundle_dir, *safe_relative_path(relative).split("/"))


def normalized_sidecar(document):
    """A sidecar as the bundle carries it: without what only describes one copy of the file (its mtime)
    or one engine's local IDs, so that the same archive always gives the same bytes."""
    if not isinstance(document, dict) or document.get("schema") != SIDECAR_SCHEMA or document.get("kind") not in AREAS:
        raise InvalidInput("An archive's sidecar is missing or not an airgap.docker sidecar of schema %d." % SIDECAR_SCHEMA)
    normal = json.loads(json.dumps(document))
    normal["archive"] = {k: v for k, v in (normal.get("archive") or {}).items() if k != "mtime_ns"}
    for image in normal.get("images") or []:
        image.pop("engine_id", None)
    for key in ("size", "sha256"):
        if not normal["archive"].get(key):
            raise InvalidInput("An archive's sidecar records no %s; write the archive again with this collection." % key)
    return normal


def archive_entry(path, sidecar_document, image_name=None, delta_of=None):
    """(manifest entry, sidecar bytes) for one archive of the bundle; delta_of names the full archive
    a thin one stands for (it need not be in the bundle)."""
    path = safe_relative_path(path)
    normal = normalized_sidecar(sidecar_document)
    sidecar_bytes = encode(normal)
    archive = normal["archive"]
    entry = {
        "path": path,
        "kind": normal["kind"],
        "size": archive["size"],
        "sha256": archive["sha256"],
        "compression": archive.get("compression"),
        "sidecar": {"path": path + SUFFIX, "sha256": sha256_bytes(sidecar_bytes)},
        "engine": normal.get("engine") or {},
    }
    if normal["kind"] == KIND_IMAGES:
        entry["layout"] = archive.get("layout")
        entry["images"] = [_image_record(image) for image in normal.get("images") or []]
        entry["request"] = (normal.get("request") or {}).get("images") or []
        if delta_of:
            entry["delta_of"] = safe_relative_path(delta_of)
    else:
        if not image_name:
            raise InvalidInput("The container archive %s needs the name of the image it becomes." % path)
        planned = container_image.planned_from_sidecar(normal, image_name)
        entry["images"] = [_image_record(planned.to_dict())]
        entry["container"] = {k: (normal.get("container") or {}).get(k) for k in ("name", "id", "image")}
        entry["config"] = normal.get("config") or {}
        entry["layer"] = normal.get("layer") or {}
        entry["created"] = normal.get("created")
    return entry, sidecar_bytes


def _image_record(image):
    record = ArchiveImage.from_dict(image).to_dict()
    record["tags"] = sorted(record.get("tags") or [])
    return record


def sha256_bytes(data):
    return hashlib.sha256(data).hexdigest()


def build_manifest(entries, source):
    """The manifest document. Its `created` is the newest creation time of what it holds, which
    keeps it reproducible; the time of packing is deliberately not recorded."""
    created = [e["created"] for e in entries if e.get("created")]
    created += [i["created"] for e in entries for i in e.get("images") or [] if i.get("created")]
    paths = [e["path"] for e in entries]
    duplicates = sorted({p for p in paths if paths.count(p) > 1})
    if duplicates:
        raise InvalidInput("Two archives of the bundle would have the same file name: %s." % ", ".join(duplicates))
    # The engine that wrote the archives (version, storage backend), when they all agree.
    engines = {json.dumps(e.get("engine") or {}, sort_keys=True) for e in entries}
    source = dict(source or {})
    if len(engines) == 1:
        source["engine"] = json.loads(engines.pop())
    return {
        "schema": SCHEMA_WITH_DELTAS if any(e.get("delta_of") for e in entries) else SCHEMA,
        "kind": KIND,
        "created": max(created, key=normalize_created) if created else None,
        "source": source,
        "archives": sorted(entries, key=lambda e: e["path"]),
    }


def render_sums(manifest, manifest_bytes):
    """SHA256SUMS for the manifest, every archive and every sidecar, sorted by path."""
    lines = {MANIFEST: sha256_bytes(manifest_bytes)}
    for entry in manifest["archives"]:
        lines[entry["path"]] = entry["sha256"]
        lines[entry["sidecar"]["path"]] = entry["sidecar"]["sha256"]
    return "".join("%s  %s\n" % (lines[path], path) for path in sorted(lines)).encode("utf-8")


def parse_sums(data):
    sums = {}
    for line in data.decode("utf-8", "replace").splitlines():
        digest, sep, path = line.partition("  ")
        if sep and digest:
            sums[path.lstrip("*")] = digest
    return sums


def read_manifest(bundle_dir):
    """(manifest dict, its bytes) of the bundle, or (None, None) when there is none."""
    path = os.path.join(bundle_dir, MANIFEST)
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except FileNotFoundError:
        return None, None
    except OSError as exc:
        raise ArchiveError("Cannot read %s: %s." % (path, exc.strerror))
    try:
        manifest = json.loads(data)
    except ValueError:
        raise ArchiveError("%s is not JSON; the bundle is damaged." % path)
    check_manifest(manifest, path)
    return manifest, data


def check_manifest(manifest, where):
    if not isinstance(manifest, dict) or manifest.get("kind") != KIND:
        raise ArchiveError("%s is not an airgap.docker bundle manifest." % where)
    if manifest.get("schema") not in READABLE_SCHEMAS:
        raise ArchiveError("%s has bundle schema %r; this collection reads schemas %s." % (
            where, manifest.get("schema"), " and ".join(str(v) for v in READABLE_SCHEMAS)))
    for entry in manifest.get("archives") or []:
        safe_relative_path(entry.get("path", ""))
        safe_relative_path((entry.get("sidecar") or {}).get("path", ""))
        if not entry.get("sha256") or not isinstance(entry.get("size"), int):
            raise ArchiveError("%s lists %s without size and sha256." % (where, entry.get("path")))


def listed_files(manifest):
    """Every file a manifest puts in the bundle besides itself."""
    if not manifest:
        return set()
    files = set()
    for entry in manifest.get("archives") or []:
        files.add(entry["path"])
        files.add(entry["sidecar"]["path"])
    return files


def deltas_to_keep(old_manifest, entries):
    """Thin archive entries of the old manifest that still stand for a full archive among `entries`
    (same path, same images) and that `entries` do not replace."""
    if not old_manifest:
        return []
    by_path = {e["path"]: e for e in entries}
    kept = []
    for entry in old_manifest.get("archives") or []:
        full = by_path.get(entry.get("delta_of"))
        if entry["path"] in by_path or full is None:
            continue
        if _identities(entry) == _identities(full):
            kept.append(entry)
    return kept


def _identities(entry):
    return sorted((i.get("fingerprint") or "", tuple(i.get("tags") or [])) for i in entry.get("images") or [])


def stale_files(old_manifest, new_manifest):
    """Files an earlier pack wrote that the new manifest no longer lists."""
    return sorted(listed_files(old_manifest) - listed_files(new_manifest))


def manifest_images(manifest):
    """Every image the bundle delivers, each with the path of the archive that carries it."""
    records = []
    for entry in manifest.get("archives") or []:
        for image in entry.get("images") or []:
            record = dict(image)
            record["archive"] = entry["path"]
            record["kind"] = entry.get("kind")
            if entry.get("delta_of"):
                record["delta_of"] = entry["delta_of"]
            records.append(record)
    return records


def check_sums_file(bundle_dir, manifest, manifest_bytes):
    """SHA256SUMS, when present, must agree with the manifest (the signed authority)."""
    path = os.path.join(bundle_dir, SUMS)
    try:
        with open(path, "rb") as handle:
            sums = parse_sums(handle.read())
    except FileNotFoundError:
        return
    expected = parse_sums(render_sums(manifest, manifest_bytes))
    wrong = sorted(p for p in set(sums) | set(expected) if sums.get(p) != expected.get(p))
    if wrong:
        raise ChecksumMismatch("%s disagrees with %s for %s; the bundle was altered." % (path, MANIFEST, ", ".join(wrong)))


def verified_cache_path(bundle_dir):
    """Where this controller user remembers the checksums it computed for a bundle directory.

    Outside the bundle, in the user's own cache directory: a memo inside the bundle would travel
    with it, and on media prepared by somebody else it could vouch for files it never saw.
    """
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    key = hashlib.sha256(os.path.realpath(bundle_dir).encode("utf-8", "surrogateescape")).hexdigest()[:32]
    return os.path.join(base, "airgap.docker", "verified", key + ".json")


class VerifiedCache:
    """Checksums this controller already computed, keyed by path and the file's stat, so that a
    re-run does not read gigabytes again to learn what it verified before."""

    def __init__(self, bundle_dir):
        self.path = verified_cache_path(bundle_dir)
        self.entries = {}
        self.dirty = False
        try:
            with open(self.path, "rb") as handle:
                data = json.load(handle)
            if isinstance(data, dict):
                self.entries = data
        except (OSError, ValueError):
            pass

    def sha256(self, relative, full_path):
        """(sha256, size, computed now) of the file, from the memo when size and mtime still match."""
        stat = stat_or_none(full_path)
        if stat is None:
            raise ArchiveError("%s is missing from the bundle." % full_path)
        known = self.entries.get(relative) or {}
        if known.get("sha256") and known.get("stat") == self._stat_key(stat):
            return known["sha256"], stat.st_size, False
        digest, size = file_sha256(full_path)
        self.remember(relative, full_path, digest)
        return digest, size, True

    @staticmethod
    def _stat_key(stat):
        # The inode change time is set by the kernel on every write and cannot be copied along
        # (cp -a and rsync keep mtime, not ctime): a file replaced or altered since it was hashed
        # is hashed again.
        return [stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns]

    def remember(self, relative, full_path, digest):
        self.entries[relative] = {"stat": self._stat_key(os.stat(full_path)), "sha256": digest}
        self.dirty = True

    def forget(self, relative):
        self.dirty = self.entries.pop(relative, None) is not None or self.dirty

    def save(self):
        """Write the memo; where it cannot be written the next run simply hashes again."""
        if self.dirty:
            try:
                os.makedirs(os.path.dirname(self.path), mode=0o700, exist_ok=True)
                write_bytes_atomically(self.path, encode(self.entries))
            except (AirgapError, OSError):
                pass  # only an optimization: without it the next run hashes again
            self.dirty = False
