# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Free space on a file system, checked before a write, and sizes as people read them."""

from __future__ import annotations

import os

from ansible_collections.airgap.docker.plugins.module_utils.errors import SpaceError


def human_size(num: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(num) < 1024 or unit == "TiB":
            return ("%d %s" % (num, unit)) if unit == "B" else ("%.1f %s" % (num, unit))
        num /= 1024.0
    return "%d B" % num  # pragma: no cover


def free_bytes(directory: str) -> int:
    stat = os.statvfs(directory)
    return stat.f_bavail * stat.f_frsize


def check_free_space(directory: str, needed: int, what: str) -> int:
    """Fail early, with the numbers, when `needed` bytes will not fit in directory."""
    free = free_bytes(directory)
    if needed > free:
        raise SpaceError(
            "Not enough free space in %s for %s: about %s needed, %s free." % (directory, what, human_size(needed), human_size(free)),
            needed=needed, free=free,
        )
    return free
