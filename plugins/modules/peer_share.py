#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: peer_share
short_description: Let other hosts fetch staged archives from this host for a while, to holders of a token
version_added: 0.1.0
description:
  - Starts or stops a short-lived HTTP server (Python's standard C(http.server)) that serves a list of archives of one
    staging directory, and their sidecars, to clients presenting a token. It is how the hosts of a fleet pass archives on to each other
    in the R(airgap.docker.migrate, ansible_collections.airgap.docker.migrate_role) role's fan-out, so that the controller
    sends each archive only to a few hosts.
  - The server is detached from the module, listens only on O(address), serves only the archives listed in O(archives)
    (never through a symbolic link, never anything else in the directory), refuses requests without the token,
    and ends by itself after O(lifetime) seconds, also when nobody stops it. Its pid file in O(path) records the
    process's start time, so that a stop never kills another process that reused the pid.
  - What it serves is not trusted by the receivers; M(airgap.docker.peer_fetch) checks every file against the
    manifest's sha256 before keeping it.
  - Traffic is plain HTTP. The token keeps other clients from reading the files, not an eavesdropper on the network
    between the hosts. See the collection's security document.
author:
  - airgap.docker contributors (@airgap-docker)
extends_documentation_fragment:
  - airgap.docker.attributes
attributes:
  check_mode:
    support: full
    details: In check mode nothing is started or stopped; the result says what would be.
  diff_mode:
    support: none
  idempotent:
    support: partial
    details: O(state=absent) is idempotent. O(state=present) starts a new server on every run, stopping the one before.
options:
  path:
    description: The staging directory whose files are served; the pid file C(.airgap-share.json) is kept there.
    type: path
    required: true
  state:
    description: V(present) starts the share (stopping an earlier one of the same O(path)), V(absent) stops it.
    type: str
    choices: [present, absent]
    default: present
  archives:
    description:
      - Archive paths relative to O(path) that may be served, each with its sidecar (the path plus C(.airgap.json)).
      - A listed file that does not exist is answered with 404, at once unless it has a size in O(sizes).
    type: list
    elements: str
    default: []
  sizes:
    description:
      - The size in bytes of listed archives that this host is still receiving. Such an archive is served while it
        arrives (the fan-out's relay) - the share streams the temporary file that M(airgap.docker.peer_fetch) writes, as
        it grows, and ends the answer early if that fetch gives up or stalls for 60 seconds. The receiver then keeps nothing.
      - An archive with a size that is not here yet, or its sidecar, is waited for up to O(arrival) seconds (this host may start its own
        fetch a little after the host downstream asks).
      - An archive without a size here is served only once it is complete.
    type: dict
    default: {}
  arrival:
    description:
      - Seconds to wait for an archive of O(sizes) that this host has not started receiving yet, or for its sidecar, before answering 404.
      - Keep it at most the receivers' M(airgap.docker.peer_fetch) O(airgap.docker.peer_fetch#module:timeout); the role uses
        C(migrate_fanout_timeout) for both.
    type: int
    default: 30
  address:
    description: The address to listen on, one of this host's own; peers connect to it. Required with O(state=present).
    type: str
  port:
    description: The TCP port; V(0) takes any free one (returned as RV(port)). Set one when a firewall between the hosts opens only it.
    type: int
    default: 0
  token:
    description: The secret that clients send as a bearer token; at least 16 characters. Required with O(state=present).
    type: str
  lifetime:
    description: Seconds after which the server stops by itself.
    type: int
    default: 7200
seealso:
  - module: airgap.docker.peer_fetch
"""

EXAMPLES = r"""
- name: Share the staged archives with the other hosts of the batch
  airgap.docker.peer_share:
    path: /var/tmp/airgap.docker/incoming
    archives: [images/app_1.4.tar.zst]
    sizes:
      images/app_1.4.tar.zst: 346917335
    address: "{{ ansible_host }}"
    token: "{{ run_token }}"
    lifetime: 3600
  register: share

- name: Stop sharing
  airgap.docker.peer_share:
    path: /var/tmp/airgap.docker/incoming
    state: absent
"""

RETURN = r"""
address:
  description: The address the server listens on.
  returned: when O(state=present) and not in check mode
  type: str
port:
  description: The port the server listens on.
  returned: when O(state=present) and not in check mode
  type: int
pid:
  description: The server's process ID.
  returned: when O(state=present) and not in check mode
  type: int
"""

from ansible_collections.airgap.docker.plugins.module_utils import peer_share
from ansible_collections.airgap.docker.plugins.module_utils.errors import InvalidInput
from ansible_collections.airgap.docker.plugins.module_utils.module_support import build_module, run_manager


class PeerShareManager:
    reports_stats = False

    def __init__(self, module):
        self.params = module.params
        self.check_mode = module.check_mode

    def run(self):
        path = self.params["path"]
        if self.params["state"] == "absent":
            running = peer_share.running(path) is not None
            if self.check_mode:
                return {"changed": running, "msg": "would stop the share" if running else "no share runs"}
            stopped = peer_share.stop(path)
            return {"changed": stopped, "msg": "stopped the share" if stopped else "no share runs"}
        for option in ("address", "token"):
            if not self.params[option]:
                raise InvalidInput("%s is required to start a share." % option)
        if self.check_mode:
            return {"changed": True, "msg": "would serve %d archive(s) on %s" % (len(self.params["archives"]), self.params["address"])}
        served = peer_share.start(path, self.params["archives"], self.params["address"], self.params["port"],
                                  self.params["token"], self.params["lifetime"], self.params["sizes"], self.params["arrival"])
        msg = "serving %d archive(s) on %s port %d" % (len(self.params["archives"]), served["address"], served["port"])
        return dict(served, changed=True, msg=msg)


def main():
    module = build_module(
        dict(
            path=dict(type="path", required=True),
            state=dict(type="str", choices=["present", "absent"], default="present"),
            archives=dict(type="list", elements="str", default=[]),
            sizes=dict(type="dict", default={}),
            arrival=dict(type="int", default=30),
            address=dict(type="str"),
            port=dict(type="int", default=0),
            token=dict(type="str", no_log=True),
            lifetime=dict(type="int", default=7200),
        ),
        engine=False,
    )
    run_manager(module, PeerShareManager)


if __name__ == "__main__":
    main()
