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
    <archive>.part001 ...  instead of <archive>, when the bundle was packed with a split size smaller
                           than the archive (see archive_parts)

Everything in it is derived from the archives' content only (no packing time, no file times,
sorted keys and entries), so packing the same images twice gives byte-identical files.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath

from ansible_collections.airgap.docker.plugins.module_utils import archive_parts, container_image
from ansible_collections.airgap.docker.plugins.module_utils.archive_layout import ArchiveImage
from ansible_collections.airgap.docker.plugins.module_utils.constants import KIND_CONTAINER, KIND_IMAGES
from ansible_collections.airgap.docker.plugins.module_utils.errors import AirgapError, ArchiveError, ChecksumMismatch, InvalidInput
from ansible_collections.airgap.docker.plugins.module_utils.file_access import open_regular
from ansible_collections.airgap.docker.plugins.module_utils.identity import normalize_created
from ansible_collections.airgap.docker.plugins.module_utils.sidecar import SCHEMA as SIDECAR_SCHEMA
from ansible_collections.airgap.docker.plugins.module_utils.sidecar import SUFFIX, encode

SCHEMA = 1
# A bundle with thin archives (entries with delta_of) is schema 2, so that a collection that does not
# know thin archives refuses it instead of delivering them as if they were whole.
SCHEMA_WITH_DELTAS = 2
# A bundle with archives held as parts is schema 3: a collection that does not know parts would look
# for the whole files and fail without saying why.
SCHEMA_WITH_PARTS = 3
READABLE_SCHEMAS = (SCHEMA, SCHEMA_WITH_DELTAS, SCHEMA_WITH_PARTS)
KIND = "airgap.docker/bundle"
MANIFEST = "manifest.json"
SIGNATURE = "manifest.json.sig"
SUMS = "SHA256SUMS"
AREAS = {KIND_IMAGES: "images", KIND_CONTAINER: "containers"}
# A manifest lists a few KiB per archive; anything larger is not one of ours, and is refused before
# it is read whole. The same bound holds for SHA256SUMS and for a sidecar read back from a bundle.
MAX_DOCUMENT_BYTES = 64 << 20
# Our manifests nest about seven levels deep (archives, entry, config, Healthcheck, Test, ...).
MAX_DEPTH = 64
HEX = frozenset("0123456789abcdef")


def safe_relative_path(path) -> str:
    """`path` when it names a file inside a bundle area (images/ or containers/), else InvalidInput."""
    text = str(path)
    normal = posixpath.normpath(text)
    parts = normal.split("/")
    if text != normal or normal.startswith("/") or ".." in parts or len(parts) != 2 or parts[0] not in AREAS.values():
        raise InvalidInput("%r is not a path inside a bundle (images/<file> or containers/<file>)." % text)
    return normal


def bundle_file(bundle_dir: str, relative: str) -> str:
    return os.path.join(bundle_dir, *safe_relative_path(relative).split("/"))


def normalized_sidecar(document) -> dict:
    """A sidecar as the bundle carries it: without what only describes one copy of the file (its mtime)
    or one engine's local IDs, so that the same archive always gives the same bytes."""
    if not isinstance(document, dict) or document.get("schema") != SIDECAR_SCHEMA or document.get("kind") not in AREAS:
        raise InvalidInput("An archive's sidecar is missing or not an airgap.docker sidecar of schema %d." % SIDECAR_SCHEMA)
    archive, images = document.get("archive"), document.get("images")
    images = [] if images is None else images
    if not isinstance(archive, (dict, type(None))) or not isinstance(images, list) or not all(
            isinstance(i, dict) and _is_list_of(i.get("tags") or [], str) for i in images):
        raise InvalidInput("An archive's sidecar does not have the shape of an airgap.docker sidecar of schema %d." % SIDECAR_SCHEMA)
    normal = json.loads(json.dumps(document))
    # The parts a module split the file into are a matter of the medium, not of the archive: the
    # manifest records the bundle's own layout.
    normal["archive"] = {k: v for k, v in (normal.get("archive") or {}).items() if k not in ("mtime_ns", "parts")}
    for image in normal.get("images") or []:
        image.pop("engine_id", None)
    for key in ("size", "sha256"):
        if not normal["archive"].get(key):
            raise InvalidInput("An archive's sidecar records no %s; write the archive again with this collection." % key)
    return normal


