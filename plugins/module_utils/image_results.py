# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What image_archive returns about images: the images[] entries, the diff's maps, the load message."""

from __future__ import annotations

from typing import Iterable

from ansible_collections.airgap.docker.plugins.module_utils.archive_layout import ArchiveImage


def image_result(engine_id: str | None, tags: list, config_digest: str | None, manifest_digest: str | None,
                 fingerprint: str | None, size: int, diff_ids: list, omitted_layers: int) -> dict:
    """One entry of the module's `images` result."""
    return {"id": engine_id, "tags": tags, "config_digest": config_digest, "manifest_digest": manifest_digest,
            "fingerprint": fingerprint, "size": size, "diff_ids": diff_ids, "omitted_layers": omitted_layers}


def records_result(records: Iterable[dict] | None) -> list[dict]:
    """The `images` result of sidecar-shaped image records (an archive as recorded or written)."""
    return [image_result(r.get("engine_id"), r.get("tags") or [], r.get("config_digest"), r.get("manifest_digest"),
                         r.get("fingerprint"), r.get("size") or 0, r.get("diff_ids") or [], r.get("omitted_layers") or 0)
            for r in records or []]


def wanted_result(wanted: Iterable) -> list[dict]:
    """The `images` result of the images a save would write (image_plans.WantedImage)."""
    result = []
    for want in wanted:
        image = want.archive_image
        result.append(image_result(want.id, want.tags, image.config_digest if image else None,
                                   image.manifest_digest if image else None, want.fingerprint, want.size, want.diff_ids,
                                   want.omitted))
    return result


def steps_result(steps: Iterable) -> list[dict]:
    """The `images` result of a load's steps (image_plans.LoadStep)."""
    result = []
    for step in steps:
        image = step.image if isinstance(step.image, ArchiveImage) else ArchiveImage.from_dict(step.image)
        result.append(image_result(step.engine_id, image.tags, image.config_digest, image.manifest_digest, image.fingerprint,
                                   image.size, image.diff_ids, image.omitted_layers))
    return result


def tag_map(images: Iterable[dict] | None) -> dict:
    """For the diff: per tag, the image it points to."""
    if images is None:
        return {}
    mapping = {}
    for image in images:
        ident = image.get("engine_id") or image.get("config_digest")
        for tag in image.get("tags") or ["<untagged>"]:
            mapping[tag if tag != "<untagged>" else "<untagged %s>" % (ident or "")[:19]] = ident
    return mapping


def omitted_map(images: Iterable[dict] | None) -> dict:
    """For the diff: per tag, how many bottom layers the archive leaves out (thin archives only)."""
    return {tag: image.get("omitted_layers") for image in images or [] for tag in image.get("tags") or []
            if image.get("omitted_layers")}


def save_diff(recorded: list | None, wanted: list) -> tuple[dict, dict]:
    """(before, after) of a save: the archive's tags and omitted layers as recorded, and as wanted."""
    return ({"images": tag_map(recorded), "omitted_layers": omitted_map(recorded)},
            {"images": tag_map([{"tags": w.tags, "engine_id": w.id} for w in wanted]),
             "omitted_layers": omitted_map([{"tags": w.tags, "omitted_layers": w.omitted} for w in wanted])})


def load_diff(steps: list) -> tuple[dict, dict]:
    """(before, after) of a load: where each of the archive's tags points."""
    return ({"tags": {tag: before for s in steps for tag, before in s.tags_before.items()}},
            {"tags": {tag: (s.engine_id or s.image.manifest_digest or s.image.config_digest)
                      for s in steps for tag in s.image.tags}})


def load_message(needs_load: list, retags: list, force: bool, done: bool) -> str:
    """What a load did (done) or would do: load the archive and why, or re-tag."""
    if needs_load:
        if force and all(s.engine_id for s in needs_load):
            why = "force is set"
        else:
            why = "not in the engine: " + "; ".join(", ".join(s.image.tags) or s.image.config_digest[:19]
                                                    for s in needs_load if s.needs_load)
        return "%s the archive (%s)" % ("loaded" if done else "load", why)
    return "%s %s" % ("re-tagged" if done else "re-tag", ", ".join(tag for tag, engine_id in retags))


def info_result(images: Iterable) -> list[dict]:
    """The `images` result of state=inspected: what the archive says of each image, no engine involved."""
    result = []
    for image in images:
        result.append({"tags": image.tags, "config_digest": image.config_digest, "manifest_digest": image.manifest_digest,
                       "index_digest": image.index_digest, "fingerprint": image.fingerprint, "created": image.created,
                       "os": image.os, "architecture": image.architecture,
                       "platform": "%s/%s" % (image.os, image.architecture) if image.os and image.architecture else None,
                       "layers": len(image.diff_ids), "omitted_layers": image.omitted_layers, "size": image.size,
                       "diff_ids": image.diff_ids})
    return result
