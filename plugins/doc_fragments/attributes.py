# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment:
    # Descriptions of the attributes every module documents.
    DOCUMENTATION = r"""
options: {}
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
  idempotent:
    description:
      - When run twice in a row in the same environment with the same parameters, the second run reports no change
        and modifies nothing.
"""

    # For the modules that talk to a Docker engine.
    ACTION_GROUP = r"""
options: {}
attributes:
  action_group:
    description: Use C(group/airgap.docker.docker) in C(module_defaults) to set defaults for this module.
    support: full
    membership:
      - airgap.docker.docker
"""

    # For modules that only read.
    INFO_MODULE = r"""
options: {}
attributes:
  check_mode:
    support: full
    details: The module changes nothing; it runs the same in check mode.
  diff_mode:
    support: N/A
    details: The module changes nothing.
  idempotent:
    support: full
"""
