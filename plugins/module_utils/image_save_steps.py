# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The steps of an image save below the module: requests, the input archive, writing, the archive written."""

from __future__ import annotations

import os

from ansible_collections.airgap.docker.plugins.module_utils import compression, image_transfer
from ansible_collections.airgap.docker.plugins.module_utils.disk_space import check_free_space
from ansible_collections.airgap.docker.plugins.module_utils.errors import ArchiveError, EngineError
from ansible_collections.airgap.docker.plugins.module_utils.references import looks_like_id, normalize_tag_reference
from ansible_collections.airgap.docker.plugins.module_utils.sidecar import parts_of
from ansible_collections.airgap.docker.plugins.module_utils.thin_plan import skippable_members


def normalize_request(request: str) -> str:
    """An image request as the archive records it: an ID as given, a name as repo:tag."""
    request = request.strip()
    if looks_like_id(request):
        return request
    return normalize_tag_reference(request)


def check_input_carries(want, from_archive: str) -> None:
    """An input archive that is itself thin cannot give layers it left out (known from its sidecar)."""
    image = want.archive_image
    if image is not None and image.omitted_layers > want.omitted:
        raise ArchiveError(
            "%s is itself a thin archive: it leaves out the bottom %d layer(s) of %s, but the archive to write must carry "
            "all but %d of them. Cut it from the full archive instead; nothing was written."
            % (from_archive, image.omitted_layers, ", ".join(want.tags) or want.id, want.omitted))


def recorded_state(document: dict, path: str, platform: str | None) -> tuple[list, str | None, str | None, dict]:
    """(images as dicts, compression, platform, archive facts) of an archive as this host wrote or read it.

    An archive this host read rather than wrote records no request: its images' fingerprints
    (which hold the platform) decide alone, and `platform` (the option) stands in.
    """
    archive = document.get("archive") or {}
    facts = {k: archive.get(k) for k in ("size", "sha256", "compression", "layout")}
    facts["path"] = path
    if parts_of(archive):
        facts["parts"] = parts_of(archive)
    facts.update(compression.recorded_level_facts(archive))
    request = document.get("request") or {}
    platform = request.get("platform", platform)
    return document.get("images") or [], archive.get("compression"), platform, facts


def match_saved(wanted: list, archived: list) -> list[dict]:
    """Pair each wanted engine image with its entry in the new archive (sanity check); their records."""
    records = []
    for want in wanted:
        match = next((a for a in archived if want.fingerprint and a.fingerprint == want.fingerprint), None)
        match = match or next((a for a in archived if want.id in a.engine_ids()), None)
        if match is None or sorted(match.tags) != want.tags:
            raise EngineError("The archive written does not hold %s as requested; the previous archive was kept."
                              % (", ".join(want.tags) or want.id))
        if match.omitted_layers != want.omitted:
            # The containerd store can hold an image whose bottom layers arrived in a thin archive
            # as snapshots only; its save then lacks their data.
            raise EngineError(
                "The archive written lacks the data of %d bottom layer(s) of %s that it should carry: the engine did "
                "not give them (on the containerd image store, an image whose layers arrived in a thin archive may "
                "lack their data). The previous archive was kept; save the image on an engine that holds it in full."
                % (match.omitted_layers - want.omitted, ", ".join(want.tags) or want.id))
        record = match.to_dict()
        record["engine_id"] = want.id
        records.append(record)
    return records


def write_to_temp(engine, wanted: list, path: str, kind: str, level: int | None, platform: str | None, source,
                  from_archive: str | None, split_size: int | None = None) -> tuple[object, object, bool]:
    """(SplitTarget, ArchiveContent, thin) of wanted written into a temporary file beside path, or
    into temporary parts when the archive is larger than split_size.

    A thin archive (OCI layout) when a layer is left out or the images come from the input
    archive `source` (ArchiveContent of from_archive); else what `docker save` gives.
    """
    if source is None and not any(w.omitted for w in wanted):
        names = [name for want in wanted for name in (want.tags or [want.id])]
        estimate = sum(w.size for w in wanted)
        target, content = image_transfer.save_to_temp(engine, names, path, kind, level, platform, estimate, split_size)
        return target, content, False
    if source is None:
        names = [name for want in wanted for name in (want.tags or [want.id])]
        fill, skip = image_transfer.engine_input(engine, names, platform), set()
    else:
        fill = image_transfer.archive_input(from_archive, source.sha256)
        skip = skippable_members([w.archive_image for w in wanted], [w.omitted for w in wanted])
    if not skip:
        # Every layer passes through a temporary file beside the archive until the input's
        # manifests say which ones to leave out.
        check_free_space(os.path.dirname(os.path.abspath(path)), sum(w.size for w in wanted),
                         "the layers of the images while they are sorted")
    target, content = image_transfer.save_thin_to_temp(fill, path, kind, level, wanted, skip, split_size)
    return target, content, True
