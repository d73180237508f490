# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Copy an archive (whole, or as the parts a bundle holds it in) and its sidecar from a bundle on the
controller to the remote host, streamed, resuming what an earlier copy left half-way."""

from __future__ import annotations

import os
import posixpath
import shlex
import tempfile
import uuid
from typing import NamedTuple

from ansible.errors import AnsibleError

from ansible_collections.airgap.docker.plugins.module_utils import archive_parts, bundle
from ansible_collections.airgap.docker.plugins.module_utils.checksums import parse_sha256
from ansible_collections.airgap.docker.plugins.module_utils.disk_space import human_size
from ansible_collections.airgap.docker.plugins.module_utils.errors import ArchiveError, ChecksumMismatch, InvalidInput, SpaceError
from ansible_collections.airgap.docker.plugins.module_utils.file_access import open_regular
from ansible_collections.airgap.docker.plugins.module_utils.sidecar import SUFFIX
from ansible_collections.airgap.docker.plugins.plugin_utils import remote_shell, resume
from ansible_collections.airgap.docker.plugins.plugin_utils.progress import Progress, open_position
from ansible_collections.airgap.docker.plugins.plugin_utils.transfer import TransferAction

_COPY = 1 << 20


class Piece(NamedTuple):
    """One file that travels on its own: the whole archive, or one of its parts."""

    label: str  # its path in the bundle, for messages
    local: str
    size: int | None
    sha256: str
    partial: str  # its partial copy on the host, named after its content and the inventory host


class ActionModule(TransferAction):
    ARGUMENT_SPEC = dict(
        bundle=dict(type="path", required=True),
        path=dict(type="str", required=True),
        dest=dict(type="str", required=True),
        sha256=dict(type="str"),
        size=dict(type="int"),
        parts=dict(type="list", elements="dict", options=dict(
            path=dict(type="str", required=True),
            size=dict(type="int", required=True),
            sha256=dict(type="str", required=True),
        )),
    )

    def transfer(self, args):
        src = bundle.bundle_file(args["bundle"], args["path"])
        dest = args["dest"]
        if not posixpath.isabs(dest):
            raise ArchiveError("dest must be an absolute path on the remote host, not %r." % dest)
        sidecar = (src + SUFFIX, dest + SUFFIX)
        pieces = self._pieces(args, src, dest)
        wanted = [p.local for p in pieces] or [src]
        missing = [local for local in wanted + [sidecar[0]] if not os.path.isfile(local)]
        if self._task.check_mode:
            # In check mode the archive may not have reached the controller yet.
            size = None if missing else sum(os.path.getsize(local) for local in wanted + [sidecar[0]])
            return {"changed": True, "dest": dest, "bytes": size,
                    "msg": "would copy %s (%s)" % (args["path"], "size not known yet" if size is None else human_size(size))}
        if missing:
            raise ArchiveError("%s is missing on the controller." % missing[0])
        if not pieces:
            return self._push_once(args["path"], src, dest, sidecar)
        return self._push_resumable(args, pieces, dest, sidecar)

    def _pieces(self, args, src, dest):
        """What travels, each with its partial copy's name on the host; [] without a sha256 (no resume)."""
        if args["parts"] and (args["sha256"] is None or args["size"] is None):
            raise InvalidInput("parts needs the sha256 and size of the whole archive too.")
        if args["sha256"] is None:
            return []
        tag = resume.short_hash(self.host_label())
        sha256 = parse_sha256(args["sha256"])
        if not args["parts"]:
            return [Piece(args["path"], src, args["size"], sha256, "%s.%s-%s.partial" % (dest, sha256[:16], tag))]
        pieces = []
        for number, part in enumerate(args["parts"], 1):
            relative = bundle.safe_relative_path(part["path"])
            if relative != archive_parts.part_name(args["path"], number):
                raise InvalidInput("Part %d of %s must be %s, not %r." % (number, args["path"], archive_parts.part_name(args["path"], number), relative))
            digest = parse_sha256(part["sha256"])
            pieces.append(Piece(relative, bundle.bundle_file(args["bundle"], relative), part["size"], digest,
                                "%s.part%03d.%s-%s.partial" % (dest, number, digest[:16], tag)))
        if sum(p.size for p in pieces) != args["size"]:
            raise InvalidInput("The parts of %s add up to %d bytes, not its size %d." % (args["path"], sum(p.size for p in pieces), args["size"]))
        return pieces

    # Without a checksum: one copy under a name of its own, removed when it fails (as before resume).

    def _push_once(self, path, src, dest, sidecar):
        files = [(src, dest), sidecar]
        size = sum(os.path.getsize(local) for local, _remote in files)
        self._check_space(posixpath.dirname(dest), size, self.remote_free_bytes(posixpath.dirname(dest)))
        # A name of its own per copy: two inventory hosts may share a machine and a staging directory.
        suffix = ".%s.partial" % uuid.uuid4().hex[:12]
        try:
            with Progress(self._label(path), os.path.getsize(src), self._sent_so_far, host=self.host_label()):
                self._put(src, dest + suffix, 0)
            self._connection.put_file(sidecar[0], sidecar[1] + suffix)
        except AnsibleError as exc:
            self._remove([remote + suffix for _local, remote in files])
            raise AnsibleError("Copying %s to %s failed: %s. Its partial copy was removed if the host could still be reached."
                               % (path, dest, exc.message))
        # The archive first, then its sidecar: a sidecar never describes a file it was not written for.
        renames = " && ".join("mv -f %s %s" % (shlex.quote(r + suffix), shlex.quote(r)) for _local, r in files)
        self.remote_command(renames, "Moving %s into place" % dest)
        return {"changed": True, "dest": dest, "bytes": size, "msg": "copied %s (%s)" % (path, human_size(size))}

    # With a checksum: partial copies named after their content, resumed by the next run.

    def _push_resumable(self, args, pieces, dest, sidecar):
        pieces = [p._replace(size=self._local_size(p)) for p in pieces]
        directory = posixpath.dirname(dest)
        free, states = remote_shell.parse_survey(self.remote_command(remote_shell.survey(directory, [p.partial for p in pieces]),
                                                                     "Looking at %s" % directory))
        found = self._partial_sizes(pieces, states)
        whole = sum(p.size for p in pieces)
        # The parts and the archive they are joined into are on the host together until the join ends.
        needed = sum(p.size - min(h, p.size) for p, h in zip(pieces, found)) + (whole if len(pieces) > 1 else 0)
        self._check_space(directory, needed + os.path.getsize(sidecar[0]), free)
        kept = [self._keep(p, h) for p, h in zip(pieces, found)]
        sidecar_partial = "%s.%s.partial" % (sidecar[1], uuid.uuid4().hex[:12])
        try:
            moved = self._send_pieces(args["path"], pieces, kept)
            self._connection.put_file(sidecar[0], sidecar_partial)
            archive = pieces[0].partial if len(pieces) == 1 else self._join(pieces, dest, parse_sha256(args["sha256"]), whole)
            self._place(archive, whole, dest, sidecar_partial, sidecar[1])
        except AnsibleError as exc:
            self._remove([sidecar_partial])
            raise AnsibleError("Copying %s to %s failed: %s. What arrived is kept on the host for the next run to resume from."
                               % (args["path"], dest, exc.message))
        except BaseException:
            self._remove([sidecar_partial])
            raise
        size = moved + os.path.getsize(sidecar[0])
        return {"changed": True, "dest": dest, "bytes": size, "resumed_from": sum(kept),
                "msg": "copied %s (%s%s)" % (args["path"], human_size(size),
                                             ", resumed from %s" % human_size(sum(kept)) if sum(kept) else "")}

    @staticmethod
    def _local_size(piece):
        size = os.path.getsize(piece.local)
        if piece.size is not None and piece.size != size:
            raise ArchiveError("%s on the controller has %d bytes, the manifest says %d." % (piece.local, size, piece.size))
        return size

    def _partial_sizes(self, pieces, states):
        sizes = []
        for index, piece in enumerate(pieces):
            state, size = states[index] if index < len(states) else ("none", 0)
            if state == remote_shell.NOT_A_FILE:
                raise ArchiveError("%s on %s is not a regular file (something was put under the name of a partial copy); remove it."
                                   % (piece.partial, self._host_name()))
            sizes.append(size if state == "file" else 0)
        return sizes

    def _keep(self, piece, found):
        """The bytes of the host's partial copy that match the controller's file; the rest is cut off."""
        if not found:
            return 0
        with open_regular(piece.local) as handle:
            kept = self.kept_prefix(piece.partial, found, handle.fileno(), min(found, piece.size))
        if 0 < kept != found:
            self.remote_command(remote_shell.truncate(piece.partial, kept), "Cutting %s back to its verified %d bytes" % (piece.partial, kept))
        return kept

    def _send_pieces(self, path, pieces, kept):
        moved, before = 0, 0
        with Progress(self._label(path), sum(p.size for p in pieces), self._sent_so_far, start=sum(kept), host=self.host_label()):
            for piece, keep in zip(pieces, kept):
                moved += self._send_rest(piece, keep, before)
                before += piece.size
        return moved

    def _send_rest(self, piece, kept, before):
        """Send what the partial copy lacks: the whole file in one transfer, or the rest through a temporary
        file on the controller, CHUNK bytes at a time, appended on the host. Returns the bytes sent."""
        if kept >= piece.size:
            return 0
        if kept == 0:
            self._put(piece.local, piece.partial, before)
            return piece.size
        chunk = piece.partial + ".chunk"
        self.remote_command("rm -f -- %s" % shlex.quote(chunk), "Removing %s" % chunk)
        fd, temp = tempfile.mkstemp(prefix="airgap-push-", suffix=".chunk")
        try:
            with open_regular(piece.local) as source:
                for offset, length in resume.chunks(kept, piece.size):
                    _copy_range(source.fileno(), fd, offset, length)
                    self._put(temp, chunk, before + offset)
                    self.remote_command(remote_shell.append_chunk(chunk, piece.partial, length, offset + length),
                                        "Appending to %s" % piece.partial)
        finally:
            os.close(fd)
            os.unlink(temp)
        return piece.size - kept

    def _put(self, local, remote, before):
        self._watching = (before, local)
        try:
            self._connection.put_file(local, remote)
        finally:
            self._watching = None

    def _sent_so_far(self):
        watching = getattr(self, "_watching", None)
        if watching is None:
            return None
        position = open_position(watching[1])
        return None if position is None else watching[0] + position

    def _join(self, pieces, dest, sha256, size):
        """Join the parts on the host into the archive's partial copy, checking each part as it is appended."""
        joined = "%s.%s-%s.partial" % (dest, sha256[:16], resume.short_hash(self.host_label()))
        res = self._low_level_execute_command(remote_shell.join_parts(joined, [(p.partial, p.sha256) for p in pieces]), sudoable=False)
        out = res.get("stdout") or ""
        bad = remote_shell.parse_join(out)
        if bad is not None:
            piece = pieces[bad[0] - 1]
            self._remove([piece.partial])
            raise ChecksumMismatch("%s arrived with sha256 %s, the manifest says %s; nothing was kept." % (piece.label, bad[1], piece.sha256))
        if res.get("rc") != 0 or out.split().count("ok") != len(pieces):
            raise ArchiveError("Joining the parts of %s on %s failed: %s" % (dest, self._host_name(), (res.get("stderr") or out).strip()))
        return joined

    def _place(self, partial, size, dest, sidecar_partial, sidecar_dest):
        """Check the size, then rename the archive and its sidecar into place (the archive first: a sidecar never
        describes a file it was not written for), and remove what earlier copies of other content left."""
        q = shlex.quote
        leftovers = " ".join(q(dest) + pattern % resume.short_hash(self.host_label()) for pattern in (
            ".????????????????-%s.partial", ".????????????????-%s.partial.chunk",
            ".part???.????????????????-%s.partial", ".part???.????????????????-%s.partial.chunk"))
        command = "%s; mv -f %s %s && mv -f %s %s && rm -f -- %s" % (
            remote_shell.size_is(partial, size), q(partial), q(dest), q(sidecar_partial), q(sidecar_dest), leftovers)
        res = self._low_level_execute_command(command, sudoable=False)
        if res.get("rc") == 3:
            raise ArchiveError("%s arrived on %s as %s bytes, the manifest says %d; it is kept for the next run to check and resume."
                               % (partial, self._host_name(), (res.get("stdout") or "").strip(), size))
        if res.get("rc") != 0:
            raise ArchiveError("Moving %s into place failed on %s: %s" % (dest, self._host_name(), (res.get("stderr") or "").strip()))

    def _check_space(self, directory, size, free):
        if free is not None and free < size:
            raise SpaceError("Not enough free space in %s on %s for %s: %s free. Nothing was copied."
                             % (directory, self._host_name(), human_size(size), human_size(free)))

    def _label(self, path):
        return "push_archive %s" % path

    def _remove(self, paths):
        try:
            self._low_level_execute_command("rm -f %s" % " ".join(shlex.quote(p) for p in paths), sudoable=False)
        except AnsibleError:
            pass  # the connection is gone; the next copy uses a new name and the host's cleanup is up to its operator


def _copy_range(source_fd, target_fd, offset, length):
    """The `length` bytes of the source from `offset` as the whole content of the target file."""
    os.ftruncate(target_fd, 0)
    done = 0
    while done < length:
        data = os.pread(source_fd, min(_COPY, length - done), offset + done)
        if not data:
            raise ArchiveError("The controller's file ended before its recorded size while it was sent.")
        os.pwrite(target_fd, data, done)
        done += len(data)
