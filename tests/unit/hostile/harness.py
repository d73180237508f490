# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Runs one hostile archive through image_transfer.scan_archive in a child process.

The child gets an address-space limit (RLIMIT_AS), so a case that tries to allocate without
bound fails there instead of taking the machine; the parent gives it a wall-clock timeout. The
child reports what scan_archive raised, the seconds the scan took (measured inside the child,
so interpreter start-up does not count) and its peak RSS (VmHWM, interpreter included).

Before it measures anything the child imports what a module process holds when it scans an
archive (AnsibleModule's module_utils, the Docker SDK, zstandard: about 33 MB of RSS, against
21 MB for the scanner alone), so the peak it reports is the module's, not a bare interpreter's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass

import ansible_collections

# What the child may map in all: far above the 100 MB of RSS a run may use, far below the machine.
ADDRESS_SPACE = 400 << 20
# Wall clock for the whole child, start-up included; the scan itself must take under a second.
TIMEOUT = 30

_CHILD = r"""
import json, resource, sys, time
limit = int(sys.argv[2])
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
# What a module process has loaded when it scans: part of every peak, as in a module run.
import ansible.module_utils.basic, docker, zstandard
from ansible_collections.airgap.docker.plugins.module_utils import image_transfer
from ansible_collections.airgap.docker.plugins.module_utils.errors import AirgapError
def peak_rss():
    # VmHWM: this process's own high-water mark (ru_maxrss keeps the parent's across exec).
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmHWM:"))
baseline = peak_rss()
started, cpu_started = time.perf_counter(), time.process_time()
outcome = {"result": "accepted", "message": ""}
try:
    image_transfer.scan_archive(sys.argv[1])
except AirgapError as exc:
    outcome.update(result=type(exc).__name__, message=exc.msg)
except BaseException as exc:  # MemoryError, RecursionError, ...: what a hostile file must never cause
    outcome.update(result=type(exc).__name__, message=repr(exc)[:500])
outcome["seconds"] = time.perf_counter() - started
outcome["cpu_seconds"] = time.process_time() - cpu_started
outcome["peak_rss"] = peak_rss()
outcome["baseline_rss"] = baseline
print(json.dumps(outcome))
"""


@dataclass
class Outcome:
    """What scan_archive did with one file in the child."""

    result: str  # the exception's class name, or "accepted"
    message: str
    seconds: float  # wall clock of the scan
    cpu_seconds: float  # CPU time of the scan, all threads: its work, whatever else runs on the machine
    peak_rss: int  # bytes
    baseline_rss: int  # bytes, after the imports and before the scan


def collection_root():
    """The directory holding ansible_collections/airgap/docker (set up by tests/unit/conftest.py)."""
    return os.path.dirname(next(iter(ansible_collections.__path__)))


def run_case(path, address_space=ADDRESS_SPACE, timeout=TIMEOUT):
    """scan_archive(path) in a child under the limits; Outcome, or AssertionError on a timeout."""
    env = dict(os.environ, PYTHONPATH=collection_root())
    try:
        done = subprocess.run([sys.executable, "-c", _CHILD, str(path), str(address_space)], env=env,
                              capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise AssertionError("scanning %s did not end within %d seconds" % (path, timeout))
    lines = done.stdout.strip().splitlines()
    if done.returncode or not lines:
        raise AssertionError("the child scanning %s failed (exit %d): %s" % (path, done.returncode, done.stderr[-2000:]))
    return Outcome(**json.loads(lines[-1]))
