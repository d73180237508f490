# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Image names on Podman, read and written the way Docker reads and writes them.

Podman stores every name fully qualified. A name without a registry, loaded from an archive or
built or tagged with Podman, is stored under the pseudo-registry `localhost/` (`steer/app:1` is
`localhost/steer/app:1`); a name from Docker Hub keeps `docker.io/` (`docker.io/library/busybox:1`).
Its Docker-compatible API finds short names (it tries `localhost/` first) but shows, and writes
into `docker save` archives, the stored names. Docker would then keep `localhost/steer/app:1`,
a different image name.

So on a Podman engine the collection reads `localhost/x` as the registry-less `x`, tags
registry-less names under `localhost/` (where Podman's own loads put them, and where its lookup
looks first), and rewrites the names in a save's `manifest.json` and `repositories` to the
familiar form, every other byte of the archive passing through untouched. A load gives Podman an
archive's Docker view (docker_archive_view).
"""

from __future__ import annotations

import json
from typing import Callable, Iterable, Iterator

from ansible_collections.airgap.docker.plugins.module_utils.errors import ArchiveError
from ansible_collections.airgap.docker.plugins.module_utils.oci_layout import tar_member
from ansible_collections.airgap.docker.plugins.module_utils.references import familiar_repo, has_registry, split_reference

PODMAN_REGISTRY = "localhost/"
BLOCK = 512
# The archive's name documents are rewritten in memory: one entry per image and tag, a few
# hundred bytes each. Larger ones are not Podman's saves and are refused.
MAX_NAME_DOCUMENT = 16 << 20
# Go's archive/tar reads no PAX header or GNU long name larger than this.
MAX_SPECIAL = 1 << 20
NAME_DOCUMENTS = ("manifest.json", "repositories")
_REGULAR = (b"0", b"\0", b"7")
_SPECIAL = (b"x", b"g", b"L", b"K")
_HEADER_ONLY = (b"1", b"2", b"3", b"4", b"5", b"6")  # links, devices, directories, FIFOs: Go reads no body


def is_podman(version):
    """True when an engine's /version answer comes from Podman."""
    return any("podman" in str(component.get("Name", "")).lower() for component in version.get("Components") or [])


def familiar_repository(repo):
    """`localhost/steer/app` -> `steer/app`; `docker.io/library/busybox` -> `busybox`."""
    if repo.startswith(PODMAN_REGISTRY):
        repo = repo[len(PODMAN_REGISTRY):]
    return familiar_repo(repo)


def familiar_name(ref):
    """A stored `repo:tag` in the form Docker prints; `<none>` names pass unchanged."""
    repo, tag = split_reference(ref)[:2]
    if repo == "<none>" or tag is None:
        return ref
    return "%s:%s" % (familiar_repository(repo), tag)


def familiar_names(refs):
    """familiar_name of each, without duplicates, in order."""
    names = []
    for ref in refs or []:
        name = familiar_name(ref)
        if name not in names:
            names.append(name)
    return names


def podman_reference(ref):
    """The name to tag on Podman for a familiar `repo:tag`: registry-less names under `localhost/`."""
    repo, tag = split_reference(ref)[:2]
    return ref if has_registry(repo) else "%s%s:%s" % (PODMAN_REGISTRY, repo, tag)


def rename_document(name, body):
    """manifest.json or repositories of a save, with its image names in familiar form."""
    try:
        document = json.loads(body)
    except ValueError as exc:
        raise ArchiveError("Podman's save has an unreadable %s (%s)." % (name, exc))
    if name == "manifest.json" and isinstance(document, list):
        for entry in document:
            if isinstance(entry, dict) and isinstance(entry.get("RepoTags"), list):
                entry["RepoTags"] = familiar_names(entry["RepoTags"])
    elif name == "repositories" and isinstance(document, dict):
        renamed = {}
        for repo, tags in document.items():
            renamed.setdefault(familiar_repository(repo), {}).update(tags if isinstance(tags, dict) else {})
        document = renamed
    else:
        raise ArchiveError("Podman's save has a %s of an unknown form." % name)
    return json.dumps(document, separators=(",", ":")).encode()


class _Chunks:
    """Exact reads and pass-through reads over an iterable of byte blocks. A block that passes
    through whole is yielded as it came; only the pieces of a block cut at a member's end are
    copied, each byte once."""

    def __init__(self, blocks):
        self._blocks = iter(blocks)
        self._held = memoryview(b"")  # the rest of a block cut by an earlier read

    def _take(self, size):
        """Up to size bytes: of the held block, else of the next non-empty one; empty at the end."""
        if not self._held:
            block = next((block for block in self._blocks if block), None)
            if block is None:
                return b""
            if len(block) <= size:
                return block
            self._held = memoryview(block)
        piece, self._held = self._held[:size], self._held[size:]
        return bytes(piece)

    def read(self, size):
        """Up to size bytes (fewer only at the end of the stream)."""
        pieces, have = [], 0
        while have < size:
            piece = self._take(size - have)
            if not piece:
                break
            pieces.append(piece)
            have += len(piece)
        return b"".join(pieces)

    def pass_through(self, size, source):
        """Yield the next size bytes as they arrive, without joining them."""
        while size > 0:
            piece = self._take(size)
            if not piece:
                raise ArchiveError("%s ended in the middle of a member." % source)
            size -= len(piece)
            yield piece

    def rest(self):
        if self._held:
            yield bytes(self._held)
            self._held = memoryview(b"")
        yield from self._blocks


