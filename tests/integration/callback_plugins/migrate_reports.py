# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Test-only callback: each host's last `migrate_report` fact, written as JSON to $AIRGAP_TEST_REPORTS
when the playbook ends. The tests read the role's reports this way instead of through a play of
their own on the controller, which cost every role run a second or two."""

from __future__ import annotations

import json
import os

from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "migrate_reports"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super().__init__()
        self.reports = {}

    def v2_runner_on_ok(self, result):
        facts = result._result.get("ansible_facts") or {}
        if "migrate_report" in facts:
            self.reports[result._host.get_name()] = facts["migrate_report"]

    def v2_playbook_on_stats(self, stats):
        path = os.environ.get("AIRGAP_TEST_REPORTS")
        if path:
            with open(path, "w") as handle:
                json.dump(self.reports, handle)
