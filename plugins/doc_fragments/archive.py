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
      - Which compression suits which link, with measured sizes and times, is in the collection's C(docs/compression.md).
    type: str
    choices: [auto, none, gzip, zstd]
    default: auto
  compression_level:
    description:
      - Compression level; V(0) to V(9) for gzip (default V(6)), V(-7) to V(22) for zstd.
      - Without it, zstd adapts its level to the stream, between V(1) and V(6), starting at V(3). Every 32 MiB of the
        tar it looks at how the last 32 MiB went. The level falls when compressing holds the stream up, or when the
        machine has no idle CPU left, since on a host that runs the engine too compressing harder slows the engine. The level rises
        when the writer waits for the engine and CPU is idle. Data that compressed to more than 95% of its size (gzip
        layers) goes to V(1) at once, as no higher level shrinks it. A new level starts a new zstd frame. Every zstd reader
        takes such a stream, C(zstd -d) included.
      - An adaptive archive records, in its sidecar and in the result, how many tar bytes each level compressed
        (RV(airgap.docker.image_archive#module:archive.compression_levels)). Its bytes depend on timing, so two saves of
        the same image may differ. Give a level for an archive that must be the same bytes each time it is written
        from scratch (a reproducible bundle); it is then one zstd frame at that level.
      - The level does not decide whether an archive is up to date; an archive written at another level is kept.
    type: int
  checksum:
    description:
      - The SHA-256 the archive file must have, as V(sha256:<hex>) or 64 hex digits. Used when loading or importing,
        ignored when writing, except that M(airgap.docker.image_archive) checks the O(airgap.docker.image_archive#module:from_archive)
        input against it. For an archive held as parts (see O(split_size)), the SHA-256 of the whole archive, the parts
        joined.
      - With O(airgap.docker.image_archive#module:state=inspected) it is only compared. Whether the archive has it is returned
        as RV(airgap.docker.image_archive#module:verified), and a mismatch is no failure.
      - The module fails before the engine keeps anything when the archive does not match, at once when its sidecar
        records another checksum and otherwise while streaming it to the engine.
      - Give it when the expected checksum comes from a trusted source, such as a signed bundle manifest, rather than
        from the sidecar that travels with the archive.
    type: str
  split_size:
    description:
      - When writing the archive (O(airgap.docker.image_archive#module:state=saved),
        O(airgap.docker.container_archive#module:state=exported)), hold an archive larger than this as numbered parts of
        at most this size, for media or links with a file size limit. An archive that fits stays one file.
      - Bytes, or a number with V(K), V(M), V(G) or V(T) (powers of 1024), for example V(4095M) for FAT32, whose largest
        file is 4 GiB - 1 byte. At least V(1M), and at most 999 parts. With V(0) or no value the archive is one file, whatever its size.
      - An archive C(x.tar.zst) of S bytes split at P bytes is held as C(x.tar.zst.part001), C(x.tar.zst.part002), ...,
        every part P bytes but the last, which holds the rest. This is what
        C(split -b P -d -a 3 --numeric-suffixes=1 x.tar.zst x.tar.zst.part) makes of the whole archive, and
        C(cat x.tar.zst.part??? > x.tar.zst) joins them again. The sidecar stays C(x.tar.zst.airgap.json); it records the
        whole archive's size and sha256 and each part's name, size and sha256.
      - The parts are written while the archive streams, each into a temporary file, and put in place only when the whole
        archive was written; the files of an earlier layout that the new one does not use are removed.
      - An archive that is up to date but held as other files (another O(split_size), or none) is laid out again from its
        own bytes, checked against its sha256, without the engine.
      - Reading needs no option. O(path) may name the archive, whose parts are then found next to it, or its first part
        C(x.tar.zst.part001). A whole file at O(path) is read rather than parts beside it.
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
  - An archive held as parts (O(split_size)) is read as one stream, its parts in order. Before anything is read, every
    part must be there, with the sizes of one split and, when a sidecar records them, its sizes; a missing part is named.
    A part that is damaged, or belongs to another archive, fails the checksum of the whole archive while it streams, before
    the engine keeps anything, and is named when the sidecar records the parts' sha256.
"""
