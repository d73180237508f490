# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: fetch_archive
short_description: Copy an archive from a managed host into a bundle on the controller, streamed and verified
version_added: 0.1.0
description:
  - Copies an archive written by M(airgap.docker.image_archive) or M(airgap.docker.container_archive) from the managed
    host into a bundle directory on the controller with the connection's own file transfer (sftp or scp over ssh),
    which streams from file to file. Memory does not grow with the archive's size, also with C(become), where
    M(ansible.builtin.fetch) reads the whole file into memory.
  - The copy is written to a partial copy beside the destination, C(<path>.<first 16 digits of sha256>.partial),
    checked against O(sha256) and O(size) through a descriptor of that very file, and only then renamed into place,
    readable by its owner only (mode C(0600)); a copy that does not match is removed and the task fails. The partial
    copy is opened without following a link and only when it is a regular file of the controller's user; anything
    else under its name fails the task.
  - A copy cut off by a dropped connection or a killed run leaves its partial copy, and the next copy of the same
    content resumes it. The partial copy and the archive on the host are hashed in blocks of 32 MiB (on the host with
    C(dd) and C(sha256sum), of GNU coreutils or busybox), the longest run of matching blocks from the start is kept and
    the rest cut off, and only what is missing moves, cut out on the host with C(dd) into Ansible's remote temporary
    directory at most 256 MiB at a time. A partial copy whose first block does not match is fetched again whole.
    Partial copies of other content for the same destination are removed once the copy is in place.
  - At C(-v), the copy prints a line every tenth of the way or every 30 seconds, with the bytes, the rate and the time
    left, and a last line when it ends.
  - While it writes, the copy holds an exclusive lock (C(flock)) on the bundle directory, the lock that
    M(airgap.docker.bundle) takes too, so that no other run rewrites the manifest or removes files while it copies.
    A copy that finds the directory locked waits up to O(lock_timeout) seconds, then fails saying so.
  - A copy already in the bundle that matches is kept and nothing is transferred; so is an archive the bundle holds as
    numbered parts (C(<path>.part001), ...) that make O(sha256), which M(airgap.docker.push_archive) joins on the hosts. Checksums computed on the controller
    are remembered outside the bundle, in the controller user's C(${XDG_CACHE_HOME:-~/.cache}/airgap.docker/verified/)
    (C($AIRGAP_DOCKER_CACHE/verified/) when that is set), by each file's device, inode, size, modification time and
    inode change time; a file replaced or altered since it was hashed is hashed again.
  - The file is read as the user Ansible logs in as, not the C(become) user; the
    R(airgap.docker.migrate, ansible_collections.airgap.docker.migrate_role) role writes its archives owned by that user.
author:
  - airgap.docker contributors (@airgap-docker)
extends_documentation_fragment:
  - airgap.docker.attributes
attributes:
  check_mode:
    support: full
    details: Check mode reports whether the archive would be copied and copies nothing.
  diff_mode:
    support: none
  idempotent:
    support: full
options:
  src:
    description:
      - Absolute path of the archive on the managed host.
    type: str
    required: true
  bundle:
    description:
      - The bundle directory on the controller.
    type: path
    required: true
  path:
    description:
      - Where the archive goes inside the bundle, V(images/<file>) or V(containers/<file>).
    type: str
    required: true
  sha256:
    description:
      - SHA-256 the archive must have, for example the one its sidecar records.
    type: str
    required: true
  size:
    description:
      - Size in bytes the archive must have.
    type: int
    required: true
  lock_timeout:
    description:
      - Seconds to wait for another run that holds the bundle directory's lock before failing. V(0) fails at once.
    type: int
    default: 600
notes:
  - This is an action plugin; it runs on the controller and needs no Python on the managed host.
seealso:
  - module: airgap.docker.push_archive
  - module: airgap.docker.bundle
"""

EXAMPLES = r"""
- name: Bring the saved archive to the controller
  airgap.docker.fetch_archive:
    src: /var/tmp/airgap.docker/app.tar.zst
    bundle: /srv/bundles/2026-11
    path: images/app.tar.zst
    sha256: "{{ saved.archive.sha256 }}"
    size: "{{ saved.archive.size }}"
"""

RETURN = r"""
dest:
  description: The archive's path on the controller.
  returned: always
  type: str
bytes:
  description:
    - Bytes moved by this run (or that would be, in check mode); 0 when the controller's copy was reused. A resumed copy
      counts only what it fetched.
  returned: always
  type: int
resumed_from:
  description: Bytes of a partial copy on the controller that matched the source and were kept.
  returned: when the archive was copied
  type: int
"""
