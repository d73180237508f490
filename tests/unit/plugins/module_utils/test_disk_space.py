# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import pytest

from ansible_collections.airgap.docker.plugins.module_utils import disk_space
from ansible_collections.airgap.docker.plugins.module_utils.disk_space import check_free_space, human_size
from ansible_collections.airgap.docker.plugins.module_utils.errors import SpaceError

# human_size / free space --------------------------------------------------------------------


@pytest.mark.parametrize("num, text", [
    (0, "0 B"), (1, "1 B"), (1023, "1023 B"), (1024, "1.0 KiB"), (1536, "1.5 KiB"),
    (5 << 20, "5.0 MiB"), (int(2.25 * (1 << 30)), "2.2 GiB"), (1 << 40, "1.0 TiB"), (5 << 50, "5120.0 TiB"),
])
def test_human_size(num, text):
    assert human_size(num) == text


def test_free_bytes_of_real_directory(tmp_path):
    assert disk_space.free_bytes(str(tmp_path)) > 0


def test_check_free_space_enough(tmp_path, monkeypatch):
    monkeypatch.setattr(disk_space, "free_bytes", lambda directory: 10 << 20)
    assert check_free_space(str(tmp_path), 10 << 20, "the archive") == 10 << 20
    assert check_free_space(str(tmp_path), 0, "the archive") == 10 << 20


def test_check_free_space_not_enough(tmp_path, monkeypatch):
    asked = []
    monkeypatch.setattr(disk_space, "free_bytes", lambda directory: asked.append(directory) or 1536)
    with pytest.raises(SpaceError) as info:
        check_free_space(str(tmp_path), 5 << 20, "the archive")
    message = info.value.msg
    assert str(tmp_path) in message
    assert "the archive" in message
    assert "5.0 MiB needed" in message
    assert "1.5 KiB free" in message
    assert info.value.details == {"needed": 5 << 20, "free": 1536}
    assert asked == [str(tmp_path)]


def test_check_free_space_real_filesystem(tmp_path):
    free = check_free_space(str(tmp_path), 1, "a test")
    assert free > 0
    with pytest.raises(SpaceError, match="needed"):
        check_free_space(str(tmp_path), 1 << 62, "a test")
