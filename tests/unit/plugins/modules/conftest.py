# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The module tests run their managers with a verified memo of their own."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def private_memo(tmp_path, monkeypatch):
    """The verified memo in a directory of the test's own, never the user's."""
    monkeypatch.setenv("AIRGAP_DOCKER_CACHE", str(tmp_path / "cache"))
