# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import time

import pytest

from ansible_collections.airgap.docker.plugins.module_utils.directory_lock import DirectoryLock, LockTimeout

# DirectoryLock --------------------------------------------------------------------------------

HOLDER = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDONLY | os.O_DIRECTORY)
fcntl.flock(fd, fcntl.LOCK_SH if sys.argv[2] == "shared" else fcntl.LOCK_EX)
print("locked", flush=True)
time.sleep(float(sys.argv[3]))
"""


@contextlib.contextmanager
def lock_holder(directory, kind="exclusive", seconds=120):
    child = subprocess.Popen([sys.executable, "-c", HOLDER, str(directory), kind, str(seconds)], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "locked"
        yield child
    finally:
        child.kill()
        child.wait()


def test_a_second_writer_fails_with_a_sentence_after_the_timeout(tmp_path):
    (tmp_path / "manifest.json").write_bytes(b"kept")
    with lock_holder(tmp_path):
        started = time.monotonic()
        with pytest.raises(LockTimeout) as info, DirectoryLock(str(tmp_path), 0.5, what="the bundle"):
            (tmp_path / "manifest.json").write_bytes(b"overwritten")
        assert time.monotonic() - started >= 0.5
    assert info.value.msg.startswith("Another run is using the bundle %s" % tmp_path)
    assert "after 0.5 second(s); nothing was changed, run again once it is done." in info.value.msg
    assert (tmp_path / "manifest.json").read_bytes() == b"kept"


def test_a_second_writer_waits_for_the_first(tmp_path):
    with lock_holder(tmp_path, seconds=1):
        started = time.monotonic()
        with DirectoryLock(str(tmp_path), 30):
            waited = time.monotonic() - started
    assert 0.5 < waited < 25


def test_a_killed_writer_holds_no_lock(tmp_path):
    with lock_holder(tmp_path) as child:
        child.send_signal(signal.SIGKILL)
        child.wait()
        with DirectoryLock(str(tmp_path), 0):
            pass


def test_readers_share_the_lock_and_wait_for_a_writer(tmp_path):
    with lock_holder(tmp_path, "shared"):
        with DirectoryLock(str(tmp_path), 0, shared=True):
            pass
        with pytest.raises(LockTimeout, match="Another run is using"), DirectoryLock(str(tmp_path), 0):
            pass
    with lock_holder(tmp_path), pytest.raises(LockTimeout, match="Another run is writing"), DirectoryLock(str(tmp_path), 0, shared=True):
        pass


def test_a_missing_directory_needs_no_lock(tmp_path):
    with DirectoryLock(str(tmp_path / "not-yet"), 0) as lock:
        assert lock.fd is None
