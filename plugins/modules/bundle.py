#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: bundle
short_description: Write and verify the manifest of an air-gap bundle of image and container archives
version_added: 0.1.0
description:
  - A bundle is a directory of archives written by M(airgap.docker.image_archive) and M(airgap.docker.container_archive)
    that travels to sites without a registry, for example on removable media. Its C(manifest.json) says what every
    archive holds and its checksum, C(SHA256SUMS) lets C(sha256sum -c) check the files, and an optional SSH signature
    (C(manifest.json.sig)) says who packed it.
  - V(present) writes the manifest, the archives' sidecars, C(SHA256SUMS) and the signature for archives already
    in the directory, and removes the files of archives an earlier manifest listed and this one does not. The files
    it writes are readable by their owner only (mode C(0600)), since a container's sidecar and the manifest record
    its environment. It creates the directory, and its C(images/) and C(containers/), with mode C(0700).
  - While it writes, it holds an exclusive lock (C(flock)) on the bundle directory; V(verified) and check mode hold
    a shared one. A run that finds the directory locked waits up to O(lock_timeout) seconds, then fails saying so.
  - V(verified) checks a bundle before anything of it is used and returns its manifest.
  - V(inspected) describes a bundle (its archives, images, tags, platforms, layer counts, sizes and signer) and says whether
    it verifies, without failing when it does not, so that an operator can check a medium before carrying it in. It
    makes every check of V(verified) and reports what fails in RV(problems). It needs no engine and loads nothing.
  - With O(split_size), V(present) holds every archive larger than the limit as numbered parts (C(<archive>.part001),
    C(.part002), ...) for media with a file size limit, such as FAT32 (4 GiB - 1 byte per file); see
    C(docs/bundle-format.md).
  - The R(airgap.docker.migrate, ansible_collections.airgap.docker.migrate_role) role uses this module on the controller; the bundle format is described in
    C(docs/bundle-format.md).
author:
  - airgap.docker contributors (@airgap-docker)
extends_documentation_fragment:
  - airgap.docker.attributes
attributes:
  check_mode:
    support: full
    details: Check mode reports which files would be written or removed and writes nothing.
  diff_mode:
    support: full
    details: Shows the archives listed in the manifest before and after.
  idempotent:
    support: full
