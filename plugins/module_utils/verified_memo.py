# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What this host has verified about archive files, kept where only the module's user writes.

A sidecar travels with its archive and may have been written by anyone who handled the
medium, so nothing that reaches the engine is taken from it. Once a run has read an archive and
verified it (its own digests, and the checksum when one was given), or has written it itself,
the facts are remembered here under the file's identity: device, inode, size, mtime and ctime.
A later run on the unchanged file decides from this memo at O(1) cost. Any write to the file
changes its ctime, which no unprivileged user can set back, so the memo then misses and the
archive is read and verified again.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat as stat_module

CACHE_ENV = "AIRGAP_DOCKER_CACHE"
SCHEMA = 1


def default_directory() -> str:
    """$AIRGAP_DOCKER_CACHE, else $XDG_CACHE_HOME/airgap.docker, else ~/.cache/airgap.docker; then /verified."""
    base = os.environ.get(CACHE_ENV)
    if not base:
        cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        base = os.path.join(cache, "airgap.docker")
    return os.path.join(base, "verified")


def file_identity(stat_result) -> dict:
    """What must be unchanged for a memo entry to still describe the file."""
    return {"dev": stat_result.st_dev, "ino": stat_result.st_ino, "size": stat_result.st_size,
            "mtime_ns": stat_result.st_mtime_ns, "ctime_ns": stat_result.st_ctime_ns}


def same_file(before, after) -> bool:
    """True when two stats of one open file show it unchanged (a file written while it was read is not vouched for)."""
    return before is not None and after is not None and file_identity(before) == file_identity(after)


class VerifiedMemo:
    """Remembers verified facts per archive file; every failure to read or write it is a miss, never an error."""

    def __init__(self, directory: str | None = None):
        self.directory = directory or default_directory()

    def _entry_path(self, path):
        name = hashlib.sha256(os.path.realpath(path).encode("utf-8", "surrogateescape")).hexdigest()
        return os.path.join(self.directory, name + ".json")

    def _trusted_directory(self):
        """The memo counts only in a directory that the current user owns and no one else may write."""
        try:
            info = os.lstat(self.directory)
        except OSError:
            return False
        return (stat_module.S_ISDIR(info.st_mode) and info.st_uid == os.geteuid()
                and not info.st_mode & (stat_module.S_IWGRP | stat_module.S_IWOTH))

    def recall(self, path: str, kind: str, stat_result) -> dict | None:
        """The facts remembered for exactly this file (stat_result: os.stat of path now), or None."""
        if stat_result is None or not self._trusted_directory():
            return None
        try:
            fd = os.open(self._entry_path(path), os.O_RDONLY | os.O_NOFOLLOW)
        except OSError:
            return None
        try:
            info = os.fstat(fd)
            if info.st_uid != os.geteuid() or info.st_size > (16 << 20):
                return None
            with os.fdopen(fd, "rb", closefd=False) as handle:
                entry = json.loads(handle.read())
        except (OSError, ValueError):
            return None
        finally:
            os.close(fd)
        if not isinstance(entry, dict) or entry.get("schema") != SCHEMA or entry.get("kind") != kind:
            return None
        if entry.get("path") != os.path.realpath(path) or entry.get("identity") != file_identity(stat_result):
            return None
        facts = entry.get("facts")
        return facts if isinstance(facts, dict) else None

    def remember(self, path: str, kind: str, facts: dict, stat_result) -> bool:
        """Record facts verified for the file whose stat (taken from the open file) is stat_result. Best effort."""
        if stat_result is None:
            return False
        entry = {"schema": SCHEMA, "kind": kind, "path": os.path.realpath(path),
                 "identity": file_identity(stat_result), "facts": facts}
        data = json.dumps(entry, sort_keys=True).encode("utf-8")
        try:
            os.makedirs(self.directory, mode=0o700, exist_ok=True)
            if not self._trusted_directory():
                return False
            target = self._entry_path(path)
            temp = "%s.%d.tmp" % (target, os.getpid())
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(temp, target)
        except OSError:
            return False
        return True

    def forget(self, path: str) -> None:
        try:
            os.unlink(self._entry_path(path))
        except OSError:
            pass
