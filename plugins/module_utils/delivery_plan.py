# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Which file each host gets: the full archive, or a thin one that leaves out the layers it holds.

Pure decisions over the records `image_info` returns for a bundle's images (each with the
`archive` file it comes from, `delta_of` naming the full archive a thin one stands for, the
archive's `omitted_layers`, and the host's `state` and `held_layers`).
"""

from __future__ import annotations

import re

from ansible_collections.airgap.docker.plugins.module_utils.constants import KIND_IMAGES
from ansible_collections.airgap.docker.plugins.module_utils.layer_inventory import LayerInventory
from ansible_collections.airgap.docker.plugins.module_utils.thin_plan import plan_omissions

_SUFFIX = re.compile(r"(\.tar(?:\.gz|\.zst)?)$")


def thin_name(full_path: str, omitted: int) -> str:
    """`images/app_2.tar.zst`, 3 -> `images/app_2+delta3.tar.zst` (`+` never occurs in the role's names)."""
    if not _SUFFIX.search(full_path):
        return "%s+delta%d" % (full_path, omitted)
    return _SUFFIX.sub(lambda m: "+delta%d%s" % (omitted, m.group(1)), full_path)


def logical_archive(record: dict) -> str:
    return record.get("delta_of") or record["archive"]


def _fits(records):
    """A file fits a host when the host holds every layer it leaves out."""
    return all(r.get("state") == "present" or (r.get("omitted_layers") or 0) <= (r.get("held_layers") or 0) for r in records)


def plan(records: list[dict], delta: bool = True, build: bool = False) -> dict:
    """What one host needs: {"deliveries": [...], "refused": [...]}.

    A delivery is {logical, file, omitted, full, build}: the full archive the host needs (logical),
    the file it gets and how many bottom layers that file leaves out. With build, a thin file that
    does not exist yet may be asked for (build=True): one that leaves out the bottom layers the host
    holds of the archive's single image (fewer when one repeats higher up, see _thin_cut). Refused: the archives the host lacks and no file of which fits.
    """
    by_logical = {}
    for record in records:
        by_logical.setdefault(logical_archive(record), {}).setdefault(record["archive"], []).append(record)
    deliveries, refused = [], []
    for logical in sorted(by_logical):
        files = by_logical[logical]
        if all(r.get("state") == "present" for rs in files.values() for r in rs):
            continue
        fitting = sorted(((sum(r.get("omitted_layers") or 0 for r in rs), path) for path, rs in files.items()
                          if _fits(rs) and (delta or path == logical)), reverse=True)
        chosen = {"logical": logical, "file": None, "omitted": 0, "full": logical in files, "build": False}
        if fitting:
            chosen.update(omitted=fitting[0][0], file=fitting[0][1])
        images = files.get(logical) or []
        if build and delta and len(images) == 1 and images[0].get("kind", KIND_IMAGES) == KIND_IMAGES:
            cut = _thin_cut(logical, images[0], images[0].get("held_layers") or 0)
            if cut["omitted"] > chosen["omitted"]:
                chosen.update(build=True, **cut)
        if chosen["file"] is None:
            needs = max((r.get("omitted_layers") or 0) for rs in files.values() for r in rs)
            holds = min((r.get("held_layers") or 0) for rs in files.values() for r in rs)
            refused.append({"logical": logical, "tags": sorted({t for rs in files.values() for r in rs for t in r.get("tags") or []}),
                            "needs": needs, "holds": holds,
                            # Why no file fits: the host lacks layers, or only thin files exist and delta is off.
                            "reason": "layers" if holds < needs else "delta off"})
        else:
            deliveries.append(chosen)
    return {"deliveries": deliveries, "refused": refused}


def _thin_cut(logical, image, held):
    """What image_archive needs to cut a thin archive out of the full one, for a receiver holding the
    bottom `held` layers. It may leave out fewer (a layer repeated higher up stays in), and is named
    after what it leaves out, so that the same cut is recognised on the next run."""
    diff_ids = list(image.get("diff_ids") or [])
    omitted = plan_omissions([diff_ids], diff_ids[:held])[0] if held else 0
    return {"file": thin_name(logical, omitted), "omitted": omitted, "exclude_layers": diff_ids[:omitted],
            "images": list(image.get("tags") or []) or [image.get("config_digest")]}


def baseline_plan(records: list[dict], chains) -> list[dict]:
    """For a bundle packed against a baseline (the layer stacks of the images a site is known to hold):
    per archive, the file to pack: a thin archive leaving out what the baseline holds, else the full one.

    records: the bundle's image records (each with `archive` and `kind`). Returns one item per
    archive: {logical, file, omitted, build, exclude_layers, images}.
    """
    inventory = LayerInventory([{"diff_ids": list(chain)} for chain in chains or []])
    by_archive = {}
    for record in records:
        by_archive.setdefault(record["archive"], []).append(record)
    items = []
    for logical in sorted(by_archive):
        images = by_archive[logical]
        item = {"logical": logical, "file": logical, "omitted": 0, "build": False}
        if len(images) == 1 and images[0].get("kind", KIND_IMAGES) == KIND_IMAGES:
            cut = _thin_cut(logical, images[0], inventory.held_run(list(images[0].get("diff_ids") or [])))
            if cut["omitted"]:
                item.update(build=True, **cut)
        items.append(item)
    return items
