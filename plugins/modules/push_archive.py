# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: push_archive
short_description: Copy an archive and its sidecar from a bundle on the controller to a managed host, streamed
version_added: 0.1.0
description:
  - Copies an archive of a bundle (see M(airgap.docker.bundle)) and its sidecar to the managed host with the
    connection's own file transfer (sftp or scp over ssh), which streams from file to file and computes no checksum on
    the controller, so sending one archive to hundreds of hosts costs the controller no more than the transfers.
  - Both files are written under temporary names and renamed into place, the archive first, so a sidecar never
    describes a file it was not written for; an interrupted copy leaves no file under the final name.
  - Fails before copying when the destination's file system has too little free space.
  - The content is verified where it is used, by M(airgap.docker.image_archive) and M(airgap.docker.container_archive)
    with their C(checksum) option, while loading.
  - Files are written as the user Ansible logs in as, not the C(become) user, so the destination directory must be
    writable by that user; the R(airgap.docker.migrate, ansible_collections.airgap.docker.migrate_role) role creates its staging directory that way.
author:
  - airgap.docker contributors (@airgap-docker)
extends_documentation_fragment:
  - airgap.docker.attributes
attributes:
  check_mode:
    support: full
    details: Check mode reports the bytes that would be copied and copies nothing.
  diff_mode:
    support: none
  idempotent:
    support: none
    details: It always copies; the role calls it only for hosts that lack the archive's images.
options:
  bundle:
    description:
      - The bundle directory on the controller.
    type: path
    required: true
  path:
    description:
      - The archive inside the bundle, V(images/<file>) or V(containers/<file>).
    type: str
    required: true
  dest:
    description:
      - Absolute path of the copy on the managed host; the sidecar goes next to it.
    type: str
    required: true
notes:
  - This is an action plugin; it runs on the controller and needs no Python on the managed host.
seealso:
  - module: airgap.docker.fetch_archive
"""

EXAMPLES = r"""
- name: Stage an archive of the bundle on this host
  airgap.docker.push_archive:
    bundle: /srv/bundles/2026-11
    path: images/app.tar.zst
    dest: /var/tmp/airgap.docker/app.tar.zst
"""

RETURN = r"""
dest:
  description: The copy's path on the managed host.
  returned: always
  type: str
bytes:
  description: Bytes of archive and sidecar copied, or that would be in check mode (null when the archive is not on the controller yet).
  returned: always
  type: int
"""
