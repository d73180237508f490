# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    """The controller's checksum memo goes to the test's directory, never the user's."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("AIRGAP_DOCKER_CACHE", raising=False)


@pytest.fixture
def small_blocks(monkeypatch):
    """Blocks of 16 KiB read in units of 4 KiB, pieces of 32 KiB: a 100 KiB archive spans all the cases."""
    # Imported here: the collection is importable only once pytest-ansible has set it up (see tests/unit/conftest.py).
    from ansible_collections.airgap.docker.plugins.plugin_utils import resume  # pylint: disable=import-outside-toplevel

    monkeypatch.setattr(resume, "UNIT", 4096)
    monkeypatch.setattr(resume, "BLOCK", 16384)
    monkeypatch.setattr(resume, "CHUNK", 32768)
