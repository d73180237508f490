# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import pytest

from ansible_collections.airgap.docker.plugins.module_utils.container_state import check_exportable, container_facts
from ansible_collections.airgap.docker.plugins.module_utils.errors import AirgapError, ContainerNotFound

INFO = {"Id": "c" * 64, "Name": "/web", "Image": "sha256:" + "1" * 64, "Config": {"Image": "nginx:1"},
        "State": {"Running": True, "Status": "running", "StartedAt": "s", "FinishedAt": "f"}}


def test_facts():
    assert container_facts(INFO) == {"id": "c" * 64, "name": "web", "image": "nginx:1", "image_id": "sha256:" + "1" * 64,
                                     "started_at": "s", "finished_at": "f", "running": True}


def test_exportable():
    assert check_exportable(INFO, "web", "unix:///d.sock") is INFO
    with pytest.raises(ContainerNotFound, match=r"^No container web in the engine at unix:///d.sock\.$"):
        check_exportable(None, "web", "unix:///d.sock")
    with pytest.raises(AirgapError, match="is dead"):
        check_exportable(dict(INFO, State={"Dead": True}), "web", "h")
    with pytest.raises(AirgapError, match="is being removed"):
        check_exportable(dict(INFO, State={"Status": "removing"}), "web", "h")
