# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Which layer stacks an engine holds, learnt from its images alone (no archive is read).

Both image stores key a layer by its chain: the layer together with every layer below it. A layer
counts as held only as the bottom run of some image's layers, which is exactly what a thin
archive's load relies on.
"""

from __future__ import annotations

from ansible_collections.airgap.docker.plugins.module_utils.errors import MissingLayers


class LayerInventory:
    """The engine's images with their layer stacks (diff IDs, bottom first)."""

    def __init__(self, images):
        # [{"id", "tags", "diff_ids"}]
        self.images = images

    @classmethod
    def from_engine(cls, list_images, inspect, tags_of):
        images = []
        for entry in list_images():
            info = inspect(entry["Id"])
            if info is None:
                continue  # removed while we looked
            images.append({"id": info["Id"], "tags": sorted(tags_of(info)),
                           "diff_ids": list((info.get("RootFS") or {}).get("Layers") or [])})
        return cls(images)

    def held_run(self, diff_ids):
        """How many bottom layers of diff_ids the engine holds as one stack."""
        best = 0
        for image in self.images:
            held = image["diff_ids"]
            count = 0
            for mine, theirs in zip(diff_ids, held):
                if mine != theirs:
                    break
                count += 1
            best = max(best, count)
            if best == len(diff_ids):
                break
        return best

    def layers(self):
        """Every diff ID held at the bottom of some stack, as the engine's images list them."""
        return sorted({d for image in self.images for d in image["diff_ids"]})

    def check_holds(self, image, host):
        """Raise MissingLayers unless the engine holds the layers a thin archive's image omits."""
        required = image.required_layers()
        held = self.held_run(required)
        if held < len(required):
            raise MissingLayers(
                "The archive is thin: it leaves out the bottom %d layer(s) of %s, which the engine at %s must already "
                "hold as one stack, but the engine lacks layer %d (%s)%s%s. Nothing was loaded; load the full archive, "
                "or one built against this engine's layers." % (
                    len(required), ", ".join(image.tags) or image.config_digest, host, held + 1, required[held],
                    " on top of the %d below it" % held if held else "",
                    " and the %d above it" % (len(required) - held - 1) if len(required) - held > 1 else ""))
