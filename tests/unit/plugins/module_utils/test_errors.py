# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import errno
import os

import pytest

from ansible_collections.airgap.docker.plugins.module_utils.errors import AirgapError, ArchiveError, SpaceError, os_error

# os_error / open_for_reading ----------------------------------------------------------------


@pytest.mark.parametrize("code, kind, text", [
    (errno.ENOSPC, SpaceError, "No space left"),
    (errno.EACCES, AirgapError, "Permission denied"),
    (errno.EPERM, AirgapError, "Permission denied"),
    (errno.ENOENT, ArchiveError, "does not exist"),
    (errno.EIO, AirgapError, "Input/output error"),
])
def test_os_error(code, kind, text):
    error = os_error(OSError(code, os.strerror(code)), "/srv/x.tar", "writing")
    assert error.__class__ is kind
    assert text in error.msg
    assert "/srv/x.tar" in error.msg


def test_os_error_without_strerror():
    error = os_error(OSError(errno.EIO, None), "/p", "reading")
    assert "/p" in error.msg
