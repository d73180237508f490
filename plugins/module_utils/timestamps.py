# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Timestamps as image configs write them (RFC 3339, UTC)."""

from __future__ import annotations

import datetime


def now_rfc3339() -> str:
    """The current time, to the microsecond."""
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def rfc3339(timestamp: float) -> str:
    """A Unix time, to the second."""
    return datetime.datetime.fromtimestamp(timestamp, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def snapshot_time(container: dict) -> str:
    """When the exported filesystem last could change: the stop time of a stopped container (so
    that exporting it again gives the same image ID), else now.

    container is the module's container facts (running, finished_at).
    """
    finished = container.get("finished_at") or ""
    if not container["running"] and finished and not finished.startswith("0001-"):
        return finished
    return now_rfc3339()
