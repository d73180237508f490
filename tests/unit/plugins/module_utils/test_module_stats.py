# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A run's stats: the ones every run returns are summed, a measured one appears only when measured,
and the helpers' internal figures stay out of the result."""

from __future__ import annotations

from ansible_collections.airgap.docker.plugins.module_utils.module_support import ArchiveManager


def manager():
    manager = ArchiveManager.__new__(ArchiveManager)
    manager.result = {"stats": {"bytes_from_engine": 0, "archive_bytes_written": 0}}
    return manager


def test_stats_are_summed_and_a_measured_one_appears_only_when_measured():
    run = manager()
    run.add_stats({"archive_bytes_written": 10, "transfer_seconds": 1.5})
    assert run.result["stats"] == {"bytes_from_engine": 0, "archive_bytes_written": 10}
    run.add_stats({"bytes_from_engine": 7, "archive_bytes_written": 5, "engine_wait_seconds": 2.25})
    assert run.result["stats"] == {"bytes_from_engine": 7, "archive_bytes_written": 15, "engine_wait_seconds": 2.25}
