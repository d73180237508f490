# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Fetch an archive and its sidecar from a peer's share (HTTP, the standard library's client).

The peer is not trusted: both files are streamed into temporary files beside their targets,
never more bytes than the manifest allows, and renamed into place only when their sha256 match
the manifest's. On any failure nothing is kept.
"""

from __future__ import annotations

import hashlib
import http.client
import socket
import time
import urllib.parse

from ansible_collections.airgap.docker.plugins.module_utils.atomic_file import AtomicFile
from ansible_collections.airgap.docker.plugins.module_utils.disk_space import check_free_space, human_size
from ansible_collections.airgap.docker.plugins.module_utils.errors import ArchiveError, ChecksumMismatch
from ansible_collections.airgap.docker.plugins.module_utils.sidecar import MAX_SIDECAR, SUFFIX
from ansible_collections.airgap.docker.plugins.module_utils.streaming import CHUNK

# How much longer than `timeout` the answer of a relaying share is waited for (see _get).
ANSWER_MARGIN_SECONDS = 5


class PeerError(ArchiveError):
    """The peer could not be reached, refused, or stopped sending; nothing was kept."""


def _get(address: str, port: int, token: str, relative: str, timeout: float):
    host = address if ":" not in address else "[%s]" % address
    connection = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        connection.request("GET", "/" + urllib.parse.quote(relative), headers={"Authorization": "Bearer " + token})
        # A relaying share answers once its host has started receiving the file (Ansible starts the
        # hosts' fetches a little apart), and gives up after its own wait, the role's same timeout.
        # A little more for the answer, then `timeout` again for each piece of the body.
        sock = connection.sock  # the response keeps reading from it after the connection lets it go
        sock.settimeout(timeout + ANSWER_MARGIN_SECONDS)
        response = connection.getresponse()
        sock.settimeout(timeout)
    except (OSError, http.client.HTTPException) as exc:
        connection.close()
        raise PeerError("%s:%d did not answer for %s: %s." % (address, port, relative, _reason(exc))) from None
    if response.status != 200:
        connection.close()
        raise PeerError("%s:%d answered %d %s for %s." % (address, port, response.status, response.reason, relative))
    return connection, response


def _reason(exc: BaseException) -> str:
    if isinstance(exc, socket.timeout):
        return "no data for the timeout"
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__


def _receive(response, target: AtomicFile, limit: int, what: str, peer: str) -> tuple[str, int]:
    """Stream the body into target; refuse more than `limit` bytes. Returns (sha256 hex, bytes)."""
    digest = hashlib.sha256()
    count = 0
    while True:
        try:
            chunk = response.read1(CHUNK)
        except (OSError, http.client.HTTPException) as exc:
            raise PeerError("%s stopped sending %s after %s: %s." % (peer, what, human_size(count), _reason(exc))) from None
        if not chunk:
            return digest.hexdigest(), count
        count += len(chunk)
        if count > limit:
            raise ChecksumMismatch("%s sent more than the %d bytes of %s the manifest allows; the copy was refused." % (peer, limit, what))
        digest.update(chunk)
        target.file.write(chunk)
        # Out of Python's buffer at once: this host's share may be passing the file on as it grows.
        target.file.flush()


def _fetch_one(address, port, token, relative, target, limit, timeout):
    peer = "%s:%d" % (address, port)
    connection, response = _get(address, port, token, relative, timeout)
    try:
        return _receive(response, target, limit, relative, peer)
    finally:
        connection.close()


def fetch(address: str, port: int, token: str, path: str, dest: str, sha256: str, size: int,
          sidecar_sha256: str, timeout: float) -> dict:
    """Fetch `path` (and its sidecar) from the peer's share into dest (and dest + SUFFIX).

    Returns {bytes, seconds}. Raises PeerError when the peer fails, ChecksumMismatch when what it
    sent is not what the manifest describes; either way dest is left as it was."""
    directory = dest.rsplit("/", 1)[0] or "/"
    check_free_space(directory, size, path)
    started = time.monotonic()
    peer = "%s:%d" % (address, port)
    archive, sidecar = AtomicFile(dest, mode=0o600), None
    try:
        digest, count = _fetch_one(address, port, token, path, archive, size, timeout)
        if count < size:
            # A relaying peer whose own upstream failed ends its answer early.
            raise PeerError("%s stopped sending %s after %s of %s." % (peer, path, human_size(count), human_size(size)))
        if digest != sha256:
            raise ChecksumMismatch("%s sent %s with sha256 %s (%d bytes), the manifest says %s (%d bytes); the copy was refused."
                                   % (peer, path, digest, count, sha256, size))
        sidecar = AtomicFile(dest + SUFFIX, mode=0o600)
        side_digest, side_count = _fetch_one(address, port, token, path + SUFFIX, sidecar, MAX_SIDECAR, timeout)
        if side_digest != sidecar_sha256:
            raise ChecksumMismatch("%s sent the sidecar of %s with sha256 %s, the manifest says %s; the copy was refused."
                                   % (peer, path, side_digest, sidecar_sha256))
        # The archive first, then its sidecar: a sidecar never describes a file it was not written for.
        archive.commit()
        sidecar.commit()
    except BaseException:
        archive.abort()
        if sidecar is not None:
            sidecar.abort()
        raise
    return {"bytes": count + side_count, "seconds": round(time.monotonic() - started, 3)}
