# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Progress lines of a long transfer at -v: every tenth of the way or every 30 seconds, whichever comes
first, with the bytes, the rate and the time left, and a last line when it ends.

The connection moves the bytes in a call that does not return until it is done, so a daemon thread
looks at how far it is, once a second: from the growing file (fetch) or from the position of a
descriptor open on the file being sent (push, see open_position). Below -v no thread is started.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Callable

from ansible.utils.display import Display

from ansible_collections.airgap.docker.plugins.module_utils.disk_space import human_size
from ansible_collections.airgap.docker.plugins.module_utils.progress import duration

display = Display()

POLL_SECONDS = 1.0
EVERY_SECONDS = 30.0
EVERY_FRACTION = 0.1


class Progress:
    """Reports the transfer of `total` bytes, of which `start` were there before this run.

    probe() returns the bytes there now (start included), or None when it cannot tell."""

    def __init__(self, label: str, total: int, probe: Callable[[], int | None] | None, start: int = 0,
                 host: str | None = None, clock: Callable[[], float] = time.monotonic):
        self.label, self.total, self.probe, self.start, self.host = label, total, probe, start, host
        self.clock = clock
        self.began = clock()
        self.last_line = self.began
        self.next_mark = self._mark_after(start)
        self._stop = threading.Event()
        self._thread = None

    @property
    def shown(self) -> bool:
        return display.verbosity >= 1

    def __enter__(self):
        if not self.shown:
            return self
        resumed = " (%s already there)" % human_size(self.start) if self.start else ""
        self._say("%s to move of %s%s" % (human_size(self.total - self.start), human_size(self.total), resumed))
        if self.probe is not None:
            self._thread = threading.Thread(target=self._watch, name="airgap-progress", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, kind, value, traceback):
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if not self.shown:
            return
        if kind is None:
            elapsed = max(self.clock() - self.began, 1e-6)
            moved = self.total - self.start
            self._say("done, %s moved in %.1f s (%s/s)" % (human_size(moved), elapsed, human_size(moved / elapsed)))
        else:
            done = self._probe()
            self._say("stopped%s" % ("" if done is None else " at %s of %s" % (human_size(done), human_size(self.total))))

    def _watch(self):
        while not self._stop.wait(POLL_SECONDS):
            self.tick()

    def tick(self, now: float | None = None) -> None:
        """Print a line when a tenth more is done, or 30 s passed since the last line."""
        done = self._probe()
        if done is None:
            return
        now = self.clock() if now is None else now
        if done < self.next_mark and now - self.last_line < EVERY_SECONDS:
            return
        self.last_line, self.next_mark = now, self._mark_after(done)
        self._say(self._line(done, now))

    def _line(self, done, now):
        elapsed = now - self.began
        rate = (done - self.start) / elapsed if elapsed > 0 else 0.0
        left = "about %s left" % duration((self.total - done) / rate) if rate > 0 else "time left unknown"
        percent = 100.0 * done / self.total if self.total else 100.0
        return "%s of %s (%.0f%%), %s/s, %s" % (human_size(done), human_size(self.total), percent, human_size(rate), left)

    def _mark_after(self, done):
        step = max(int(self.total * EVERY_FRACTION), 1)
        return (done // step + 1) * step

    def _probe(self):
        try:
            return None if self.probe is None else self.probe()
        except OSError:
            return None

    def _say(self, text):
        display.v("%s: %s" % (self.label, text), host=self.host)


def open_position(path: str) -> int | None:
    """How far a reader has got in the local file `path`: the position of a descriptor open on it, in
    this process or one of its children (the sftp or scp a connection runs), from /proc (Linux).
    None when no such descriptor is found, or it has not moved yet."""
    try:
        wanted = os.stat(path)
    except OSError:
        return None
    key = (wanted.st_dev, wanted.st_ino)
    for pid in [os.getpid()] + _descendants(os.getpid()):
        position = _position_in(pid, key)
        if position:
            return position
    return None


def _descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        parent = todo.pop()
        for child in _children(parent):
            if child not in found:
                found.append(child)
                todo.append(child)
    return found


def _children(pid):
    """Children of every thread of `pid` (/proc/PID/task/TID/children; the kernel may not offer it)."""
    children = []
    try:
        tasks = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return children
    for task in tasks:
        try:
            with open("/proc/%d/task/%s/children" % (pid, task)) as handle:
                children.extend(int(word) for word in handle.read().split())
        except (OSError, ValueError):
            continue
    return children


def _position_in(pid, key):
    try:
        fds = os.listdir("/proc/%d/fd" % pid)
    except OSError:
        return None
    for fd in fds:
        try:
            found = os.stat("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        if (found.st_dev, found.st_ino) == key:
            return _fdinfo_position(pid, fd)
    return None


def _fdinfo_position(pid, fd):
    try:
        with open("/proc/%d/fdinfo/%s" % (pid, fd)) as handle:
            for line in handle:
                if line.startswith("pos:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None
