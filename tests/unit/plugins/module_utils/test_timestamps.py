# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import datetime
import re

from ansible_collections.airgap.docker.plugins.module_utils.timestamps import now_rfc3339, rfc3339, snapshot_time


def test_rfc3339_is_utc_to_the_second():
    assert rfc3339(0) == "1970-01-01T00:00:00Z"
    assert rfc3339(1714561200.9) == "2024-05-01T11:00:00Z"


def test_now_is_utc_to_the_microsecond():
    now = now_rfc3339()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", now)
    parsed = datetime.datetime.strptime(now, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc)
    assert abs((datetime.datetime.now(datetime.timezone.utc) - parsed).total_seconds()) < 60


def test_snapshot_of_a_stopped_container_is_its_stop_time():
    assert snapshot_time({"running": False, "finished_at": "2024-05-01T11:00:00.2Z"}) == "2024-05-01T11:00:00.2Z"


def test_snapshot_of_a_running_or_never_stopped_container_is_now():
    for container in ({"running": True, "finished_at": "2024-05-01T11:00:00.2Z"},
                      {"running": False, "finished_at": "0001-01-01T00:00:00Z"},
                      {"running": False, "finished_at": None}):
        assert snapshot_time(container).endswith("Z") and not snapshot_time(container).startswith(("2024", "0001"))
