# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: push_archive
short_description: Copy an archive and its sidecar from a bundle on the controller to a managed host, streamed and resumable
version_added: 0.1.0
description:
  - Copies an archive of a bundle (see M(airgap.docker.bundle)) and its sidecar to the managed host with the
    connection's own file transfer (sftp or scp over ssh), which streams from file to file and computes no checksum on
    the controller, so sending one archive to hundreds of hosts costs the controller no more than the transfers.
  - Both files are written under temporary names and renamed into place, the archive first, so a sidecar never
    describes a file it was not written for; an interrupted copy leaves no file under the final name.
  - With O(sha256), a copy cut off by a dropped connection or a killed run is resumed. The archive's partial copy
    keeps a name that says what it is part of, C(<dest>.<first 16 digits of sha256>-<8 digits per inventory host>.partial)
    (two inventory hosts may be one machine with one staging directory), and stays on the host when the copy fails.
    The next copy hashes the partial copy on the host (C(dd) and C(sha256sum), of GNU coreutils or busybox) and the
    archive on the controller in blocks of 32 MiB, keeps the longest run of matching blocks from the start, cuts off
    the rest and sends only what is missing, through a temporary file on the controller of at most 256 MiB at a time.
    A partial copy whose first block does not match is sent again whole; a symbolic link, FIFO or device under its
    name fails the task. The size is checked before the rename; partial copies of other content for the same O(dest)
    are removed once the copy is in place. Without O(sha256), the copy is not resumed and its partial copy is removed
    when it fails.
  - With O(parts), the archive is held in the bundle as numbered parts (C(<path>.part001), ...) and is never joined on the
    controller. Each part is copied, resumable as above, then the host joins them into the archive, streamed, and
    checks each part's sha256 as it is appended; a part that does not match fails the task naming it, and neither the
    joined file nor that part is kept. The parts are removed once the archive is in place.
  - At C(-v), the copy prints a line every tenth of the way or every 30 seconds, with the bytes, the rate and the time
    left, and a last line when it ends; the position is read from the descriptor that the connection's C(sftp) or
    C(scp) has open on the file (Linux C(/proc)), and only the first and last lines are printed when it cannot be.
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
  sha256:
    description:
      - SHA-256 of the whole archive, from the bundle's manifest. It names the partial copy and makes the copy
        resumable; without it the copy is not resumed.
      - Required with O(parts).
    type: str
  size:
    description:
      - Size in bytes of the whole archive, from the bundle's manifest. The archive on the controller, and the copy on
        the host before it is renamed into place, must have it.
      - Required with O(parts).
    type: int
  parts:
    description:
      - The parts the bundle holds the archive as, in order, from its manifest; the whole O(path) is then not needed on
        the controller.
      - Part N must be V(<path>.partNNN), numbered from V(001), and the sizes must add up to O(size).
    type: list
    elements: dict
    suboptions:
      path:
        description:
          - The part inside the bundle, for example V(images/app.tar.zst.part001).
        type: str
        required: true
      size:
        description:
          - The part's size in bytes.
        type: int
        required: true
      sha256:
        description:
          - The part's SHA-256, checked on the host as the part is joined.
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

- name: Stage it resumably, with the checksum and size of the bundle's manifest
  airgap.docker.push_archive:
    bundle: /srv/bundles/2026-11
    path: "{{ entry.path }}"
    dest: "/var/tmp/airgap.docker/{{ entry.path }}"
    sha256: "{{ entry.sha256 }}"
    size: "{{ entry.size }}"
    parts: "{{ entry.parts | default(omit) }}"
"""

RETURN = r"""
dest:
  description: The copy's path on the managed host.
  returned: always
  type: str
bytes:
  description:
    - Bytes of archive and sidecar moved by this run, or that would be in check mode (null when the archive is not on the
      controller yet). A resumed copy counts only what it sent.
  returned: always
  type: int
resumed_from:
  description: Bytes of the archive (of all its parts, with O(parts)) that a partial copy on the host already held and kept.
  returned: when the archive was copied with O(sha256)
  type: int
"""
