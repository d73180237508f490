# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Image archives: save from the engine, load into it, learn what an archive holds.

The tar is followed while it streams (TarScanner), so a save learns the archive's images
without a second pass and a load notices a truncated archive before the engine does.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field, replace

from ansible_collections.airgap.docker.plugins.module_utils import sidecar
from ansible_collections.airgap.docker.plugins.module_utils.archive_layout import parse_layout, verify_members, wants_member
from ansible_collections.airgap.docker.plugins.module_utils.archive_stream import (
    read_archive,
    sniff_compression,
    stream_into_engine,
    until_end_of_archive,
    write_archive,
)
from ansible_collections.airgap.docker.plugins.module_utils.errors import ArchiveError, ChecksumMismatch, EngineError
from ansible_collections.airgap.docker.plugins.module_utils.image_plans import load_steps
from ansible_collections.airgap.docker.plugins.module_utils.podman_names import docker_archive_view
from ansible_collections.airgap.docker.plugins.module_utils.streaming import prefetch
from ansible_collections.airgap.docker.plugins.module_utils.tarscan import TarScanner
from ansible_collections.airgap.docker.plugins.module_utils.thin_archive import InputReader, ThinLayout


@dataclass
class ArchiveContent:
    """What an archive holds and its file facts."""

    compression: str
    layout: str
    images: list
    size: int = 0
    sha256: str = None
    tar_size: int = 0
    stats: dict = field(default_factory=dict)
    engine: dict = field(default_factory=dict)  # the engine that wrote it, as its sidecar records
    # True when the images were read from the archive itself (or from what this host verified
    # before), False when they are a sidecar's claims, which may plan a load but decide nothing else.
    verified: bool = False
    file_stat: os.stat_result = None  # the file as read, when it did not change while it was read
    parts: list = field(default_factory=list)  # [{"name", "size", "sha256"}] of a split archive
    # Of an archive this run wrote: compression_levels and compression_adaptive (compression.level_facts).
    levels: dict = field(default_factory=dict)

    def facts(self, path):
        facts = {"path": path, "size": self.size, "sha256": self.sha256, "compression": self.compression, "layout": self.layout}
        if self.parts:
            facts["parts"] = self.parts
        facts.update(self.levels)
        return facts

    def document(self):
        """A sidecar-shaped description of this content, as the verified memo keeps it."""
        archive = {"size": self.size, "sha256": self.sha256, "compression": self.compression, "layout": self.layout,
                   "tar_size": self.tar_size}
        if self.parts:
            archive["parts"] = self.parts
        archive.update(self.levels)
        return sidecar.build(archive, self.images, self.engine)


class VerifyingScanner(TarScanner):
    """A TarScanner that digests every member, and checks the archive against its own digests."""

    def __init__(self):
        super().__init__(wants_member, digests=True)

    def verified_layout(self):
        """(layout, images, bytes verified): every blob against its name, every layer against its
        diff ID, every config against its digest. Raises ArchiveError on the first mismatch."""
        layout, images = parse_layout(self.members, self.sizes, self.links)
        verified = verify_members(layout, images, self.digests, self.heads, self.sizes, self.links)
        return layout, images, verified


def scan_archive(path: str) -> ArchiveContent:
    """Read an archive once, streaming, to learn its layout, images and sha256.

    Used for archives without a sidecar (for example written by `docker save`).
    """
    kind = sniff_compression(path)
    scanner = VerifyingScanner()
    found = {}

    def observe(block):
        scanner.observe(block)
        if block is None:
            # Checked while the file is open: a failure of a split archive can name the damaged part.
            found["layout"], found["images"], found["verified"] = scanner.verified_layout()

    transfer = read_archive(path, observe)
    return ArchiveContent(kind, found["layout"], found["images"], size=transfer.archive_size, sha256=transfer.archive_sha256,
                          tar_size=transfer.tar_size, verified=True, file_stat=transfer.file_stat, parts=transfer.parts,
                          stats={"archive_bytes_read": transfer.archive_size, "transfer_seconds": transfer.seconds,
                                 "bytes_verified": found["verified"]})


