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

The controller keeps a memo of the same kind per bundle directory (VerifiedCache): the checksums
it computed for the bundle's files, and the digest of the manifest it last wrote there.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat as stat_module

from ansible_collections.airgap.docker.plugins.module_utils.atomic_file import PRIVATE_MODE, write_bytes_atomically
from ansible_collections.airgap.docker.plugins.module_utils.checksums import hash_open_file, stat_identity
from ansible_collections.airgap.docker.plugins.module_utils.errors import AirgapError, ArchiveError
from ansible_collections.airgap.docker.plugins.module_utils.file_access import open_regular
from ansible_collections.airgap.docker.plugins.module_utils.sidecar import encode

CACHE_ENV = "AIRGAP_DOCKER_CACHE"
SCHEMA = 1
# A bundle's memo lists a few hundred bytes per file of the bundle; anything larger is not ours.
MAX_BUNDLE_MEMO = 64 << 20


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


def trusted_directory(directory: str) -> bool:
    """A memo counts only in a directory that the current user owns and no one else may write."""
    try:
        info = os.lstat(directory)
    except OSError:
        return False
    return (stat_module.S_ISDIR(info.st_mode) and info.st_uid == os.geteuid()
            and not info.st_mode & (stat_module.S_IWGRP | stat_module.S_IWOTH))


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
        return trusted_directory(self.directory)

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
            write_bytes_atomically(self._entry_path(path), data, PRIVATE_MODE)
        except (AirgapError, OSError):
            return False
        return True

    def forget(self, path: str) -> None:
        try:
            os.unlink(self._entry_path(path))
        except OSError:
            pass


def verified_cache_path(bundle_dir: str) -> str:
    """Where this controller user remembers the checksums it computed for a bundle directory.

    Outside the bundle, in the user's own cache directory: a memo inside the bundle would travel
    with it, and on media prepared by somebody else it could vouch for files it never saw.
    """
    key = hashlib.sha256(os.path.realpath(bundle_dir).encode("utf-8", "surrogateescape")).hexdigest()[:32]
    return os.path.join(default_directory(), key + ".json")


class VerifiedCache:
    """Checksums this controller already computed, keyed by path and the file's identity, so that a
    re-run does not read gigabytes again to learn what it verified before; and the digest of the
    last manifest it wrote into the directory, which tells a manifest of ours from one put there.

    Identity is taken from the open file, before and after hashing (files.hash_open_file): a
    file replaced or altered while it was read is not remembered.
    """

    def __init__(self, bundle_dir: str):
        self.path = verified_cache_path(bundle_dir)
        self.entries = {}
        self.written = {}
        self.parts = {}
        self.dirty = False
        data = self._load()
        if isinstance(data, dict) and isinstance(data.get("files"), dict):
            self.entries = data["files"]
            self.written = data.get("written") if isinstance(data.get("written"), dict) else {}
            self.parts = data.get("parts") if isinstance(data.get("parts"), dict) else {}
        elif isinstance(data, dict):
            self.entries = data  # written by an earlier version: files only

    def _trusted_directory(self):
        return trusted_directory(os.path.dirname(self.path))

    def _load(self):
        if not self._trusted_directory():
            return None
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            return None
        with os.fdopen(fd, "rb") as handle:
            try:
                if os.fstat(fd).st_uid != os.geteuid():
                    return None
                return json.loads(handle.read(MAX_BUNDLE_MEMO))
            except (OSError, ValueError, RecursionError):
                return None

    def sha256(self, relative: str, full_path: str) -> tuple[str, int, bool]:
        """(sha256, size, computed now) of the file, from the memo while the file is the one hashed."""
        try:
            handle = open_regular(full_path)
        except ArchiveError as exc:
            if not os.path.lexists(full_path):
                raise ArchiveError("%s is missing from the bundle." % full_path)
            raise exc
        with handle:
            found = os.fstat(handle.fileno())
            known = self.entries.get(relative)
            if isinstance(known, dict) and known.get("sha256") and known.get("stat") == stat_identity(found):
                return known["sha256"], found.st_size, False
            digest, size, stable = hash_open_file(handle)
        if stable is None:
            self.forget(relative)
        else:
            self.remember(relative, stable, digest)
        return digest, size, True

    def remember(self, relative: str, stat: os.stat_result, digest: str) -> None:
        """Vouch for `digest` while the file has the identity of `stat`, an fstat of the file that was hashed."""
        self.entries[relative] = {"stat": stat_identity(stat), "sha256": digest}
        self.dirty = True

    def forget(self, relative: str) -> None:
        self.dirty = self.entries.pop(relative, None) is not None or self.dirty

    def remember_joined(self, relative: str, part_digests: list[str], digest: str) -> None:
        """Note that parts with `part_digests`, in this order, make the archive `relative` with
        `digest`: a fact about content, so it holds for any files that have those digests."""
        record = {"parts": list(part_digests), "sha256": digest}
        if self.parts.get(relative) != record:
            self.parts[relative] = record
            self.dirty = True

    def joined(self, relative: str) -> tuple[list[str], str] | None:
        """(part digests, archive digest) noted for `relative` by remember_joined, or None."""
        record = self.parts.get(relative)
        if not isinstance(record, dict) or not isinstance(record.get("parts"), list):
            return None
        return record["parts"], record.get("sha256")

    def wrote(self, name: str, digest: str) -> None:
        """Note the digest of a file this controller wrote into the bundle itself (the manifest)."""
        if self.written.get(name) != digest:
            self.written[name] = digest
            self.dirty = True

    def wrote_this(self, name: str, data: bytes) -> bool:
        """True when `data` is what this controller last wrote as `name` into the bundle."""
        return self.written.get(name) == hashlib.sha256(data).hexdigest()

    def save(self) -> None:
        """Write the memo; where it cannot be written the next run simply hashes again."""
        if not self.dirty:
            return
        self.dirty = False
        try:
            os.makedirs(os.path.dirname(self.path), mode=0o700, exist_ok=True)
            if self._trusted_directory():  # a memo others may write to would vouch for nothing
                write_bytes_atomically(self.path, encode({"files": self.entries, "written": self.written, "parts": self.parts}), PRIVATE_MODE)
        except (AirgapError, OSError):
            pass  # only an optimization: without it the next run hashes again
