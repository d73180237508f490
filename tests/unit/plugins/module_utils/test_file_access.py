# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import pytest

from ansible_collections.airgap.docker.plugins.module_utils import file_access
from ansible_collections.airgap.docker.plugins.module_utils.errors import AirgapError, ArchiveError
from ansible_collections.airgap.docker.plugins.module_utils.file_access import open_for_reading


def test_check_writable_directory(tmp_path, monkeypatch):
    file_access.check_writable_directory(str(tmp_path / "new.tar"))  # fine: exists and writable
    with pytest.raises(ArchiveError) as info:
        file_access.check_writable_directory(str(tmp_path / "missing" / "new.tar"))
    assert str(tmp_path / "missing") in info.value.msg and "new.tar" in info.value.msg
    monkeypatch.setattr(file_access.os, "access", lambda path, mode: False)
    with pytest.raises(AirgapError, match="Permission denied") as info:
        file_access.check_writable_directory(str(tmp_path / "new.tar"))
    assert str(tmp_path) in info.value.msg


def test_open_for_reading(tmp_path):
    path = tmp_path / "a.tar"
    path.write_bytes(b"abc")
    with open_for_reading(str(path)) as handle:
        assert handle.read() == b"abc"
    with pytest.raises(ArchiveError, match="does not exist"):
        open_for_reading(str(tmp_path / "missing.tar"))
    with pytest.raises(ArchiveError, match="is a directory"):
        open_for_reading(str(tmp_path))
