# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Decisions for image archives: is an archive up to date, what must a load do.

Pure functions over plain data; the engine is consulted through a small lookup object so the
decisions can be unit-tested without one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ansible_collections.airgap.docker.plugins.module_utils.errors import ImageNotFound, InvalidInput
from ansible_collections.airgap.docker.plugins.module_utils.identity import fingerprint_from_inspect, normalize_created
from ansible_collections.airgap.docker.plugins.module_utils.references import (
    familiar_repo,
    full_id,
    is_digest,
    looks_like_id,
    normalize_tag_reference,
    split_reference,
)


@dataclass
class WantedImage:
    """An engine image a save must put in the archive, with the tags it must carry."""

    id: str
    fingerprint: str
    tags: list = field(default_factory=list)
    size: int = 0
    requested_as: list = field(default_factory=list)
    diff_ids: list = field(default_factory=list)
    omitted: int = 0  # bottom layers a thin archive leaves out
    archive_image: object = None  # the ArchiveImage, when taken from an archive


def layers_of(inspect):
    return list((inspect.get("RootFS") or {}).get("Layers") or [])


def engine_tags(inspect):
    """The image's tags in familiar form (`docker.io/library/x:1` -> `x:1`)."""
    tags = []
    for ref in inspect.get("RepoTags") or []:
        repo, tag = split_reference(ref)[:2]
        if tag and repo != "<none>":
            tags.append("%s:%s" % (familiar_repo(repo), tag))
    return tags


def request_is_tag(request, inspect):
    """A request names a tag if, normalised, it is one of the image's tags; else it is an ID."""
    if is_digest(request):
        return None
    try:
        tag = normalize_tag_reference(request)
    except InvalidInput:
        return None
    return tag if tag in engine_tags(inspect) else None


def wanted_images(requests, inspect, platform=None):
    """Group requested names/IDs by engine image. inspect(ref) returns the engine's view (of
    `platform`, when one is asked for) or None.

    Raises ImageNotFound naming every missing image at once.
    """
    by_id, missing = {}, []
    for request in requests:
        info = inspect(request)
        if info is None and looks_like_id(request) and not is_digest(request):
            info = inspect(full_id(request)) if len(request) == 64 else None
        if info is None:
            missing.append(request)
            continue
        wanted = by_id.get(info["Id"])
        if wanted is None:
            wanted = by_id[info["Id"]] = WantedImage(info["Id"], fingerprint_from_inspect(info), size=info.get("Size") or 0,
                                                     diff_ids=layers_of(info))
        wanted.requested_as.append(request)
        tag = request_is_tag(request, info)
        if tag and tag not in wanted.tags:
            wanted.tags.append(tag)
    if missing:
        raise ImageNotFound("Image%s not found in the engine%s: %s." % (
            "s" if len(missing) > 1 else "", " for platform %s" % platform if platform else "", ", ".join(missing)))
    for wanted in by_id.values():
        wanted.tags.sort()
    return sorted(by_id.values(), key=lambda w: (w.tags, w.id))


def wanted_from_archive(requests, images):
    """Like wanted_images, for images taken from an archive instead of the engine: each request
    names a tag or an ID of one of the archive's images. Raises ImageNotFound for the others."""
    check_requested_in_archive(requests, images)
    by_digest = {}
    for request in requests:
        tag, image = _archive_image_for(request, images)
        wanted = by_digest.get(image.config_digest)
        if wanted is None:
            wanted = by_digest[image.config_digest] = WantedImage(image.config_digest, image.fingerprint, size=image.size,
                                                                  diff_ids=list(image.diff_ids), archive_image=image)
        wanted.requested_as.append(request)
        if tag and tag not in wanted.tags:
            wanted.tags.append(tag)
    for wanted in by_digest.values():
        wanted.tags.sort()
    return sorted(by_digest.values(), key=lambda w: (w.tags, w.id))


def _archive_image_for(request, images):
    """(tag or None, ArchiveImage) a request names: a tag first (`deadbeefcafe` may be a repository), else an ID."""
    try:
        tag = normalize_tag_reference(request)
    except InvalidInput:
        tag = None
    image = next((i for i in images if tag and tag in i.tags), None)
    if image is not None:
        return tag, image
    wanted = full_id(request)
    return None, next(i for i in images if any(d.startswith(wanted) for d in i.engine_ids()))


def archive_summary(images):
    """A comparable, printable form of an archive's content: sorted (tags, identity) pairs."""
    return sorted((tuple(sorted(i["tags"])), i["fingerprint"]) for i in images)


