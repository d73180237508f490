#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: staging_dir
short_description: Make a private staging directory and its subdirectories in one task, never following a symbolic link
version_added: 0.1.0
description:
  - Makes O(path), its missing parents and each of O(subdirs) inside it, and gives every one of them O(mode) and O(owner).
    Directories that are already so are left alone.
  - Staging directories usually lie under world-writable C(/var/tmp), where another user may have put a symbolic link or a
    file in their place first. Such a path fails the task with one sentence, before anything is made or changed; nothing
    is ever followed. Each directory is changed through a descriptor opened without following links.
  - One task does what a loop of M(ansible.builtin.file) does with one module run per directory, which on a large fleet
    is one round trip per directory and host. The R(airgap.docker.migrate, ansible_collections.airgap.docker.migrate_role)
    role makes its staging directories with it.
author:
  - airgap.docker contributors (@airgap-docker)
extends_documentation_fragment:
  - airgap.docker.attributes
attributes:
  check_mode:
    support: full
    details: In check mode nothing is made or changed; the result says what would be.
  diff_mode:
    support: full
    details: The diff shows each directory that would be made or changed, with its mode and owner before and after.
  idempotent:
    support: full
options:
  path:
    description: The staging directory, an absolute path. Missing parents are made like it.
    type: path
    required: true
  subdirs:
    description:
      - Directories inside O(path), as relative paths (for example C(incoming/images)); the directories between are made too.
      - A path that is absolute, empty or has a C(.) or C(..) part is refused.
    type: list
    elements: str
    default: []
  owner:
    description:
      - User name or uid that owns every directory. Omitted, a directory keeps its owner, and a new one belongs to the user
        the module runs as.
      - Only the owner changes; the group is left as it is.
    type: str
  mode:
    description: Permissions of every directory, as an octal string. Set whatever the umask.
    type: str
    default: "0700"
seealso:
  - module: ansible.builtin.file
"""

EXAMPLES = r"""
- name: Make the staging directories, owned by the login user, through become
  airgap.docker.staging_dir:
    path: /var/tmp/airgap.docker
    subdirs: [incoming/images, incoming/containers]
    owner: "{{ login_user }}"
  become: true
"""

RETURN = r"""
directories:
  description: Every directory checked, in the order they are made.
  returned: always
  type: list
  elements: str
made:
  description: The directories made (in check mode, those that would be).
  returned: always
  type: list
  elements: str
changed_directories:
  description: The directories that existed and got another mode or owner (in check mode, would have).
  returned: always
  type: list
  elements: str
"""

from ansible_collections.airgap.docker.plugins.module_utils import staging_dirs
from ansible_collections.airgap.docker.plugins.module_utils.module_support import build_module, run_manager


class StagingDirManager:
    reports_stats = False

    def __init__(self, module):
        self.params = module.params
        self.check_mode = module.check_mode
        self.want_diff = module._diff

    def run(self):
        p = self.params
        mode, uid = staging_dirs.parse_mode(p["mode"]), staging_dirs.owner_uid(p["owner"])
        paths = staging_dirs.directories(p["path"], p["subdirs"])
        steps = staging_dirs.plan(paths, mode, uid)
        made = [path for path, actions, _b, _a in steps if "create" in actions]
        altered = [path for path, actions, _b, _a in steps if actions and "create" not in actions]
        if not self.check_mode:
            staging_dirs.apply(steps, mode, uid)
        result = {"changed": bool(made or altered), "directories": paths, "made": made, "changed_directories": altered}
        if self.want_diff:
            result["diff"] = {"before": {path: before for path, actions, before, _a in steps if actions},
                              "after": {path: after for path, actions, _b, after in steps if actions}}
        return result


def main():
    module = build_module(
        dict(
            path=dict(type="path", required=True),
            subdirs=dict(type="list", elements="str", default=[]),
            owner=dict(type="str"),
            mode=dict(type="str", default="0700"),
        ),
        engine=False,
    )
    run_manager(module, StagingDirManager)


if __name__ == "__main__":
    main()