def archive_entry(path: str, sidecar_document: dict, image_name: str | None = None,
                  delta_of: str | None = None) -> tuple[dict, bytes]:
    """(manifest entry, sidecar bytes) for one archive of the bundle; delta_of names the full archive
    a thin one stands for (it need not be in the bundle). An archive held as parts gets its `parts`
    from with_parts()."""
    path = safe_relative_path(path)
    if archive_parts.PART_NAME.match(path):
        raise InvalidInput("%s is named like a part of a split archive (.partNNN); give the archive another name." % path)
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


def with_parts(entry: dict, parts: list[dict] | None) -> dict:
    """The entry with the parts ({"path", "size", "sha256"}) its archive is held as, or without any."""
    entry = dict(entry)
    entry.pop("parts", None)
    if parts:
        entry["parts"] = [{"path": p["path"], "size": p["size"], "sha256": p["sha256"]} for p in parts]
    return entry


def files_of(entry: dict) -> list[tuple[str, int, str]]:
    """[(path, size, sha256)] of the files that hold the entry's archive: its parts, or the archive."""
    if entry.get("parts"):
        return [(p["path"], p["size"], p["sha256"]) for p in entry["parts"]]
    return [(entry["path"], entry["size"], entry["sha256"])]


def _image_record(image):
    record = ArchiveImage.from_dict(image).to_dict()
    record["tags"] = sorted(record.get("tags") or [])
    return record


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def build_manifest(entries: list[dict], source: dict | None) -> dict:
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
    schema = SCHEMA
    if any(e.get("parts") for e in entries):
        schema = SCHEMA_WITH_PARTS
    elif any(e.get("delta_of") for e in entries):
        schema = SCHEMA_WITH_DELTAS
    return {
        "schema": schema,
        "kind": KIND,
        "created": max(created, key=normalize_created) if created else None,
        "source": source,
        "archives": sorted(entries, key=lambda e: e["path"]),
    }


def render_sums(manifest: dict, manifest_bytes: bytes) -> bytes:
    """SHA256SUMS for the manifest, every archive (or each of its parts) and every sidecar, sorted by path."""
    lines = {MANIFEST: sha256_bytes(manifest_bytes)}
    for entry in manifest["archives"]:
        for path, _size, digest in files_of(entry):
            lines[path] = digest
        lines[entry["sidecar"]["path"]] = entry["sidecar"]["sha256"]
    return "".join("%s  %s\n" % (lines[path], path) for path in sorted(lines)).encode("utf-8")


def parse_sums(data: bytes) -> dict[str, str]:
    sums = {}
    for line in data.decode("utf-8", "replace").splitlines():
        digest, sep, path = line.partition("  ")
        if sep and digest:
            sums[path.lstrip("*")] = digest
    return sums


def read_document(path: str, what: str = "file") -> bytes | None:
    """The bytes of a small file of the bundle, or None when there is none; refused when larger than
    MAX_DOCUMENT_BYTES, before it is read whole."""
    try:
        with open_regular(path) as handle:
            data = handle.read(MAX_DOCUMENT_BYTES + 1)
    except ArchiveError:
        if not os.path.lexists(path):
            return None
        raise
    except AirgapError as exc:
        raise ArchiveError(exc.msg)
    except OSError as exc:
        raise ArchiveError("Cannot read %s: %s." % (path, exc.strerror))
    if len(data) > MAX_DOCUMENT_BYTES:
        raise ArchiveError("%s is larger than %d MiB; it is not the %s of an airgap.docker bundle." % (
            path, MAX_DOCUMENT_BYTES >> 20, what))
    return data


def read_manifest_bytes(bundle_dir: str) -> bytes | None:
    """The manifest's raw bytes, or None when the bundle has none: what a signature is checked on."""
    return read_document(os.path.join(bundle_dir, MANIFEST), "manifest")