def save_to_temp(engine, names, path, kind, level, platform, estimated_size, split_size=None):
    """Stream `docker save` of names into a temporary file beside path (parts beyond split_size).

    Returns (SplitTarget, ArchiveContent); the caller commits or aborts the files.
    """
    first_byte = {}

    def noting_first_byte(blocks):
        for block in blocks:
            first_byte.setdefault("at", time.monotonic())
            yield block

    requested = time.monotonic()
    try:
        target, content = write_to_temp(noting_first_byte(engine.save_stream(names, platform)), path, kind, level,
                                        estimated_size, split_size)
    except ArchiveError as exc:
        hint = (" On the containerd image store, `docker save` does this for an image whose bottom layers arrived in a thin "
                "archive from another source: save it on an engine that holds it in full." if engine.storage() == "containerd" else "")
        raise EngineError("The engine at %s gave an incomplete or damaged archive of %s (%s) Nothing was written.%s"
                          % (engine.host, ", ".join(names), exc.msg, hint))
    content.stats["bytes_from_engine"] = content.tar_size
    # The classic image store builds the whole export in a temporary directory before it sends
    # anything: on a 1 GiB image, most of a save's time. This tells it apart from the transfer.
    content.stats["engine_wait_seconds"] = round(first_byte.get("at", requested) - requested, 3)
    return target, content


def write_to_temp(blocks, path, kind, level, estimated_size, split_size=None):
    """Compress the image archive tar `blocks` into a temporary file beside path (parts beyond
    split_size), learning its images on the way. Returns (SplitTarget, ArchiveContent); the
    caller commits or aborts."""
    scanner = TarScanner(wants_member)
    target, transfer = write_archive(blocks, path, kind, level, estimated_size, scanner.observe, split_size=split_size)
    try:
        layout, images = parse_layout(scanner.members, scanner.sizes, scanner.links)
    except BaseException:
        target.abort()
        raise
    content = ArchiveContent(kind, layout, images, size=transfer.archive_size, sha256=transfer.archive_sha256, tar_size=transfer.tar_size,
                             parts=transfer.parts, levels=transfer.levels,
                             stats={"archive_bytes_written": transfer.archive_size, "transfer_seconds": transfer.seconds})
    return target, content


def save_thin_to_temp(fill, path, kind, level, wanted, skip_members=(), split_size=None):
    """Write a thin archive of `wanted` (WantedImage, each with the number of bottom layers it
    leaves out) into a temporary file beside path (parts beyond split_size).

    fill(reader) streams the input tar (engine save or full archive) into reader.feed and returns
    its stats. Returns (SplitTarget, ArchiveContent); the caller commits or aborts the files.
    """
    reader = InputReader(os.path.dirname(os.path.abspath(path)), skip_members)
    try:
        stats = fill(reader)
        layout, images = reader.images()
        chosen = [_input_image(want, images) for want in wanted]
        thin = ThinLayout(reader, layout, chosen, [want.omitted for want in wanted])
        target, content = write_to_temp(thin.blocks(), path, kind, level, thin.size_estimate(), split_size)
    finally:
        reader.discard()
    content.stats.update(stats)
    return target, content


def engine_input(engine, names, platform):
    """A fill for save_thin_to_temp: `docker save` of names."""
    def fill(reader):
        received = 0
        for block in prefetch(engine.save_stream(names, platform)):
            received += len(block)
            reader.feed(block)
        reader.feed(None)
        return {"bytes_from_engine": received}
    return fill


def archive_input(path, expected_sha256):
    """A fill for save_thin_to_temp: a full archive file, which must match expected_sha256."""
    def fill(reader):
        transfer = read_archive(path, reader.feed)
        if expected_sha256 and transfer.archive_sha256 != expected_sha256:
            raise ChecksumMismatch("%s does not match its recorded checksum (sha256 %s, expected %s); nothing was written."
                                   % (path, transfer.archive_sha256, expected_sha256))
        return {"archive_bytes_read": transfer.archive_size}
    return fill


def _input_image(want, images):
    # By fingerprint first: it includes the platform, while every platform of a multi-platform
    # image shares the index digest that is the image's ID on the containerd store.
    match = next((i for i in images if want.fingerprint and i.fingerprint == want.fingerprint), None)
    match = match or next((i for i in images if want.id in i.engine_ids()), None)
    if match is not None:
        unheld = [tag for tag in want.tags if tag not in match.tags]
        if unheld:
            # The plan came from the input's sidecar; the tags written must be the archive's own.
            raise ArchiveError("The input archive does not tag %s as %s, although its sidecar says so; nothing was "
                               "written." % (want.id[:19], ", ".join(unheld)))
        return replace(match, tags=list(want.tags))
    raise ArchiveError("The input archive does not hold %s as expected; nothing was written." % (", ".join(want.tags) or want.id))


