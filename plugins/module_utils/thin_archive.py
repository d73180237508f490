# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Thin image archives: image archives that leave out the bottom layers a receiver already holds.

Both image stores load such an archive when it is written as an OCI layout that also carries
`manifest.json`:
- the classic store reads `manifest.json` and opens a layer's file only when the layer's stack
  (its chain) is not in the engine yet, so absent files of held layers are never looked for;
- the containerd store reads `index.json` and needs a layer blob only when no snapshot of the
  layer's chain exists.
A legacy-layout archive with absent layers fails on the containerd store, so the output is always
an OCI layout, whatever layout the input had. Image configs are copied byte for byte (the image
keeps its config digest); an OCI input's manifests are kept too, a legacy input gets
deterministic OCI manifests with uncompressed layers (digest = diff ID).

Building one takes two passes over local data only: the input tar (from the engine or from a full
archive) streams past once while layer members go to one unnamed temporary file in the archive's
directory, unless they are known to be left out; then the thin tar is written from metadata and
those files. Memory stays flat.

Which layers each image leaves out is decided beforehand, by thin_plan (pure planning); this
file only reads the input and writes the thin archive.
"""

from __future__ import annotations

import tempfile
from typing import Iterable, Iterator, Sequence

from ansible_collections.airgap.docker.plugins.module_utils.archive_layout import (
    OCI,
    manifest_layer_digests,
    parse_layout,
    resolve_member,
    wants_member,
)
from ansible_collections.airgap.docker.plugins.module_utils.errors import ArchiveError, os_error
from ansible_collections.airgap.docker.plugins.module_utils.oci_layout import (
    CONFIG_TYPE,
    LAYER_TYPE,
    MANIFEST_TYPE,
    blob_name,
    canonical_json,
    layout_blocks,
    manifest_descriptor,
    sha256_digest,
)
from ansible_collections.airgap.docker.plugins.module_utils.streaming import CHUNK, write_in_pieces
from ansible_collections.airgap.docker.plugins.module_utils.tarscan import TarScanner


class _SpoolFile:
    """One unnamed temporary file beside the archive holding every spooled layer end to end: one
    descriptor however many layers an image has, and nothing left behind if the process dies."""

    def __init__(self, directory):
        self.directory = directory
        self.file = None
        self.end = 0

    def member(self):
        if self.file is None:
            try:
                self.file = tempfile.TemporaryFile(dir=self.directory)  # noqa: SIM115 - closed by close()
            except OSError as exc:
                raise os_error(exc, self.directory, "creating a temporary file in")
        return _Spool(self, self.end)

    def write(self, chunk):
        try:
            write_in_pieces(self.file, chunk)
        except OSError as exc:
            raise os_error(exc, self.directory, "writing the layers being sorted in")
        self.end += len(chunk)

    def chunks(self, offset, size):
        self.file.flush()
        self.file.seek(offset)
        while size > 0:
            block = self.file.read(min(CHUNK, size))
            if not block:
                raise ArchiveError("A temporary file in %s was cut short while the thin archive was written." % self.directory)
            size -= len(block)
            yield block

    def close(self):
        if self.file is not None:
            self.file.close()
            self.file = None


class _Spool:
    """One layer member's place in the spool file."""

    def __init__(self, spool_file, offset):
        self._spool_file = spool_file
        self.offset = offset
        self.size = 0

    def write(self, chunk):
        self._spool_file.write(chunk)
        self.size += len(chunk)

    def close(self):
        pass  # the member is complete; the spool file stays open for the second pass

    def chunks(self):
        return self._spool_file.chunks(self.offset, self.size)


def _is_layer_member(name):
    return name.endswith("/layer.tar") or name.startswith("blobs/")


class InputReader:
    """The first pass: follows the input tar, keeps its metadata and spools the layers it may need.

    skip_members: members known, before the pass, to hold layers the output leaves out (from the
    input archive's sidecar); they are not spooled. Unknown members are spooled and sorted out
    afterwards, when the input's manifests say which layer each one is.
    """

    def __init__(self, spool_directory: str, skip_members: Iterable[str] = ()):
        self._spool_file = _SpoolFile(spool_directory)
        self._skip = set(skip_members)
        self.spools = {}
        self.scanner = TarScanner(wants_member, stream=self._open)

    def _open(self, name, size):
        if not _is_layer_member(name) or name in self._skip:
            return None
        spool = self.spools[name] = self._spool_file.member()
        return spool

    def feed(self, block: bytes | None) -> None:
        self.scanner.observe(block)

    def images(self) -> tuple:
        """(layout, [ArchiveImage]) of the input read."""
        return parse_layout(self.scanner.members, self.scanner.sizes, self.scanner.links)

    def discard(self) -> None:
        """Close (and so delete) the spooled layers."""
        self._spool_file.close()
        self.spools = {}