def read_manifest(bundle_dir: str) -> tuple[dict | None, bytes | None]:
    """(manifest dict, its bytes) of the bundle, or (None, None) when there is none.

    This parses what it finds without checking who wrote it: a reader that trusts the content
    checks the signature or SHA256SUMS on the bytes first (see check_manifest_line).
    """
    data = read_manifest_bytes(bundle_dir)
    if data is None:
        return None, None
    return parse_manifest(data, os.path.join(bundle_dir, MANIFEST)), data


def parse_manifest(data: bytes, where: str) -> dict:
    """The manifest document in `data`, its shape checked; ArchiveError with one sentence otherwise."""
    try:
        manifest = json.loads(data)
    except RecursionError:
        raise ArchiveError("%s is nested deeper than %d levels; it is not an airgap.docker bundle manifest." % (where, MAX_DEPTH))
    except ValueError:
        raise ArchiveError("%s is not JSON; the bundle is damaged." % where)
    check_manifest(manifest, where)
    return manifest


def check_manifest(manifest, where: str) -> None:
    """Every field a reader uses has the type the format gives it; ArchiveError names the first that does not."""
    if not isinstance(manifest, dict) or manifest.get("kind") != KIND:
        raise ArchiveError("%s is not an airgap.docker bundle manifest." % where)
    schema = manifest.get("schema")
    if isinstance(schema, bool) or schema not in READABLE_SCHEMAS:
        raise ArchiveError("%s has bundle schema %r; this collection reads schemas %s and %d." % (
            where, schema, ", ".join(str(v) for v in READABLE_SCHEMAS[:-1]), READABLE_SCHEMAS[-1]))
    _check_depth(manifest, where)
    shape = _Shape(where)
    shape.optional(manifest, "created", str, "")
    source = shape.optional(manifest, "source", dict, "") or {}
    shape.optional(source, "host", str, "source")
    shape.strings(source, "baseline", "source")
    shape.optional(source, "engine", dict, "source")
    archives = shape.optional(manifest, "archives", list, "") or []
    seen = set()
    for index, entry in enumerate(archives):
        _check_entry(shape, entry, "archives[%d]" % index)
        if entry["path"] in seen:
            raise ArchiveError("%s lists %s twice." % (where, entry["path"]))
        seen.add(entry["path"])


def _check_entry(shape, entry, at):
    if not isinstance(entry, dict):
        shape.fail(at, "is not an object")
    path = shape.path(entry, "path", at)
    if archive_parts.PART_NAME.match(path):
        shape.fail(at + ".path", "is named like a part of a split archive (.partNNN)")
    if entry.get("kind") not in (KIND_IMAGES, KIND_CONTAINER):
        shape.fail(at + ".kind", "is neither %r nor %r" % (KIND_IMAGES, KIND_CONTAINER))
    if not _is_count(entry.get("size")):
        raise ArchiveError("%s lists %s without size and sha256." % (shape.where, path))
    shape.sha256(entry, "sha256", at)
    for key in ("compression", "layout", "created"):
        shape.optional(entry, key, str, at)
    for key in ("engine", "container", "config", "layer"):
        shape.optional(entry, key, dict, at)
    shape.strings(entry, "request", at)
    sidecar = shape.required(entry, "sidecar", dict, at)
    if shape.path(sidecar, "path", at + ".sidecar") != path + SUFFIX:
        shape.fail(at + ".sidecar.path", "is not %s" % (path + SUFFIX))
    shape.sha256(sidecar, "sha256", at + ".sidecar")
    if "parts" in entry:
        _check_parts(shape, entry, at)
    if "delta_of" in entry:
        if entry["kind"] != KIND_IMAGES:
            shape.fail(at + ".delta_of", "is set on a container archive")
        shape.path(entry, "delta_of", at)
    images = shape.required(entry, "images", list, at)
    for index, image in enumerate(images):
        _check_image(shape, image, "%s.images[%d]" % (at, index))
    if entry["kind"] == KIND_CONTAINER and (len(images) != 1 or not images[0].get("tags")):
        shape.fail(at + ".images", "does not name the one image the container archive becomes")


