#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: peer_fetch
short_description: Fetch an archive and its sidecar from another host's share, kept only if they match the manifest
version_added: 0.1.0
description:
  - Fetches one archive and its sidecar from a server started by M(airgap.docker.peer_share) on another host, over HTTP
    with the run's token, and keeps them only when their sizes and sha256 are those given (the bundle manifest's).
  - The peer is not trusted. Both files stream into temporary files beside their targets, never more bytes than
    the manifest allows, and are renamed into place, the archive first, only after both checks pass. A peer that
    cannot be reached, stops sending for O(timeout) seconds, or sends anything else leaves nothing behind, and the
    module fails with one sentence saying which.
  - The R(airgap.docker.migrate, ansible_collections.airgap.docker.migrate_role) role uses it for the fan-out between
    hosts and replaces a failed fetch with a copy from the controller.
author:
  - airgap.docker contributors (@airgap-docker)
extends_documentation_fragment:
  - airgap.docker.attributes
attributes:
  check_mode:
    support: full
    details: In check mode nothing is fetched; the result says what would be.
  diff_mode:
    support: none
  idempotent:
    support: full
    details: A O(dest) that already has the manifest's size and sha256 is kept and nothing is fetched.
options:
  address:
    description: The peer's address, as its share listens on it.
    type: str
    required: true
  port:
    description: The peer's share port.
    type: int
    required: true
  token:
    description: The run's token, as the share was given it.
    type: str
    required: true
  path:
    description: The archive's path in the share (and in the manifest); its sidecar is O(path) plus C(.airgap.json).
    type: str
    required: true
  dest:
    description: Where to put the archive on this host; the sidecar goes beside it. The directory must exist.
    type: path
    required: true
  sha256:
    description: The archive's sha256, from the manifest.
    type: str
    required: true
  size:
    description: The archive's size in bytes, from the manifest; the peer may not send more.
    type: int
    required: true
  sidecar_sha256:
    description: The sidecar's sha256, from the manifest.
    type: str
    required: true
  timeout:
    description:
      - Seconds to wait for the connection and, after the answer's start, for each piece of data before giving up on the peer.
      - The answer's start is waited for 5 seconds longer. A share that relays a file its host is still receiving answers only once
        that host's own fetch has started, and gives up after its own O(airgap.docker.peer_share#module:arrival) seconds.
    type: int
    default: 30
seealso:
  - module: airgap.docker.peer_share
"""

EXAMPLES = r"""
- name: Fetch an archive from a peer of the batch
  airgap.docker.peer_fetch:
    address: 198.18.77.12
    port: "{{ hostvars['web-2'].share.port }}"
    token: "{{ run_token }}"
    path: images/app_1.4.tar.zst
    dest: /var/tmp/airgap.docker/incoming/images/app_1.4.tar.zst
    sha256: "{{ entry.sha256 }}"
    size: "{{ entry.size }}"
    sidecar_sha256: "{{ entry.sidecar.sha256 }}"
"""

RETURN = r"""
bytes:
  description: Bytes received, archive and sidecar.
  returned: success
  type: int
seconds:
  description: How long the transfer took.
  returned: success
  type: float
dest:
  description: Where the archive is.
  returned: always
  type: str
"""

import os

from ansible_collections.airgap.docker.plugins.module_utils import peer_fetch
from ansible_collections.airgap.docker.plugins.module_utils.checksums import file_sha256, parse_sha256
from ansible_collections.airgap.docker.plugins.module_utils.module_support import build_module, run_manager
from ansible_collections.airgap.docker.plugins.module_utils.sidecar import SUFFIX


class PeerFetchManager:
    reports_stats = False

    def __init__(self, module):
        self.params = module.params
        self.check_mode = module.check_mode

    def run(self):
        p = self.params
        sha256, sidecar_sha256 = parse_sha256(p["sha256"]), parse_sha256(p["sidecar_sha256"])
        if self._in_place(sha256, sidecar_sha256):
            return {"changed": False, "dest": p["dest"], "bytes": 0, "seconds": 0.0, "msg": "%s is in place" % p["path"]}
        if self.check_mode:
            return {"changed": True, "dest": p["dest"], "msg": "would fetch %s from %s" % (p["path"], p["address"])}
        done = peer_fetch.fetch(p["address"], p["port"], p["token"], p["path"], p["dest"], sha256, p["size"], sidecar_sha256,
                                p["timeout"])
        return dict(done, changed=True, dest=p["dest"], msg="fetched %s from %s" % (p["path"], p["address"]))

    def _in_place(self, sha256, sidecar_sha256):
        dest = self.params["dest"]
        if not (os.path.isfile(dest) and os.path.isfile(dest + SUFFIX)) or os.path.getsize(dest) != self.params["size"]:
            return False
        return file_sha256(dest)[0] == sha256 and file_sha256(dest + SUFFIX)[0] == sidecar_sha256


def main():
    module = build_module(
        dict(
            address=dict(type="str", required=True),
            port=dict(type="int", required=True),
            token=dict(type="str", required=True, no_log=True),
            path=dict(type="str", required=True),
            dest=dict(type="path", required=True),
            sha256=dict(type="str", required=True),
            size=dict(type="int", required=True),
            sidecar_sha256=dict(type="str", required=True),
            timeout=dict(type="int", default=30),
        ),
        engine=False,
    )
    run_manager(module, PeerFetchManager)


if __name__ == "__main__":
    main()