options:
  path:
    description:
      - The bundle directory.
    type: path
    required: true
  state:
    description:
      - V(present) writes the manifest and what goes with it; V(verified) only reads and checks, and fails on the
        first problem; V(inspected) reads, checks and reports, and fails only when there is no manifest, or one that
        cannot be read as one (not JSON, another shape), since there is nothing to describe then.
    type: str
    choices: [present, verified, inspected]
    default: verified
  archives:
    description:
      - With O(state=present), the archives the bundle holds. Their files must be in the bundle, or be put there later
        (the manifest is written from the sidecars); an archive that O(split_size) splits must be there (whole or as
        parts), since its parts' checksums go into the manifest.
    type: list
    elements: dict
    default: []
    suboptions:
      path:
        description:
          - The archive's path inside the bundle, V(images/<file>) or V(containers/<file>).
        type: str
        required: true
      sidecar:
        description:
          - The archive's sidecar document (the content of C(<archive>.airgap.json) written next to it by the module
            that wrote it).
        type: dict
        required: true
      image:
        description:
          - For a container archive, the image it becomes when imported, as V(repo:tag).
        type: str
      delta_of:
        description:
          - For a thin image archive (see O(airgap.docker.image_archive#module:exclude_layers)), the path of the full
            archive it stands for, V(images/<file>). The full archive need not be in the bundle.
        type: str
  pending:
    description:
      - With O(state=present), bundle paths of archives that are about to be rewritten and whose sidecar is not known
        yet (the R(airgap.docker.migrate, ansible_collections.airgap.docker.migrate_role) role passes them in check
        mode). Their files are not reported as removed.
    type: list
    elements: str
    default: []
  keep_deltas:
    description:
      - With O(state=present), keep the thin archives (those with a C(delta_of)) that the bundle already lists, as long as
        the full archive they stand for is in O(archives) with the same images and their files are still in the bundle.
        Thin archives written for earlier receivers are then reused instead of cut again, and a re-run that needs no
        new one leaves the manifest as it is. The R(airgap.docker.migrate, ansible_collections.airgap.docker.migrate_role) role's relay sets it.
      - Only a manifest this module wrote is believed. The earlier manifest's entries are kept only when its bytes
        are those this controller user last wrote into the directory (remembered outside the bundle, in the memo
        described under O(verify_archives)), or, with O(signing_key), when its signature verifies with that key;
        when C(SHA256SUMS) agrees with it; and each kept archive only when its sidecar and its file, hashed again,
        have the checksums the manifest records. Anything else is dropped (and its files removed), so that it is cut
        again; a manifest put there by somebody else is never signed.
    type: bool
    default: false
  source:
    description:
      - With O(state=present), facts about where the archives come from, recorded in the manifest as they are, for
        example the source host's inventory name. Keep them free of times and other changing values, or the manifest
        stops being reproducible.
    type: dict
    default: {}
  signing_key:
    description:
      - With O(state=present), a private SSH key (without passphrase) to sign the manifest with, using
        C(ssh-keygen -Y sign) with the namespace V(airgap.docker-bundle).
      - Without it, a signature left by an earlier run is removed, since it would no longer say who packed the bundle.
    type: path
  allowed_signers:
    description:
      - With O(state=verified), an OpenSSH allowed signers file (see C(ssh-keygen(1))). The bundle must be signed by
        one of its keys for the namespace V(airgap.docker-bundle); an unsigned or wrongly signed bundle fails the
        module before anything else is read.
    type: path
  verify_archives:
    description:
      - With O(state=verified), paths of the archives whose content to check against the manifest's sha256 now.
        Sizes and sidecars are checked for every archive.
      - Omitted, every archive is checked; V([]) checks none (the modules that load archives check them again while
        loading).
      - Checksums already computed on this controller are remembered outside the bundle, in the controller user's
        C(${XDG_CACHE_HOME:-~/.cache}/airgap.docker/verified/) (C($AIRGAP_DOCKER_CACHE/verified/) when that is set),
        by each file's device, inode, size, modification time and inode change time, taken from the open file before
        and after it was hashed, so a re-run does not read the archives again; a file replaced or altered since (or
        while) it was hashed is hashed again. The memo counts only in a directory of the controller user that nobody
        else may write to. It is only an optimization and safe to delete; when it cannot be written, the next run
        hashes again.
    type: list
    elements: str
  split_size:
    description:
      - With O(state=present), the largest file the bundle may hold, in bytes or with a unit (V(K), V(M), V(G), V(T),
        powers of 1024), for example V(4095M) for FAT32. Every archive larger than this is held as parts of exactly
        this size but the last, named C(<archive>.part001), C(.part002), ... (at most 999); the manifest records each
        part's size and sha256 besides the whole archive's, and C(SHA256SUMS) and the signature cover every part.
      - An archive the bundle holds whole is split (read once, checked against its sha256 as the parts are written,
        and removed once they are in place); parts of another size are split again; without O(split_size), or with
        V(0), parts are joined into the whole archive again. The parts depend only on the archive and the size, so
        packing again gives byte-identical files, and C(split -b SIZE -d -a 3 --numeric-suffixes=1) gives them too.
      - Sizes below V(1M) are refused.
    type: str
  lock_timeout:
    description:
      - Seconds to wait for another run that holds the bundle directory's lock (see above) before failing.
        V(0) fails at once.
    type: int
    default: 600
notes:
  - With O(state=verified), the signature (with O(allowed_signers)), else C(SHA256SUMS) when the bundle has one, is
    checked on the manifest's raw bytes before any of it is parsed. A manifest of another shape (wrong types, nested
    deeper than 64 levels, larger than 64 MiB) fails with a sentence that names the first field at fault.
  - On file systems whose directories cannot be locked (NFS), runs are not serialized.
  - Packing the same archives twice gives byte-identical manifests, sidecars and C(SHA256SUMS), and with an Ed25519 or
    RSA key identical signatures. The manifest's C(created) is the newest creation time of what it holds, not the time of
    packing.
requirements:
  - C(ssh-keygen) from OpenSSH 8.2 or newer, to sign or verify.
seealso:
  - name: Air-gap runbook
    description: Moving images to a site without network access with this collection.
    link: https://github.com/airgap-docker/airgap.docker/blob/main/docs/air-gap-runbook.md
"""

EXAMPLES = r"""
- name: Write the manifest of a bundle for FAT32 media, archives larger than 4095 MiB held as parts
  airgap.docker.bundle:
    path: /srv/bundles/2026-11
    state: present
    archives: "{{ archives }}"
    split_size: 4095M
    signing_key: /etc/airgap/release_key

- name: Describe a medium before carrying it in, without failing on what is wrong
  airgap.docker.bundle:
    path: /media/usb/bundle
    state: inspected
    allowed_signers: /etc/airgap/allowed_signers
  register: medium

- name: Say what it holds and whether it verifies
  ansible.builtin.debug:
    msg: >-
      {{ medium.summary.totals.images }} image(s), {{ medium.summary.totals.bytes | human_readable }},
      {{ 'verified' if medium.verified else 'NOT verified: ' ~ medium.problems | join('; ') }}

- name: Check a bundle that arrived on media, and that our release key signed it
  airgap.docker.bundle:
    path: /media/transfer/bundle
    allowed_signers: /etc/airgap/allowed_signers
  register: bundle

- name: Show what it holds
  ansible.builtin.debug:
    msg: "{{ bundle.images | map(attribute='tags') | flatten }}"
"""

RETURN = r"""
msg:
  description: What was done or found.
  returned: always
  type: str
manifest:
  description: The bundle's manifest (see C(docs/bundle-format.md)).
  returned: success
  type: dict
images:
  description:
    - Every image the bundle delivers, each with the bundle path of the archive that carries it (V(archive)), the kind
      of that archive (V(kind), V(images) or V(container)) and, for a thin archive, the full archive it stands for
      (V(delta_of)). An image carried by a full and a thin archive is listed once per archive.
  returned: success
  type: list
  elements: dict
signer:
  description: The allowed signers principal whose key signed the manifest; null when not checked.
  returned: success
  type: str
files:
  description:
    - Files written (V(written)) and removed (V(removed)), relative to O(path); the parts of a split or the archive of a
      join are among them.
  returned: with O(state=present)
  type: dict
bytes_hashed:
  description: Bytes of archives read to compute checksums in this run.
  returned: with O(state=verified) or O(state=inspected)
  type: int
verified:
  description: Whether every check passed (signature or C(SHA256SUMS), the manifest's shape, every file's size and sha256).
  returned: with O(state=inspected)
  type: bool
problems:
  description: One sentence for each check that failed, in the order they were made; empty when RV(verified).
  returned: with O(state=inspected)
  type: list
  elements: str
signed:
  description: Whether the bundle carries a signature (C(manifest.json.sig)); it is checked only with O(allowed_signers).
  returned: with O(state=inspected)
  type: bool
summary:
  description: What the bundle holds, for a person to read.
  returned: with O(state=inspected)
  type: dict
  contains:
    archives:
      description:
        - One per archive, with V(path), V(kind), V(size), V(sha256), V(compression), V(layout), V(parts) (how many
          files hold it, V(0) when it is whole), V(delta_of) and V(images) (its tags).
      type: list
      elements: dict
    images:
      description:
        - One per image, with V(tags), V(platform) (for example V(linux/amd64)), V(layers) (how many), V(omitted_layers)
          (left out of a thin archive), V(size), V(created), V(config_digest), V(archive) and V(kind).
      type: list
      elements: dict
    totals:
      description: V(archives), V(images), V(bytes) (of the archives) and V(files) (archive files and parts).
      type: dict
"""

import os
import stat

from ansible_collections.airgap.docker.plugins.module_utils import archive_parts, bundle, bundle_layout, signing
from ansible_collections.airgap.docker.plugins.module_utils.atomic_file import PRIVATE_MODE, write_bytes_atomically
from ansible_collections.airgap.docker.plugins.module_utils.bundle_verify import check_files
from ansible_collections.airgap.docker.plugins.module_utils.directory_lock import DirectoryLock
from ansible_collections.airgap.docker.plugins.module_utils.errors import AirgapError, ArchiveError, SignatureError, os_error
from ansible_collections.airgap.docker.plugins.module_utils.module_support import build_module, run_manager
from ansible_collections.airgap.docker.plugins.module_utils.verified_memo import VerifiedCache


class BundleManager:
    """Decides what a run must do, honours check mode, then does it."""

    reports_stats = False  # its result has no `stats`

    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.path = self.params["path"]
        self.check_mode = module.check_mode
        self.result = {"changed": False}

    def run(self):
        if self.params["state"] == "present":
            split_size = archive_parts.parse_size(self.params["split_size"])
            if not self.check_mode:
                bundle.ensure_directories(self.path)
            with self._lock(shared=self.check_mode):
                self.ensure_present(split_size)
        else:
            if not os.path.isdir(self.path):
                raise ArchiveError("The bundle directory %s does not exist." % self.path)
            with self._lock(shared=True):
                if self.params["state"] == "inspected":
                    self.ensure_described()
                else:
                    self.ensure_verified()
        return self.result

    def _lock(self, shared):
        return DirectoryLock(self.path, self.params["lock_timeout"], shared=shared, what="the bundle")

    # present --------------------------------------------------------------------------------

    def ensure_present(self, split_size):
        cache = VerifiedCache(self.path)
        entries, sidecars = [], {}
        pending = set(self.params["pending"])
        laid_out, relaid, dropped = [], [], []
        for item in self.params["archives"]:
            entry, sidecar_bytes = bundle.archive_entry(item["path"], item["sidecar"], item.get("image"), item.get("delta_of"))
            if entry["path"] not in pending:
                arrangement = bundle_layout.arrange(self.path, entry, split_size, cache, self.check_mode)
                entry = bundle.with_parts(entry, arrangement.parts)
                relaid += arrangement.written
                dropped += arrangement.removed
            laid_out.append(entry["path"])
            entries.append(entry)
            sidecars[entry["sidecar"]["path"]] = sidecar_bytes
        old_manifest, old_bytes = self._old_manifest()
        if self.params["keep_deltas"] and old_manifest is not None:
            for entry, sidecar_bytes in self._deltas_to_carry(old_manifest, old_bytes, entries, cache):
                entries.append(entry)
                sidecars[entry["sidecar"]["path"]] = sidecar_bytes
        manifest = bundle.build_manifest(entries, self.params["source"])
        manifest_bytes = bundle.encode(manifest)

        wanted = dict(sidecars)
        wanted[bundle.MANIFEST] = manifest_bytes
        wanted[bundle.SUMS] = bundle.render_sums(manifest, manifest_bytes)
        writes = sorted(name for name, data in wanted.items() if not self._current(name, data))
        signature, sign_action = self._signature_plan(manifest_bytes)
        if sign_action == "write":
            writes.append(bundle.SIGNATURE)
        pending |= {p + bundle.SUFFIX for p in pending}
        stale = set(bundle.stale_files(old_manifest, manifest)) | set(dropped)
        # What a split or join replaced is gone already; it is reported all the same, as check mode reports it.
        removals = sorted(p for p in stale - bundle.listed_files(manifest)
                          if p not in pending and (p in dropped or os.path.lexists(os.path.join(self.path, p))))
        if sign_action == "remove":
            removals.append(bundle.SIGNATURE)

        if self.module._diff:
            self.result["diff"] = {"before": {"archives": sorted(bundle.listed_files(old_manifest))},
                                   "after": {"archives": sorted(bundle.listed_files(manifest))}}
        if not self.check_mode:
            self._apply(wanted, writes, signature, removals, cache)
        writes = sorted(set(writes) | set(relaid))
        changed = bool(writes or removals)
        verb = "would update" if self.check_mode and changed else ("updated" if changed else "up to date:")
        self.result.update(changed=changed, manifest=manifest, images=bundle.manifest_images(manifest), signer=None,
                           files={"written": writes, "removed": removals},
                           msg="%s the bundle %s (%d archive(s))" % (verb, self.path, len(entries)))

    def _deltas_to_carry(self, old_manifest, old_bytes, entries, cache):
        """[(entry, sidecar bytes)] of the thin archives the old manifest lists that may stay.

        The old manifest is only believed when this controller wrote it (or, with a signing key,
        signed it), since what stays is signed with the new manifest; and then each kept file is
        hashed again (once per file version, through the memo), since files can be swapped later.
        """
        candidates = bundle.deltas_to_keep(old_manifest, entries)
        if not candidates:
            return []
        if not self._manifest_is_ours(old_manifest, old_bytes, cache):
            self.module.warn("The thin archives listed in %s were not kept: this controller did not write that manifest "
                             "(or its signature does not verify), so they are removed and cut again when needed."
                             % os.path.join(self.path, bundle.MANIFEST))
            return []
        kept = []
        for entry in candidates:
            sidecar_bytes = self._read(entry["sidecar"]["path"])
            if sidecar_bytes is not None and bundle.sha256_bytes(sidecar_bytes) == entry["sidecar"]["sha256"] \
                    and self._file_matches(entry, cache):
                kept.append((entry, sidecar_bytes))
        return kept

    def _manifest_is_ours(self, manifest, data, cache):
        if not cache.wrote_this(bundle.MANIFEST, data):
            key, signature = self.params["signing_key"], self._read(bundle.SIGNATURE)
            if not (key and signature is not None and signing.signed_by_key(key, signature, data)):
                return False
        try:
            bundle.check_sums_file(self.path, manifest, data)
        except ArchiveError:
            return False
        return True

    def _file_matches(self, entry, cache):
        """Every file that holds the archive (itself, or each of its parts) has its recorded sha256 and size."""
        for path, size, digest in bundle.files_of(entry):
            try:
                if cache.sha256(path, bundle.bundle_file(self.path, path))[:2] != (digest, size):
                    return False
            except ArchiveError:
                return False
        return True

    def _old_manifest(self):
        try:
            return bundle.read_manifest(self.path)
        except ArchiveError:
            return None, None  # not ours or damaged: it is replaced, nothing it lists is removed

    def _read(self, name):
        try:
            return bundle.read_document(os.path.join(self.path, name))
        except ArchiveError:
            return None

    def _current(self, name, data):
        """The file is a regular file with exactly `data`, readable by its owner only."""
        try:
            found = os.lstat(os.path.join(self.path, name))
        except OSError:
            return False
        if not stat.S_ISREG(found.st_mode) or found.st_mode & 0o077:
            return False
        return self._read(name) == data

    def _signature_plan(self, manifest_bytes):
        """(signature bytes or None, 'keep' | 'write' | 'remove' | 'none')."""
        current = self._read(bundle.SIGNATURE)
        key = self.params["signing_key"]
        if not key:
            return None, ("remove" if current is not None else "none")
        if current is not None and signing.signed_by_key(key, current, manifest_bytes):
            return current, "keep"
        return signing.sign(key, manifest_bytes), "write"

    def _apply(self, wanted, writes, signature, removals, cache):
        # Sidecars, then the manifest, then its signature: an interrupted run leaves either the old
        # manifest and signature or a manifest whose old signature no longer verifies, never a
        # bundle that vouches for files it does not have. Stale files go once nothing lists them.
        for name in sorted(writes, key=lambda n: (n == bundle.SIGNATURE, n == bundle.MANIFEST, n)):
            data = signature if name == bundle.SIGNATURE else wanted[name]
            write_bytes_atomically(os.path.join(self.path, name), data, PRIVATE_MODE)
        # What is on disk now is the manifest this run computed: the next run may believe it.
        cache.wrote(bundle.MANIFEST, bundle.sha256_bytes(wanted[bundle.MANIFEST]))
        for name in removals:
            try:
                os.unlink(os.path.join(self.path, name))
            except FileNotFoundError:
                pass
            except OSError as exc:
                raise os_error(exc, os.path.join(self.path, name), "removing")
            cache.forget(name)
        cache.save()

    # verified -------------------------------------------------------------------------------

    def ensure_verified(self):
        where = os.path.join(self.path, bundle.MANIFEST)
        manifest_bytes = bundle.read_manifest_bytes(self.path)
        if manifest_bytes is None:
            raise ArchiveError("%s is not a bundle: it has no %s." % (self.path, bundle.MANIFEST))
        # Who wrote it is settled on the raw bytes, before any of them is parsed.
        signer = self._check_signature(manifest_bytes)
        if signer is None:
            bundle.check_manifest_line(self.path, manifest_bytes)
        manifest = bundle.parse_manifest(manifest_bytes, where)
        bundle.check_sums_file(self.path, manifest, manifest_bytes)
        hashed = check_files(self.path, manifest, self.params["verify_archives"], save_cache=not self.check_mode)
        self.result.update(manifest=manifest, images=bundle.manifest_images(manifest), signer=signer, bytes_hashed=hashed,
                           msg="the bundle %s is intact%s (%d archive(s))" % (
                               self.path, ", signed by %s" % signer if signer else "", len(manifest.get("archives") or [])))

    def ensure_described(self):
        """What the bundle holds and whether it verifies: every check of V(verified) is made, and what
        fails is reported in `problems` instead of failing the task (a manifest that cannot be read
        at all still fails it: there would be nothing to describe)."""
        where = os.path.join(self.path, bundle.MANIFEST)
        manifest_bytes = bundle.read_manifest_bytes(self.path)
        if manifest_bytes is None:
            raise ArchiveError("%s is not a bundle: it has no %s." % (self.path, bundle.MANIFEST))
        problems, signer = [], None
        try:
            signer = self._check_signature(manifest_bytes)
            if signer is None:
                bundle.check_manifest_line(self.path, manifest_bytes)
        except AirgapError as exc:
            problems.append(exc.msg)
        manifest = bundle.parse_manifest(manifest_bytes, where)
        hashed = 0
        checks = [lambda: bundle.check_sums_file(self.path, manifest, manifest_bytes)]
        checks += [lambda e=entry: check_files(self.path, {"archives": [e]}, self.params["verify_archives"],
                                               save_cache=not self.check_mode) for entry in manifest.get("archives") or []]
        for check in checks:
            try:
                hashed += check() or 0
            except AirgapError as exc:
                problems.append(exc.msg)
        summary = bundle.describe(manifest)
        verified = not problems
        self.result.update(manifest=manifest, images=bundle.manifest_images(manifest), summary=summary, signer=signer,
                           signed=os.path.lexists(os.path.join(self.path, bundle.SIGNATURE)), verified=verified,
                           problems=problems, bytes_hashed=hashed,
                           msg="the bundle %s holds %d image(s) in %d archive(s), %d bytes; %s" % (
                               self.path, len(summary["images"]), len(summary["archives"]), summary["totals"]["bytes"],
                               ("it verifies" + (", signed by %s" % signer if signer else "")) if verified
                               else "it does NOT verify: %s" % problems[0]))

    def _check_signature(self, manifest_bytes):
        allowed = self.params["allowed_signers"]
        if not allowed:
            return None
        signature = self._read(bundle.SIGNATURE)
        if signature is None:
            raise SignatureError("The bundle %s is not signed (no %s), and allowed_signers requires a signature; "
                                 "nothing of it was used." % (self.path, bundle.SIGNATURE))
        return signing.verify(allowed, signature, manifest_bytes)


def main():
    module = build_module(
        dict(
            path=dict(type="path", required=True),
            state=dict(type="str", default="verified", choices=["present", "verified", "inspected"]),
            archives=dict(type="list", elements="dict", default=[], options=dict(
                path=dict(type="str", required=True),
                sidecar=dict(type="dict", required=True),
                image=dict(type="str"),
                delta_of=dict(type="str"),
            )),
            pending=dict(type="list", elements="str", default=[]),
            keep_deltas=dict(type="bool", default=False),
            source=dict(type="dict", default={}),
            signing_key=dict(type="path", no_log=False),
            allowed_signers=dict(type="path"),
            verify_archives=dict(type="list", elements="str"),
            lock_timeout=dict(type="int", default=600),
            split_size=dict(type="str"),
        ),
        engine=False,
    )
    run_manager(module, BundleManager)


if __name__ == "__main__":
    main()
