# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A host's share for the fan-out: a short-lived HTTP server (the standard library's) that hands
the listed archives of one staging directory, and their sidecars, to peers that present the run's token.

It is detached from the module that starts it, ends by itself when its lifetime is over, and is
stopped by its pid file, whose recorded start time keeps a reused pid from being killed. What it
serves is not trusted by anyone: each receiver checks the manifest's sha256 before keeping a byte.

An archive whose size it is given is also served while this host still receives it (the fan-out's
relay): the share streams the temporary file that peer_fetch writes (module_utils.atomic_file),
as it grows, and ends the response early when that receiver gives up (the file is unlinked) or
stalls. The receiver downstream then lacks bytes or has the wrong sha256, and keeps nothing.
"""

from __future__ import annotations

import errno
import hmac
import http.server
import json
import os
import signal
import socket
import threading
import time
import urllib.parse
from typing import Iterable, Mapping

from ansible_collections.airgap.docker.plugins.module_utils.atomic_file import live_partial, write_bytes_atomically
from ansible_collections.airgap.docker.plugins.module_utils.errors import ArchiveError, InvalidInput
from ansible_collections.airgap.docker.plugins.module_utils.sidecar import SUFFIX

PID_FILE = ".airgap-share.json"
MAX_PID_FILE = 4096
# A peer that stops reading for this long is dropped, so that a dead receiver holds no thread.
IDLE_SECONDS = 60
STOP_WAIT_SECONDS = 5.0
# How often a relayed file is looked at for new bytes, and how long by default a listed file that
# is not here yet is waited for: in a relay round the receiver upstream starts its own fetch at
# about the same time as the one downstream, a few seconds apart at most.
POLL_SECONDS = 0.05
ARRIVAL_SECONDS = 30


def _start_ticks(pid: int) -> int | None:
    """The start time in clock ticks since boot (field 22 of /proc/PID/stat) of a live process, or
    None: a zombie counts as gone, it only waits for its parent (or init) to reap it."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as handle:
            stat = handle.read().decode("ascii", "replace")
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: count from the last ')'.
    fields = stat[stat.rfind(")") + 2:].split()
    try:
        return None if fields[0] in ("Z", "X") else int(fields[19])
    except (IndexError, ValueError):
        return None


class _Share:
    def __init__(self, root: str, archives: Iterable[str], token: str, sizes: Mapping[str, int] | None = None,
                 arrival: float = ARRIVAL_SECONDS):
        self.root = os.path.realpath(root)
        archives = list(archives)
        self.files = frozenset(name for archive in archives for name in (archive, archive + SUFFIX))
        self.sizes = {name: size for name, size in (sizes or {}).items() if name in archives}
        self.token = token.encode("utf-8")
        self.arrival = arrival

    def authorized(self, header: str) -> bool:
        scheme, _sep, given = (header or "").partition(" ")
        return scheme == "Bearer" and hmac.compare_digest(given.strip().encode("utf-8"), self.token)

    def open(self, relative: str) -> int | None:
        """A descriptor for a listed regular file under the root, never through a symbolic link (nor
        blocking on a FIFO planted under the name)."""
        if relative not in self.files or not self._inside(relative):
            return None
        try:
            fd = os.open(os.path.join(self.root, relative), os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError:
            return None
        if not os.path.stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            return None
        return fd

    def source(self, relative: str) -> tuple[int, bool] | None:
        """(descriptor, growing) for a listed file: the file itself, or for an archive of known size
        the temporary file its receiver is writing now (growing). An archive of known size, or its
        sidecar, that is not here yet is waited for, up to `arrival` seconds; None if it does not come."""
        if relative not in self.files:
            return None
        relayed = relative in self.sizes or relative[:-len(SUFFIX)] in self.sizes
        deadline = time.monotonic() + (self.arrival if relayed else 0)
        while True:
            fd = self.open(relative)
            if fd is not None:
                return fd, False
            if relative in self.sizes and self._inside(relative):
                fd = live_partial(os.path.join(self.root, relative))
                if fd is not None:
                    return fd, True
            if time.monotonic() >= deadline:
                return None
            time.sleep(POLL_SECONDS)

    def _inside(self, relative: str) -> bool:
        """Whether the file's directory is under the root with no symbolic link on the way."""
        directory = os.path.dirname(os.path.join(self.root, relative))
        return os.path.realpath(directory) == directory


class _Handler(http.server.BaseHTTPRequestHandler):
    server_version = "airgap.docker-share"
    timeout = IDLE_SECONDS

    def do_GET(self):  # pylint: disable=invalid-name  # the name http.server dispatches to
        share = self.server.share
        if not share.authorized(self.headers.get("Authorization", "")):
            self.send_error(403)
            return
        relative = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path).lstrip("/")
        found = share.source(relative)
        if found is None:
            self.send_error(404)
            return
        fd, growing = found
        with os.fdopen(fd, "rb") as handle:
            length = share.sizes[relative] if growing else os.fstat(handle.fileno()).st_size
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(length))
            self.end_headers()
            self.wfile.flush()
            try:
                if growing:
                    _send_as_it_grows(self.connection, handle, length)
                else:
                    self.connection.sendfile(handle)
            except OSError:
                pass  # the receiver went away; it will say so itself

    def log_message(self, format, *args):  # pylint: disable=redefined-builtin
        pass  # detached: there is no terminal to write to