def _check_parts(shape, entry, at):
    """Parts named <path>.part001, .part002, ... in order, each with a size and a sha256, laid out as
    archive_parts.plan() lays them out and adding up to the archive's size."""
    parts = shape.required(entry, "parts", list, at)
    for index, part in enumerate(parts):
        where = "%s.parts[%d]" % (at, index)
        if not isinstance(part, dict):
            shape.fail(where, "is not an object")
        if shape.path(part, "path", where) != archive_parts.part_name(entry["path"], index + 1):
            shape.fail(where + ".path", "is not %s" % archive_parts.part_name(entry["path"], index + 1))
        if not _is_count(part.get("size")):
            shape.fail(where + ".size", "is not a whole number of zero or more")
        shape.sha256(part, "sha256", where)
    if not archive_parts.is_layout([p["size"] for p in parts], entry["size"]):
        shape.fail(at + ".parts", "are not parts of one size but the last, at least two and at most %d, adding up to %d bytes"
                   % (archive_parts.MAX_PARTS, entry["size"]))


def _check_image(shape, image, at):
    if not isinstance(image, dict):
        shape.fail(at, "is not an object")
    shape.strings(image, "tags", at)
    for key in ("config_digest", "manifest_digest", "index_digest", "fingerprint", "created", "os", "architecture"):
        shape.optional(image, key, str, at)
    shape.strings(image, "diff_ids", at)
    shape.strings(image, "layers", at)
    for key in ("size", "omitted_layers"):
        if image.get(key) is not None and not _is_count(image[key]):
            shape.fail("%s.%s" % (at, key), "is not a whole number of zero or more")


class _Shape:
    """Type checks of a manifest's fields, each failing with a sentence that names the field."""

    TYPE_NAMES = {str: "a string", dict: "an object", list: "a list"}

    def __init__(self, where):
        self.where = where

    def fail(self, at, problem):
        raise ArchiveError("%s is not a valid bundle manifest: %s %s." % (self.where, at, problem))

    def optional(self, document, key, kind, at):
        value = document.get(key)
        if value is not None and not isinstance(value, kind):
            self.fail(_field(at, key), "is not %s" % self.TYPE_NAMES[kind])
        return value

    def required(self, document, key, kind, at):
        if document.get(key) is None:
            self.fail(_field(at, key), "is missing")
        return self.optional(document, key, kind, at)

    def strings(self, document, key, at):
        value = self.optional(document, key, list, at)
        if value is not None and not _is_list_of(value, str):
            self.fail(_field(at, key), "is not a list of strings")
        return value

    def path(self, document, key, at):
        value = self.required(document, key, str, at)
        try:
            return safe_relative_path(value)
        except InvalidInput:
            self.fail(_field(at, key), "is not a path inside a bundle (images/<file> or containers/<file>)")

    def sha256(self, document, key, at):
        value = document.get(key)
        if not isinstance(value, str) or len(value) != 64 or not HEX.issuperset(value):
            self.fail(_field(at, key), "is not a SHA-256 (64 lowercase hex digits)")
        return value


def _field(at, key):
    return "%s.%s" % (at, key) if at else key


def _is_count(value):
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_list_of(value, kind):
    return isinstance(value, list) and all(isinstance(item, kind) for item in value)


def _check_depth(document, where):
    """Refuse documents nested deeper than MAX_DEPTH, without recursion of our own."""
    stack = [(document, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise ArchiveError("%s is nested deeper than %d levels; it is not an airgap.docker bundle manifest." % (where, MAX_DEPTH))
        children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))


def listed_files(manifest: dict | None) -> set[str]:
    """Every file a manifest puts in the bundle besides itself."""
    if not manifest:
        return set()
    files = set()
    for entry in manifest.get("archives") or []:
        files.update(path for path, _size, _digest in files_of(entry))
        files.add(entry["sidecar"]["path"])
    return files


def deltas_to_keep(old_manifest: dict | None, entries: list[dict]) -> list[dict]:
    """Thin archive entries of the old manifest that still stand for a full archive among `entries`
    (same path, same images) and that `entries` do not replace."""
    if not old_manifest:
        return []
    by_path = {e["path"]: e for e in entries}
    kept = []
    for entry in old_manifest.get("archives") or []:
        full = by_path.get(entry.get("delta_of"))
        if entry["path"] in by_path or full is None or full.get("delta_of"):
            continue
        if _identities(entry) == _identities(full):
            kept.append(entry)
    return kept


