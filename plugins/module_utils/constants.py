# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Values shared by the modules and the controller-side filters.

Kept apart so that the filters and the bundle module can use them without importing the Docker
SDK (engine.py) or the archive readers (sidecar.py): every import costs each Ansible worker
process that templates a role value.
"""

from __future__ import annotations

DEFAULT_HOST = "unix:///var/run/docker.sock"

# The kinds of archive a sidecar describes: `docker save` image archives, container snapshots.
KIND_IMAGES = "images"
KIND_CONTAINER = "container"
