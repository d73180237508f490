# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The platform ({os, architecture[, variant]}) an imported image records."""

from __future__ import annotations


def container_platform(image: dict | None, version: dict) -> dict:
    """The platform of a container's filesystem: its image's (from `docker image inspect`), else
    the engine's (from `docker version`), else linux/amd64."""
    image = image or {}
    return {"os": image.get("Os") or version.get("Os") or "linux",
            "architecture": image.get("Architecture") or version.get("Arch") or "amd64",
            "variant": image.get("Variant")}


def engine_platform(version: dict) -> dict:
    """The engine's own platform (from `docker version`), else linux/amd64."""
    return {"os": version.get("Os") or "linux", "architecture": version.get("Arch") or "amd64"}
