# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A container as an export sees it: whether it can be exported, and the facts the archive records."""

from __future__ import annotations

from ansible_collections.airgap.docker.plugins.module_utils.errors import AirgapError, ContainerNotFound


def check_exportable(info: dict | None, name: str, host: str) -> dict:
    """info (from `docker container inspect`) when the container's filesystem can be exported."""
    if info is None:
        raise ContainerNotFound("No container %s in the engine at %s." % (name, host))
    state = info.get("State") or {}
    if state.get("Dead") or state.get("Status") == "dead":
        raise AirgapError("Container %s is dead; its filesystem cannot be exported." % name)
    if state.get("Status") == "removing":
        raise AirgapError("Container %s is being removed; its filesystem cannot be exported." % name)
    return info


def container_facts(info: dict) -> dict:
    """What the module returns and the sidecar records about the container."""
    state = info.get("State") or {}
    return {"id": info["Id"], "name": (info.get("Name") or "").lstrip("/"), "image": (info.get("Config") or {}).get("Image"),
            "image_id": info.get("Image"), "started_at": state.get("StartedAt"), "finished_at": state.get("FinishedAt"),
            "running": bool(state.get("Running"))}
