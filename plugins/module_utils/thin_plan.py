# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Thin archives, planned: which bottom layers of each image an archive leaves out for a receiver,
and which members of an input need not be read for it. Pure decisions, no I/O: used by the modules
that write thin archives and by the controller-side delivery plan alike.
"""

from __future__ import annotations

from typing import Iterable, Sequence


def plan_omissions(diff_id_lists: Sequence[Sequence[str]], held: Iterable[str] | None) -> list[int]:
    """How many bottom layers of each image an archive leaves out, for a receiver holding `held`.

    An image leaves out the longest bottom run of its layers that the receiver holds, up to the
    first layer the archive must carry anyway, higher up in the same image or for another image
    (its data is then in the archive, and no image depends on the receiver for it).
    """
    held = set(held or ())
    counts = [_held_run(diff_ids, held) for diff_ids in diff_id_lists]
    while True:
        carried = {d for diff_ids, count in zip(diff_id_lists, counts) for d in diff_ids[count:]}
        narrowed = [_held_run(diff_ids, held - carried) for diff_ids in diff_id_lists]
        if narrowed == counts:
            return counts
        counts = narrowed


def _held_run(diff_ids, held):
    count = 0
    for diff_id in diff_ids:
        if diff_id not in held:
            break
        count += 1
    return count


def skippable_members(images: Sequence, omitted: Sequence[int]) -> set[str]:
    """Input members that hold only layers the output leaves out, known from the input's sidecar
    (its images' `layers` and `diff_ids`): the first pass need not spool them."""
    carried = {d for image, count in zip(images, omitted) for d in image.diff_ids[count:]}
    skip = set()
    for image in images:
        if len(image.layers) != len(image.diff_ids):
            return set()  # a sidecar from before layers were recorded: spool everything
        skip.update(path for path, diff_id in zip(image.layers, image.diff_ids) if diff_id not in carried)
    return skip
