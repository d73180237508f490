# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The POSIX sh commands the transfer plugins send to a managed host, and how their output is read.

Only what GNU coreutils and busybox both have: the host needs no Python for a transfer.
"""

from __future__ import annotations

import shlex

from ansible_collections.airgap.docker.plugins.plugin_utils import resume

# A file's size without reading it (stat), or by reading it where stat lacks -c.
SIZE_FUNCTION = 'sz() { stat -c %s -- "$1" 2>/dev/null || wc -c < "$1"; }; '
PROBE_MARK = "@partial"
NOT_A_FILE = "other"


def q(path: str) -> str:
    return shlex.quote(path)


def survey(directory: str, paths: list[str]) -> str:
    """Free space in `directory` (df -Pk), then one line per path: whether a partial copy is there, and its size.
    A symbolic link, FIFO or device under the name is reported as such and never opened."""
    probes = " ".join(q(p) for p in paths)
    return (SIZE_FUNCTION + "df -Pk %s; for p in %s; do "
            'if [ -h "$p" ] || { [ -e "$p" ] && [ ! -f "$p" ]; }; then echo "%s %s"; '
            'elif [ -f "$p" ]; then echo "%s file $(sz "$p")"; else echo "%s none"; fi; done'
            % (q(directory), probes, PROBE_MARK, NOT_A_FILE, PROBE_MARK, PROBE_MARK))


def parse_survey(out: str) -> tuple[int | None, list[tuple[str, int]]]:
    """(free bytes or None, [(state, size)] in the order asked): state is "file", "none" or NOT_A_FILE."""
    df_lines, found = [], []
    for line in out.splitlines():
        words = line.split()
        if words and words[0] == PROBE_MARK:
            size = int(words[2]) if len(words) > 2 and words[2].isdigit() else 0
            found.append((words[1] if len(words) > 1 else NOT_A_FILE, size))
        elif words:
            df_lines.append(words)
    try:
        free = int(df_lines[-1][3]) * 1024
    except (IndexError, ValueError):
        free = None
    return free, found


def hash_blocks(path: str, spans: list[tuple[int, int]]) -> str:
    """sha256 of each span of the file, one line each (`<hex>  -`). Full blocks go through one loop,
    so the command stays short whatever the file's size."""
    unit, per_block = resume.UNIT, resume.BLOCK // resume.UNIT
    full = [s for s in spans if s[1] == resume.BLOCK]
    rest = spans[len(full):]
    command = ['f=%s; i=0; while [ "$i" -lt %d ]; do dd if="$f" bs=%d skip=$((i * %d)) count=%d 2>/dev/null | sha256sum || exit 1; '
               "i=$((i + 1)); done" % (q(path), len(full), unit, per_block, per_block)]
    for offset, length in rest:
        command.append('dd if="$f" bs=%d skip=%d count=%d 2>/dev/null | sha256sum || exit 1' % (unit, offset // unit, -(-length // unit)))
    return "; ".join(command)


def parse_digests(out: str) -> list[str]:
    return [line.split()[0] for line in out.splitlines() if line.split() and len(line.split()[0]) == 64]


def truncate(path: str, size: int) -> str:
    """Cut the file to `size` bytes: truncate(1), else dd, which cuts its output where it starts writing."""
    return "truncate -s %d -- %s 2>/dev/null || dd if=/dev/null of=%s bs=1 seek=%d 2>/dev/null" % (size, q(path), q(path), size)


def append_chunk(chunk: str, partial: str, length: int, total: int) -> str:
    """Append a chunk that arrived whole to the partial copy, remove it, and check the partial's new size."""
    return (SIZE_FUNCTION + '[ "$(sz %s)" = %d ] && cat -- %s >> %s && rm -f -- %s && [ "$(sz %s)" = %d ]'
            % (q(chunk), length, q(chunk), q(partial), q(chunk), q(partial), total))


def read_chunk(src: str, chunk: str, offset: int, length: int) -> str:
    """Copy `length` bytes of `src` from `offset` (a multiple of resume.UNIT) into the file `chunk`, and check its size."""
    unit = resume.UNIT
    return (SIZE_FUNCTION + 'rm -f -- %s && dd if=%s of=%s bs=%d skip=%d count=%d 2>/dev/null && [ "$(sz %s)" = %d ]'
            % (q(chunk), q(src), q(chunk), unit, offset // unit, -(-length // unit), q(chunk), length))


def size_is(path: str, size: int) -> str:
    """Exit 0 when the file has `size` bytes, else print its size and exit 3."""
    return SIZE_FUNCTION + 'got=$(sz %s); [ "$got" = %d ] || { echo "$got"; exit 3; }' % (q(path), size)


def join_parts(joined: str, parts: list[tuple[str, str]]) -> str:
    """Append each part to a new file `joined`, hashing what is appended; print `ok N` per part that has
    the sha256 given, and at the first that does not, `bad N <digest>`, remove the joined file and stop.
    `parts`: [(path, sha256)]. The joined file is made anew, never through a link put under its name."""
    lines = ["j=%s; rm -f -- \"$j\" && (set -C; : > \"$j\") || exit 4" % q(joined)]
    for number, (path, sha256) in enumerate(parts, 1):
        lines.append('d=$(tee -a "$j" < %s | sha256sum); d=${d%%%% *}; '
                     'if [ "$d" = %s ]; then echo "ok %d"; else echo "bad %d $d"; rm -f -- "$j"; exit 0; fi'
                     % (q(path), q(sha256), number, number))
    return "; ".join(lines)


def parse_join(out: str) -> tuple[int, str] | None:
    """(part number, digest) of the first part that did not match, or None when every part matched."""
    for line in out.splitlines():
        words = line.split()
        if len(words) >= 2 and words[0] == "bad" and words[1].isdigit():
            return int(words[1]), words[2] if len(words) > 2 else ""
    return None
