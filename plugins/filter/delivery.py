# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Filters the migrate role decides with; the decisions live in module_utils.delivery_plan."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.airgap.docker.plugins.module_utils import delivery_plan


def _delivery_plan(records, delta=True, build=False):
    if not isinstance(records, list) or not all(isinstance(r, dict) and "archive" in r for r in records):
        raise AnsibleFilterError("delivery_plan expects the list of wanted records that airgap.docker.image_info returns.")
    return delivery_plan.plan(records, delta=bool(delta), build=bool(build))


def _baseline_plan(records, chains):
    if not isinstance(records, list) or not all(isinstance(r, dict) and "archive" in r for r in records):
        raise AnsibleFilterError("baseline_plan expects a bundle's image records (airgap.docker.bundle's images).")
    if not isinstance(chains, list) or not all(isinstance(c, list) for c in chains):
        raise AnsibleFilterError("baseline_plan expects the baseline images' diff ID lists as its argument.")
    return delivery_plan.baseline_plan(records, chains)


class FilterModule:
    def filters(self):
        return {"delivery_plan": _delivery_plan, "baseline_plan": _baseline_plan}
