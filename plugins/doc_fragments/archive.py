# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment:
    # Archive file options shared by image_archive and container_archive.
    DOCUMENTATION = r"""
options:
  compression:
    description:
      - Compression of the archive when writing it.
      - V(auto) picks it from the file name's suffix, V(.tar) (none), V(.tar.gz) or V(.tgz) (gzip),
        V(.tar.zst) (zstd), and fails for any other suffix.
      - When reading, the compression is always detected from the file's first bytes, never from its name,
        and the module decompresses the stream itself, so engines without zstd support (Docker 20.10) load zstd archives too.
      - V(zstd) needs the Python package C(zstandard) on the managed host; it compresses on several threads
        while the engine's stream is read.
    type: str
    choices: [auto, none, gzip, zstd]
    default: auto
  compression_level:
    description:
      - Compression level; V(1) to V(9) for gzip (default V(6)), V(-7) to V(22) for zstd (default V(3)).
    type: int
  checksum:
    description:
      - The SHA-256 the archive file must have, as V(sha256:<hex>) or 64 hex digits. Used when loading or importing,
        ignored when writing, except that M(airgap.docker.image_archive) checks the O(airgap.docker.image_archive#module:from_archive)
        input against it.
      - The module fails before the engine keeps anything when the archive does not match, at once when its sidecar
        records another checksum and otherwise while streaming it to the engine.
      - Give it when the expected checksum comes from a trusted source, such as a signed bundle manifest, rather than
        from the sidecar that travels with the archive.
    type: str
notes:
  - Next to the archive the module writes a small metadata file, C(<path>.airgap.json) (the sidecar), with the
    archive's size and sha256 and what it holds. It lets the controller and a receiving host plan without reading
    the archive, and a load verify the file's size and sha256 before the engine keeps anything. Copy it along with
    the archive. It gets the archive's owner, group and mode, since it records what the archive holds (for a
    container, its environment too). It is never believed about what reaches the engine, which comes from the
    archive's own verified content.
  - What the module verified or wrote is remembered per archive file in the user's cache,
    C(~/.cache/airgap.docker/verified) (or C($XDG_CACHE_HOME/airgap.docker/verified), or C($AIRGAP_DOCKER_CACHE/verified)),
    keyed by the file's device, inode, size, mtime and ctime. A re-run on the unchanged file decides from it at the cost
    of a C(stat); any other file, or a changed one, is read and verified once. Removing that directory is always safe.
  - Archives are written to a temporary file in the same directory, flushed to disk and renamed into place, so an
    interrupted run leaves the previous archive as it was. A run killed outright (SIGKILL) leaves its temporary file
    C(.NAME.XXXX.partial); the next run on the same path removes it, and never the file of a run still writing.
"""