def _identities(entry):
    """What a thin archive and its full archive must agree on: the same images, with the same tags."""
    return sorted((i.get("config_digest") or "", i.get("fingerprint") or "", tuple(i.get("diff_ids") or []),
                   tuple(sorted(i.get("tags") or []))) for i in entry.get("images") or [])


def stale_files(old_manifest: dict | None, new_manifest: dict | None) -> list[str]:
    """Files an earlier pack wrote that the new manifest no longer lists."""
    return sorted(listed_files(old_manifest) - listed_files(new_manifest))


def manifest_images(manifest: dict) -> list[dict]:
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


def read_sums(bundle_dir: str) -> dict[str, str] | None:
    """SHA256SUMS as {path: digest}, or None when the bundle has none."""
    data = read_document(os.path.join(bundle_dir, SUMS), "checksum file")
    return None if data is None else parse_sums(data)


def check_manifest_line(bundle_dir: str, manifest_bytes: bytes) -> None:
    """Without a signature, SHA256SUMS is what a manifest is checked against: on its raw bytes,
    before anything of it is parsed. Absent SHA256SUMS, there is nothing to check."""
    sums = read_sums(bundle_dir)
    if sums is not None and sums.get(MANIFEST) != sha256_bytes(manifest_bytes):
        raise ChecksumMismatch("%s disagrees with %s for %s; the bundle was altered." % (
            os.path.join(bundle_dir, SUMS), MANIFEST, MANIFEST))


def check_sums_file(bundle_dir: str, manifest: dict, manifest_bytes: bytes) -> None:
    """SHA256SUMS, when present, must agree with the manifest (the signed authority)."""
    sums = read_sums(bundle_dir)
    if sums is None:
        return
    expected = parse_sums(render_sums(manifest, manifest_bytes))
    wrong = sorted(p for p in set(sums) | set(expected) if sums.get(p) != expected.get(p))
    if wrong:
        raise ChecksumMismatch("%s disagrees with %s for %s; the bundle was altered." % (
            os.path.join(bundle_dir, SUMS), MANIFEST, ", ".join(wrong)))


def ensure_directories(bundle_dir: str) -> None:
    """Create the bundle directory and its areas, readable by their owner only when we create them
    (a directory that exists keeps its mode: the operator chose it)."""
    for directory in [bundle_dir] + [os.path.join(bundle_dir, area) for area in sorted(AREAS.values())]:
        try:
            os.mkdir(directory, 0o700)
        except FileExistsError:
            pass
        except FileNotFoundError:
            os.makedirs(directory, 0o700)


def describe(manifest: dict) -> dict:
    """What an operator checks before carrying a bundle in: each archive (kind, size, compression,
    parts), each image it delivers (tags, platform, layer count, size) and the totals."""
    archives, images = [], []
    for entry in manifest.get("archives") or []:
        archives.append({
            "path": entry["path"], "kind": entry["kind"], "size": entry["size"], "sha256": entry["sha256"],
            "compression": entry.get("compression"), "layout": entry.get("layout"),
            "parts": len(entry.get("parts") or []), "delta_of": entry.get("delta_of"),
            "images": sorted(tag for image in entry.get("images") or [] for tag in image.get("tags") or []),
        })
        for image in entry.get("images") or []:
            platform = "/".join(p for p in (image.get("os"), image.get("architecture")) if p) or None
            images.append({
                "tags": image.get("tags") or [], "platform": platform, "layers": len(image.get("diff_ids") or []),
                "omitted_layers": image.get("omitted_layers") or 0, "size": image.get("size"),
                "created": image.get("created"), "config_digest": image.get("config_digest"),
                "archive": entry["path"], "kind": entry["kind"],
            })
    totals = {"archives": len(archives), "images": len(images), "bytes": sum(a["size"] for a in archives),
              "files": sum(max(a["parts"], 1) for a in archives)}
    return {"archives": archives, "images": images, "totals": totals}