def load_archive(engine, path, kind, expected_sha256=None, platform=None, claims=None):
    """Stream an archive into the engine, decompressing on the way, and verify it on the way.

    Before the engine receives the tar's end-of-archive marker, the tar must be complete, every
    member must match its digest (verify_members), the file must match expected_sha256 when
    given, and the images must be what `claims` (the ArchiveImages the load was planned with)
    says; otherwise the upload is aborted and nothing is loaded.
    Podman gets the archive's Docker view when it has one (podman_names.docker_archive_view).
    Returns (ArchiveContent verified from the stream, stats).
    """
    scanner = VerifyingScanner()
    found = {}

    def body(blocks, hashing):
        def verify():
            scanner.finish()
            if expected_sha256 and hashing.sha256.hexdigest() != expected_sha256:
                raise ChecksumMismatch("%s does not match its recorded checksum (sha256 %s, expected %s); nothing was loaded."
                                       % (path, hashing.sha256.hexdigest(), expected_sha256))
            found["layout"], found["images"], found["verified"] = scanner.verified_layout()
            check_platform_held(found["images"], platform)
            if claims is not None:
                problem = sidecar.disagreement(claims, found["images"])
                if problem:
                    raise ArchiveError("The sidecar %s does not describe the archive (%s); remove it or copy it again "
                                       "with the archive." % (sidecar.sidecar_path(path), problem))
        verified = until_end_of_archive(blocks, scanner, verify)
        if not engine.podman:
            return verified
        return docker_archive_view(verified, lambda: not any(image.omitted_layers for image in found["images"]))

    _messages, stats, file_stat = stream_into_engine(engine, path, kind, body, "loaded", platform)
    stats["bytes_verified"] = found["verified"]
    content = ArchiveContent(kind, found["layout"], found["images"], size=stats["archive_bytes_read"],
                             sha256=stats.pop("archive_sha256"), tar_size=stats["bytes_to_engine"], verified=True, file_stat=file_stat,
                             parts=stats.pop("parts"))
    return content, stats


def check_platform_held(images: list, platform: str | None) -> None:
    """Raise ArchiveError unless every image of the archive (each tag, or each untagged image)
    has a manifest for platform's os and architecture (archives record no variant to compare).
    Checked before the engine gets the end of the tar: Docker 28 tags an image that lacks the
    platform and only then refuses the load."""
    if not platform:
        return
    os_name, architecture = platform.split("/")[:2]
    groups = {}
    for image in images:
        held = image.os == os_name and image.architecture == architecture
        for key in image.tags or [image.index_digest or image.config_digest]:
            groups[key] = groups.get(key, False) or held
    lacking = sorted(key for key, held in groups.items() if not held)
    if lacking:
        raise ArchiveError("The archive holds no %s image of %s" % (platform, ", ".join(lacking)))


def settle_loaded_images(engine, images, lookup):
    """After a load or re-tag, every image must be in the engine with all its tags.

    Tags the load did not set are set here. Returns (steps, retagged); raises EngineError when
    an image is missing, which the containerd store can do while answering the load with
    success (it logs 'Error unpacking image').
    """
    lookup.forget()
    steps = load_steps(images, lookup)
    retagged = False
    for step in steps:
        if step.needs_load:
            raise EngineError(
                "The engine at %s reported success but does not hold %s afterwards; check its log "
                "(the containerd image store logs 'Error unpacking image')." % (
                    engine.host, ", ".join(step.image.tags) or step.image.config_digest))
        for tag in step.missing_tags:
            engine.tag(step.engine_id, tag)
            retagged = True
    if retagged:
        lookup.forget()
        steps = load_steps(images, lookup)
        broken = [t for s in steps for t in s.missing_tags]
        if broken:
            raise EngineError("Tags %s do not point to the archive's images after re-tagging." % ", ".join(broken))
    return steps, retagged