def _send_as_it_grows(connection: socket.socket, handle, length: int) -> None:
    """Send `length` bytes of a file another process is writing, as they arrive. Stops early (the
    receiver then lacks bytes and keeps nothing) when the writer removes the file, which it does
    when it gives up, or when no byte arrives for IDLE_SECONDS. Once the writer renames the file
    into place it is complete, and the open descriptor still reads it."""
    sent = 0
    last_growth = time.monotonic()
    while sent < length:
        status = os.fstat(handle.fileno())
        if status.st_nlink == 0:
            return
        available = min(status.st_size, length)
        if available > sent:
            sent += connection.sendfile(handle, sent, available - sent)
            last_growth = time.monotonic()
        elif time.monotonic() - last_growth > IDLE_SECONDS:
            return
        else:
            time.sleep(POLL_SECONDS)


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address, share):
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.share = share
        super().__init__(address, _Handler)


def _bind(address: str, port: int, share: _Share) -> _Server:
    try:
        return _Server((address, port), share)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        if exc.errno == errno.EADDRNOTAVAIL:
            reason += " (it is not an address of this host: set migrate_fanout_address)"
        raise ArchiveError("Cannot serve on %s port %d: %s." % (address, port, reason)) from None
    except (socket.gaierror, UnicodeError, ValueError) as exc:
        raise InvalidInput("Cannot serve on %r: %s." % (address, exc)) from None


def _byte_counts(sizes: Mapping[str, object]) -> dict:
    counts = {}
    for name, size in sizes.items():
        try:
            counts[name] = -1 if isinstance(size, bool) else int(size)
        except (TypeError, ValueError):
            counts[name] = -1
        if counts[name] < 0:
            raise InvalidInput("The size of %s must be a whole number of bytes, not %r." % (name, size))
    return counts


def _detach_descriptors(keep: set) -> None:
    """Standard streams to /dev/null and every other inherited descriptor closed: the ssh session
    that ran the module ends only when nothing holds its pipes."""
    null = os.open(os.devnull, os.O_RDWR)
    for target in (0, 1, 2):
        os.dup2(null, target)
    os.close(null)
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd > 2 and fd not in keep:
            try:
                os.close(fd)
            except OSError:
                pass


def _serve_until(server: _Server, lifetime: float, pid_file: str) -> None:
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_args: done.set())
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    worker = threading.Thread(target=server.serve_forever, daemon=True)
    worker.start()
    done.wait(lifetime)
    server.shutdown()
    server.server_close()
    try:
        with open(pid_file, "rb") as handle:
            mine = json.loads(handle.read(MAX_PID_FILE)).get("pid") == os.getpid()
        if mine:
            os.unlink(pid_file)
    except (OSError, ValueError, AttributeError):
        pass


def start(root: str, archives: Iterable[str], address: str, port: int, token: str, lifetime: float,
          sizes: Mapping[str, int] | None = None, arrival: float = ARRIVAL_SECONDS) -> dict:
    """Serve `archives` and their sidecars (paths relative to root) on address:port (0: any free port) to holders of
    `token`, for at most `lifetime` seconds. Any earlier share of this root is stopped first. An
    archive with an entry in `sizes` (bytes) is also served while this host receives it, and waited
    for up to `arrival` seconds when this host has not started receiving it yet.
    Returns {address, port, pid}."""
    if len(token) < 16:
        raise InvalidInput("The share's token must be at least 16 characters long.")
    stop(root)
    server = _bind(address, port, _Share(root, archives, token, _byte_counts(sizes or {}), arrival))
    pid_file = os.path.join(root, PID_FILE)
    bound_port = server.server_address[1]
    ready_read, ready_write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs detached; the integration tests see what it does
        try:
            os.close(ready_read)
            os.setsid()
            if os.fork():
                os._exit(0)
            os.chdir("/")
            _detach_descriptors({server.fileno(), ready_write})
            record = {"pid": os.getpid(), "start": _start_ticks(os.getpid()), "address": address, "port": bound_port}
            write_bytes_atomically(pid_file, json.dumps(record).encode("utf-8"), 0o600)
            os.write(ready_write, b"%d" % os.getpid())
            os.close(ready_write)
            _serve_until(server, lifetime, pid_file)
        finally:
            os._exit(0)
    os.close(ready_write)
    os.waitpid(child, 0)
    with os.fdopen(ready_read, "rb") as ready:
        answer = ready.read(32)
    server.server_close()
    if not answer.isdigit():
        raise ArchiveError("The share for %s did not start." % root)
    return {"address": address, "port": bound_port, "pid": int(answer)}


def _recorded(root: str) -> dict | None:
    try:
        fd = os.open(os.path.join(root, PID_FILE), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as handle:
        raw = handle.read(MAX_PID_FILE + 1)
    try:
        record = json.loads(raw) if len(raw) <= MAX_PID_FILE else None
    except ValueError:
        record = None
    if not isinstance(record, dict) or not isinstance(record.get("pid"), int) or record["pid"] <= 1:
        return {}
    return record


def stop(root: str) -> bool:
    """Stop the share of this staging directory if one runs; True if one was stopped. A pid file
    whose process is gone, or is another process by now, is only removed."""
    record = _recorded(root)
    if record is None:
        return False
    stopped = False
    pid = record.get("pid")
    if pid and record.get("start") is not None and _start_ticks(pid) == record["start"]:
        stopped = _terminate(pid, record["start"])
    try:
        os.unlink(os.path.join(root, PID_FILE))
    except OSError:
        pass
    return stopped


def _terminate(pid: int, start_ticks: int) -> bool:
    try:
        os.kill(pid, signal.SIGTERM)
    except OSError:
        return False
    deadline = time.monotonic() + STOP_WAIT_SECONDS
    while time.monotonic() < deadline:
        if _start_ticks(pid) != start_ticks:
            return True
        time.sleep(0.05)
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass
    return True


def running(root: str) -> dict | None:
    """The record of the share that runs for this root, or None."""
    record = _recorded(root)
    if record and record.get("start") is not None and _start_ticks(record["pid"]) == record["start"]:
        return record
    return None