class ThinLayout:
    """The second pass: what the thin archive holds, then its tar blocks."""

    def __init__(self, reader: InputReader, layout: str, images: Sequence, omitted: Sequence[int]):
        self._reader = reader
        self._members = reader.scanner.members
        self._sizes = reader.scanner.sizes
        self._links = reader.scanner.links
        self._layout = layout
        self.blobs = {}  # output path -> bytes or _Spool
        self.index = []
        self.docker_manifest = []
        for image, count in zip(images, omitted):
            self._add_image(image, count)

    def _add_image(self, image, omitted):
        if len(image.layers) != len(image.diff_ids):
            raise ArchiveError("The input's manifest lists %d layers for %s but its config %d; it is damaged." % (
                len(image.layers), ", ".join(image.tags) or image.config_digest, len(image.diff_ids)))
        config = self._config_bytes(image)
        layer_digests = self._layer_digests(image)
        manifest = self._manifest_bytes(image, config, layer_digests)
        self.blobs[blob_name(image.config_digest)] = config
        self.blobs[blob_name(sha256_digest(manifest))] = manifest
        for position in range(omitted, len(image.layers)):
            self.blobs[blob_name(layer_digests[position])] = self._layer_data(image, position)
        self.index.extend(manifest_descriptor(manifest, tag) for tag in image.tags or [None])
        self.docker_manifest.append({"Config": blob_name(image.config_digest), "RepoTags": list(image.tags),
                                     "Layers": [blob_name(d) for d in layer_digests]})

    def _config_bytes(self, image):
        hexdigest = image.config_digest.split(":", 1)[1]
        for name in ("blobs/sha256/" + hexdigest, hexdigest + ".json"):
            if name in self._members:
                return self._members[name]
        raise ArchiveError("The input archive has no config for %s." % (", ".join(image.tags) or image.config_digest))

    def _source_manifest(self, image):
        if self._layout == OCI and image.manifest_digest:
            return self._members.get(blob_name(image.manifest_digest))
        return None

    def _layer_digests(self, image):
        """The blob digest of each layer: the input manifest's, or the diff ID for a legacy input
        (its layer.tar files are the uncompressed layers)."""
        source = self._source_manifest(image)
        if source is None:
            return list(image.diff_ids)
        digests = manifest_layer_digests(source, blob_name(image.manifest_digest))
        if len(digests) != len(image.diff_ids) or not all(digests):
            raise ArchiveError("The input's manifest of %s does not list one digest per layer; it is damaged." % (
                ", ".join(image.tags) or image.config_digest))
        return digests

    def _manifest_bytes(self, image, config, layer_digests):
        source = self._source_manifest(image)
        if source is not None:
            return source  # kept as it is: the image keeps its manifest digest
        layers = []
        for position, digest in enumerate(layer_digests):
            path = image.layers[position]
            layers.append({"mediaType": LAYER_TYPE, "digest": digest, "size": self._sizes.get(resolve_member(path, self._links), 0)})
        return canonical_json({"schemaVersion": 2, "mediaType": MANIFEST_TYPE,
                               "config": {"mediaType": CONFIG_TYPE, "digest": image.config_digest, "size": len(config)},
                               "layers": layers})

    def _layer_data(self, image, position):
        spool = self._reader.spools.get(resolve_member(image.layers[position], self._links))
        if spool is None:
            raise ArchiveError("The input lacks layer %d of %s (%s), which the thin archive must carry." % (
                position + 1, ", ".join(image.tags) or image.config_digest, image.diff_ids[position]))
        return spool

    def size_estimate(self) -> int:
        return sum(len(b) if isinstance(b, bytes) else b.size for b in self.blobs.values()) + 64 * 1024

    def blocks(self) -> Iterator[bytes]:
        """The thin archive's tar, in oci_layout's one member order with its fixed metadata."""
        return layout_blocks(self.index, self.docker_manifest, self.blobs)
