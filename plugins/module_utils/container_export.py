# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The export of a container's filesystem with its snapshot record appended."""

from __future__ import annotations

from ansible_collections.airgap.docker.plugins.module_utils import container_image, container_transfer, progress
from ansible_collections.airgap.docker.plugins.module_utils.platforms import container_platform
from ansible_collections.airgap.docker.plugins.module_utils.timestamps import snapshot_time


def export_snapshot(engine, info: dict, container: dict, path: str, kind: str, level: int | None, pause: bool,
                    write: bool = True, split_size: int | None = None) -> tuple:
    """(SplitTarget, or None when not `write` (check mode), LayerFacts) of exporting the container
    (info from `docker container inspect`, container its facts), paused when `pause` and running;
    written as parts when it is larger than split_size."""
    created = snapshot_time(container)
    platform = container_platform(engine.inspect_image(info.get("Image")), engine.version())
    record = container_image.snapshot_record(container_image.capture_config(info.get("Config")), created, platform, container)
    running = info["State"].get("Running") and not info["State"].get("Paused")
    pause = bool(pause and running and write)
    estimate = (engine.inspect_container(info["Id"], size=True) or {}).get("SizeRootFs") or 0 if write else 0
    progress.estimate(estimate)
    with container_transfer.paused(engine, info["Id"], pause):
        return container_transfer.export_container(engine, info["Id"], record, path, kind, level, estimate, write=write,
                                                   split_size=split_size)