def save_decision(wanted, recorded, recorded_compression, compression, recorded_platform=None, platform=None):
    """(up_to_date, reason) for a save, comparing what is wanted with what the archive holds.

    `recorded` lists the archive's images as dicts with `tags`, `fingerprint` and, where the
    sidecar knows it, the engine `id`.
    """
    if recorded is None:
        return False, "the archive does not exist"
    if recorded_compression != compression:
        return False, "the archive is compressed with %s, %s was requested" % (recorded_compression, compression)
    if (recorded_platform or None) != (platform or None):
        return False, "the archive was saved for platform %s, %s was requested" % (recorded_platform or "default", platform or "default")
    remaining = list(recorded)
    for want in wanted:
        match = next((r for r in remaining if _same_image(want, r) and sorted(r.get("tags") or []) == want.tags), None)
        if match is None:
            label = ", ".join(want.tags) or want.id
            holds = next((r for r in remaining if _same_image(want, r)), None)
            if holds is not None:
                return False, "the archive holds %s with tags %s, not %s" % (want.id[:19], sorted(holds.get("tags") or []) or "none", want.tags or "none")
            return False, "%s in the engine is not the image in the archive" % label
        recorded_omitted = match.get("omitted_layers") or 0
        if recorded_omitted != want.omitted:
            return False, "the archive leaves out %d bottom layer(s) of %s, %d are to be left out" % (
                recorded_omitted, ", ".join(want.tags) or want.id[:19], want.omitted)
        remaining.remove(match)
    if remaining:
        extra = ", ".join(", ".join(r.get("tags") or []) or r.get("config_digest", "?") for r in remaining)
        return False, "the archive also holds images that were not requested (%s)" % extra
    return True, "the archive already holds exactly the requested images"


def _same_image(want, recorded):
    if recorded.get("engine_id") and recorded["engine_id"] == want.id:
        return True
    if want.id in (recorded.get("config_digest"), recorded.get("manifest_digest"), recorded.get("index_digest")):
        return True
    return recorded.get("fingerprint") == want.fingerprint


@dataclass
class LoadStep:
    """What a load must do for one archive image."""

    image: object  # ArchiveImage
    engine_id: str = None  # the image's ID in the engine, when it is there
    missing_tags: list = field(default_factory=list)  # tags absent or pointing elsewhere
    tags_before: dict = field(default_factory=dict)  # tag -> engine ID before the run (None: absent)

    @property
    def needs_load(self):
        return self.engine_id is None

    @property
    def needs_retag(self):
        return self.engine_id is not None and bool(self.missing_tags)


class EngineLookup:
    """Finds archive images in an engine by identity; caches inspect calls for one run."""

    def __init__(self, inspect, list_images):
        self._inspect = inspect
        self._list_images = list_images
        self._cache = {}
        self._listing = None

    def inspect(self, ref):
        if ref not in self._cache:
            self._cache[ref] = self._inspect(ref)
        return self._cache[ref]

    def forget(self):
        self._cache.clear()
        self._listing = None

    def find(self, image):
        """The engine's view of the archive image, or None when the engine does not hold it."""
        for engine_id in image.engine_ids():
            info = self.inspect(engine_id)
            if info is not None and (info["Id"] == engine_id or fingerprint_from_inspect(info) == image.fingerprint):
                return info
        for tag in image.tags:
            info = self.inspect(tag)
            if info is not None and fingerprint_from_inspect(info) == image.fingerprint:
                return info
        return self._find_untagged(image)

    def _find_untagged(self, image):
        # An image loaded through a synthesized manifest (containerd store) may be known by an
        # ID no archive records; its creation time narrows the listing to a few candidates.
        created = normalize_created(image.created).split(".")[0]
        if not created:
            return None
        if self._listing is None:
            self._listing = self._list_images()
        for entry in self._listing:
            if str(entry.get("Created")) == created:
                info = self.inspect(entry["Id"])
                if info is not None and fingerprint_from_inspect(info) == image.fingerprint:
                    return info
        return None


def load_steps(images, lookup):
    """A LoadStep for every archive image."""
    steps = []
    for image in images:
        info = lookup.find(image)
        step = LoadStep(image, engine_id=info["Id"] if info else None)
        for tag in image.tags:
            current = lookup.inspect(tag)
            step.tags_before[tag] = current["Id"] if current else None
            if info is None or current is None or current["Id"] != info["Id"]:
                step.missing_tags.append(tag)
        steps.append(step)
    return steps


def check_requested_in_archive(requested, images):
    """Every name/ID in `requested` must be in the archive; raise ImageNotFound otherwise."""
    missing = []
    for request in requested:
        if looks_like_id(request):
            wanted = full_id(request)
            if any(d.startswith(wanted) for i in images for d in i.engine_ids()):
                continue
        try:
            tag = normalize_tag_reference(request)
        except InvalidInput:
            tag = None
        if tag and any(tag in i.tags for i in images):
            continue
        missing.append(request)
    if missing:
        held = sorted({t for i in images for t in i.tags}) or ["untagged images only"]
        raise ImageNotFound("Not in the archive: %s (it holds %s)." % (", ".join(missing), ", ".join(held)))