def _header_size(header, source):
    field = header[124:136]
    if field[0] & 0x80:  # base-256, as Go writes sizes of 8 GiB and more
        return int.from_bytes(field[1:], "big")
    text = field.split(b"\0", 1)[0].strip()
    try:
        return int(text or b"0", 8)
    except ValueError:
        raise ArchiveError("%s has a tar header with an invalid size." % source)


def _header_name(header, extended):
    """The member's name: from a GNU long name or PAX path before it, else from the header."""
    for special in extended:
        kind, body = special[156:157], special[BLOCK:]
        if kind == b"L":
            return body.split(b"\0", 1)[0].decode("utf-8", "replace")
        if kind == b"x":
            for record in body.split(b"\n"):
                key, equals, value = record.partition(b"=")
                if equals and key.endswith(b" path"):
                    return value.decode("utf-8", "replace")
    name = header[0:100].split(b"\0", 1)[0]
    if header[257:262] == b"ustar" and header[345:346] != b"\0":
        name = header[345:500].split(b"\0", 1)[0] + b"/" + name
    return name.decode("utf-8", "replace")


def _member_name(name):
    while name.startswith("./"):
        name = name[2:]
    return name


def _padding(size):
    return -size % BLOCK


def _edit_members(blocks, names, edit, before_end, source):
    """Walk a tar stream, passing every byte through but the top-level regular members in names
    (of at most MAX_NAME_DOCUMENT bytes): for each, yield what edit(name, body, raw, extended)
    returns (raw: the member's bytes as read, its PAX and GNU headers included; extended: those
    headers). before_end() gives what to yield in front of the end-of-archive marker. source names
    the stream in errors."""
    chunks = _Chunks(blocks)
    extended = []  # PAX and GNU headers, with bodies, waiting for the member they describe
    while True:
        header = chunks.read(BLOCK)
        if len(header) < BLOCK:
            raise ArchiveError("%s ended before its end-of-archive marker." % source)
        if header == bytes(BLOCK):
            yield from extended
            yield before_end()
            yield header
            yield from chunks.rest()
            return
        kind, size = header[156:157], _header_size(header, source)
        if kind in _SPECIAL:
            if size > MAX_SPECIAL:
                raise ArchiveError("%s has an extended tar header larger than 1 MiB." % source)
            extended.append(header + chunks.read(size + _padding(size)))
            continue
        name = _member_name(_header_name(header, extended)) if kind in _REGULAR else None
        if name in names and size <= MAX_NAME_DOCUMENT:
            padded = chunks.read(size + _padding(size))
            yield edit(name, padded[:size], b"".join(extended) + header + padded, extended)
        else:
            yield from extended
            yield header
            yield from chunks.pass_through(0 if kind in _HEADER_ONLY else size + _padding(size), source)
        extended = []


def familiar_archive_names(blocks: Iterable[bytes]) -> Iterator[bytes]:
    """Yield the tar stream of a Podman save with familiar names in its name documents."""
    def rename(name, body, _raw, extended):
        # A new member; of the headers before the old one only global ones (`g`) stay, the others
        # described it.
        kept = b"".join(special for special in extended if special[156:157] == b"g")
        return kept + tar_member(name, rename_document(name, body))

    return _edit_members(blocks, NAME_DOCUMENTS, rename, lambda: b"", "Podman's save")


def docker_archive_view(blocks: Iterable[bytes], complete: Callable[[], bool]) -> Iterator[bytes]:
    """Yield an archive for a load into Podman: without its OCI index (`index.json`, `oci-layout`)
    when it also has a `manifest.json` and complete() says at its end that no image is thin.

    Podman reads an archive with an OCI index as an OCI layout: it then names the images after the
    index (`docker.io/...`), and keeps the manifests as written, which Podman 4 cannot save again
    when they mix Docker and OCI layer types (as Docker 25+ writes them). From `manifest.json` it
    names them as Docker 20.10's archives do (`localhost/...`) and writes manifests of its own. A
    thin archive keeps its index: Podman reads the layers a `manifest.json` lists from the tar only.
    The two members are held back (a few hundred bytes) and sent, when kept, before the end of the tar.
    """
    held, seen = [], set()

    def hold(name, _body, raw, _extended):
        seen.add(name)
        if name == "manifest.json":
            return raw
        held.append(raw)
        return b""

    def before_end():
        return b"" if "manifest.json" in seen and complete() else b"".join(held)

    return _edit_members(blocks, ("manifest.json", "index.json", "oci-layout"), hold, before_end, "The archive")
