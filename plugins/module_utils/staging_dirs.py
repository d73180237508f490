# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A private staging directory and its subdirectories, made or checked in one pass.

Staging directories usually lie under world-writable /var/tmp, where anyone may have put a symbolic
link in their place first: nothing here follows one. What would change is decided before anything
is done, so that check mode reports it truthfully.
"""

from __future__ import annotations

import os
import pwd
import stat

from ansible_collections.airgap.docker.plugins.module_utils.errors import InvalidInput, UnsafePath, os_error


def directories(path: str, subdirs) -> list:
    """`path`, the missing parents before it, and each subdirectory (and the parents it implies), in creation order."""
    if not os.path.isabs(path):
        raise InvalidInput("The staging directory %r must be an absolute path." % path)
    path = os.path.normpath(path)
    wanted = _missing_parents(path) + [path]
    for sub in subdirs:
        parts = sub.strip("/").split("/")
        if os.path.isabs(sub) or not sub.strip("/") or any(p in ("", ".", "..") for p in parts):
            raise InvalidInput("The subdirectory %r must be a relative path inside the staging directory, without . or .. parts." % sub)
        for depth in range(1, len(parts) + 1):
            candidate = os.path.join(path, *parts[:depth])
            if candidate not in wanted:
                wanted.append(candidate)
    return wanted


def _missing_parents(path):
    parents = []
    parent = os.path.dirname(path)
    while parent != os.path.dirname(parent) and not os.path.lexists(parent):
        parents.insert(0, parent)
        parent = os.path.dirname(parent)
    return parents


def parse_mode(text) -> int:
    """`0700` or `700` as a number; only permission bits."""
    text = str(text)
    if not text or len(text) > 4 or any(c not in "01234567" for c in text):
        raise InvalidInput("The mode %r is not an octal permission such as 0700." % text)
    return int(text, 8)


def owner_uid(owner) -> int | None:
    """The uid of a user name or number; None keeps each directory's owner."""
    if owner in (None, ""):
        return None
    if str(owner).isdigit():
        return int(owner)
    try:
        return pwd.getpwnam(owner).pw_uid
    except KeyError:
        raise InvalidInput("The owner %r is not a user of this host." % owner) from None


def plan(paths, mode: int, uid) -> list:
    """What each directory needs: (path, actions, before, after); actions among create, chmod, chown."""
    steps = []
    for path in paths:
        try:
            info = os.lstat(path)
        except FileNotFoundError:
            steps.append((path, ["create"], None, _state(mode, uid if uid is not None else os.geteuid())))
            continue
        if stat.S_ISLNK(info.st_mode):
            raise UnsafePath("%s is a symbolic link; a staging directory must be a real directory, "
                             "since a link in its place could send the archives elsewhere." % path)
        if not stat.S_ISDIR(info.st_mode):
            raise UnsafePath("%s exists and is not a directory." % path)
        before = _state(stat.S_IMODE(info.st_mode), info.st_uid)
        after = _state(mode, uid if uid is not None else info.st_uid)
        actions = [name for name, key in (("chmod", "mode"), ("chown", "uid")) if before[key] != after[key]]
        steps.append((path, actions, before, after))
    return steps


def _state(mode, uid):
    return {"mode": "%04o" % mode, "uid": uid}


def apply(steps, mode: int, uid) -> None:
    """Carry out a plan. Each directory is opened without following a link, and changed through that
    descriptor, so a link planted after the plan was made is refused, not followed."""
    for path, actions, _before, _after in steps:
        if not actions:
            continue
        if "create" in actions:
            try:
                os.mkdir(path, mode)
            except FileExistsError:
                pass  # made meanwhile by someone else: checked below like any other
            except OSError as exc:
                raise os_error(exc, path, "creating") from None
        try:
            fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        except OSError as exc:
            raise UnsafePath("%s cannot be used as a staging directory: %s." % (path, exc.strerror or exc)) from None
        try:
            os.fchmod(fd, mode)  # whatever the umask made of mkdir's mode
            if uid is not None and os.fstat(fd).st_uid != uid:
                os.fchown(fd, uid, -1)
        except OSError as exc:
            raise os_error(exc, path, "setting the mode and owner of") from None
        finally:
            os.close(fd)
