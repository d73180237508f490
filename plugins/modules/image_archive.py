#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: image_archive
short_description: Save Docker images to an archive and load them from one, idempotently
version_added: 0.1.0
description:
  - Saves images from a Docker engine into an archive file (C(docker save)) and loads archives into an engine
    (C(docker load)), without a registry, so images can travel to hosts that cannot reach one.
  - A re-run costs almost nothing. An up-to-date archive is recognised from a stat and its sidecar, and a load
    whose images are already in the engine with the archive's tags sends no archive byte to the engine.
  - Images are compared by what they are, not by the engine's ID, so an archive saved on the classic image store
    is recognised as loaded on the containerd image store (Docker 25+) and the other way round.
  - What reaches the engine comes from the archive's own content, verified while it streams against its digests (and
    O(checksum) when given) before the engine receives the end of the tar. The sidecar next to an archive is never
    believed about that; what this host verified or wrote is remembered in the user's cache
    (C(~/.cache/airgap.docker/verified)) so that a re-run on the unchanged file costs a C(stat).
  - The module never pulls from a registry and never removes images.
  - With O(state=inspected) it describes an archive, whole or held as parts, without any engine (it needs neither a
    running engine nor the Docker SDK), for example to check a medium before it is carried in.
author:
  - airgap.docker contributors (@airgap-docker)
extends_documentation_fragment:
  - airgap.docker.engine
  - airgap.docker.archive
  - airgap.docker.progress
  - airgap.docker.attributes
  - airgap.docker.attributes.action_group
  - ansible.builtin.files
attributes:
  check_mode:
    support: full
    details:
      - Check mode predicts exactly what a real run does, including which images would be loaded or re-tagged.
      - O(state=inspected) never changes anything, and reads the same in check mode.
  diff_mode:
    support: full
    details: On save the diff shows the archive's images and tags before and after; on load it shows where each tag points.
  idempotent:
    support: full
  action_group:
    support: full
options:
  path:
    description:
      - The archive file on the managed host.
    type: path
    required: true
  state:
    description:
      - V(saved) makes O(path) an archive holding exactly O(images), with the tags they were requested by.
      - V(loaded) makes every image in the archive present in the engine with all of the archive's tags.
        A tag that points to another image is moved to the archive's image.
      - V(inspected) returns what the archive holds (RV(images), RV(archive)) and, with O(checksum), whether it has that
        checksum (RV(verified)), without contacting any engine and without changing anything. The description comes from
        what this host verified of exactly these files before, else from the sidecar when its size agrees with the file
        (and, with O(checksum), its sha256 with the file's, which is then computed), else from the archive itself, read
        once as it streams and checked against its own digests (RV(source)). A file that is no image archive, or a
        damaged one, fails with one sentence.
      - V(absent) removes the archive, its parts (see O(split_size)) and its sidecar.
      - With V(loaded), V(inspected) and V(absent), O(path) may name the first part of an archive held as parts.
    type: str
    choices: [saved, loaded, inspected, absent]
    default: saved
  images:
    description:
      - Images to save, by name (V(repo:tag), the tag defaulting to V(latest)) or by full or short ID.
        An image requested by name is saved with that tag; one requested by ID only is saved without tags.
      - Required for O(state=saved).
      - With O(state=loaded) or O(state=inspected), images that must be in the archive; the module fails before loading anything
        if one is not.
    type: list
    elements: str
    aliases: [name]
  force:
    description:
      - Save or load even when the archive or the engine is already up to date.
    type: bool
    default: false
  platform:
    description:
      - Save or load only this platform of multi-platform images, as V(os/arch[/variant]), for example V(linux/arm64).
      - Needs Docker API 1.48 (Docker 28) or newer; the module fails with a clear message on older engines.
      - Cannot be combined with O(from_archive), nor used to load a thin archive (see O(exclude_layers)).
    type: str
  exclude_layers:
    description:
      - With O(state=saved), layers the receiving engine already holds, as diff IDs (V(sha256:<hex>), the uncompressed
        digests that M(airgap.docker.image_info) reports). The archive then leaves out their data and is a B(thin)
        archive, often a few kilobytes instead of the whole image when only a top layer changed.
      - For each image the archive leaves out the longest bottom run of its layers that are all listed, since both
        image stores key a layer by the whole stack below it. A layer the archive must carry anyway (higher up in the
        same image, or for another image of the archive) stays in, and so do the layers above its bottom occurrence.
      - A flat list such as RV(airgap.docker.image_info#module:inventory.layers) may name a layer the receiver holds only
        on top of other layers; the load then refuses the archive before sending anything. For an exact cut, list the
        image's first RV(airgap.docker.image_info#module:wanted[].held_layers) diff IDs, as the
        R(airgap.docker.migrate, ansible_collections.airgap.docker.migrate_role) role does.
      - A thin archive is written as an OCI layout that also carries C(manifest.json), which the classic image store
        and the containerd image store (Docker 25+) both load, whatever layout the source engine writes. The sidecar
        records per image how many bottom layers were left out (RV(images[].omitted_layers)).
      - Loading a thin archive (O(state=loaded)) first checks that the engine holds the left-out layers as a stack and
        fails, naming the first missing layer, before sending anything.
      - An empty list writes a full archive.
    type: list
    elements: str
    default: []
  from_archive:
    description:
      - With O(state=saved), take the images from this existing image archive instead of from the engine, for example
        to cut thin archives for several receivers out of one full archive without asking the engine again. The engine
        is not contacted.
      - O(images) must name images the archive holds, by tag or ID. The input is checked against its sidecar's checksum,
        or against O(checksum) when given, and nothing is written when it does not match.
      - An input that is itself thin and leaves out more layers than the archive to write may is refused from its sidecar,
        before it is read. It must be another file than O(path).
      - The output is always written as an OCI layout (see O(exclude_layers)).
      - The input may be held as parts (see O(split_size)); name the archive or its first part.
    type: path
seealso:
  - module: airgap.docker.container_archive
  - name: docker save versus docker export
    description: When to use image archives and when container archives.
    link: https://github.com/airgap-docker/airgap.docker/blob/main/docs/save-vs-export.md
"""

EXAMPLES = r"""
- name: Save two images into a zstd archive (re-runs do nothing while the images are unchanged)
  airgap.docker.image_archive:
    path: /srv/images/app.tar.zst
    images:
      - registry.example.com/app:1.4
      - redis:7

- name: Load the archive on a host without registry access
  airgap.docker.image_archive:
    path: /srv/images/app.tar.zst
    state: loaded
    images:
      - registry.example.com/app:1.4   # fail before loading if the archive lacks it

- name: Talk to a remote engine over TLS
  airgap.docker.image_archive:
    path: /srv/images/app.tar
    state: loaded
    docker_host: tcp://docker.example.com:2376
    validate_certs: true
    ca_path: /etc/docker/ca.pem
    client_cert: /etc/docker/cert.pem
    client_key: /etc/docker/key.pem

- name: Learn which layers the receiving engine already holds
  airgap.docker.image_info:
    inventory: true
  register: receiver
  delegate_to: edge-17.example.com

- name: Save only the layers it lacks (a thin archive)
  airgap.docker.image_archive:
    path: /srv/images/app-2.0-for-edge.tar.zst
    images: [registry.example.com/app:2.0]
    exclude_layers: "{{ receiver.inventory.layers }}"

- name: Cut a thin archive out of a full one, without the engine
  airgap.docker.image_archive:
    path: /srv/images/app-2.0-thin.tar.zst
    from_archive: /srv/images/app-2.0.tar.zst
    images: [registry.example.com/app:2.0]
    exclude_layers: "{{ receiver.inventory.layers }}"

- name: Save onto a FAT32 stick, whose files hold at most 4 GiB - 1 byte (app.tar.zst.part001, .part002, ...)
  airgap.docker.image_archive:
    path: /media/usb/app.tar.zst
    images: [registry.example.com/app:1.4]
    split_size: 4095M

- name: Load it from the stick on the other side (naming the archive or its first part)
  airgap.docker.image_archive:
    path: /media/usb/app.tar.zst.part001
    state: loaded
    checksum: "{{ app_archive_sha256 }}"   # of the whole archive, from a trusted source

- name: Check a medium before carrying it in, without any engine
  airgap.docker.image_archive:
    path: /media/usb/app.tar.zst
    state: inspected
    checksum: "{{ app_archive_sha256 }}"
  register: medium

- name: Refuse a medium that is not the expected one
  ansible.builtin.assert:
    that: medium.verified
    fail_msg: "{{ medium.archive.path }} is not the archive that was signed off"

- name: Remove an archive, its parts and its sidecar
  airgap.docker.image_archive:
    path: /srv/images/app.tar.zst
    state: absent
"""

RETURN = r"""
msg:
  description: Why the module changed something, or why it did not.
  returned: always
  type: str
  sample: the archive already holds exactly the requested images
actions:
  description:
    - What was done (or, in check mode, would be done), in order. V(saved), V(loaded), V(retagged), V(removed),
      V(attributes) (file attributes set), V(relaid) (an up-to-date archive written again as other files, see O(split_size)),
      V(inspected) (O(state=inspected)), V(skipped) (nothing to do).
  returned: always
  type: list
  elements: str
  sample: [loaded, retagged]
archive:
  description: The archive file.
  returned: when the archive exists after the run, or would in check mode
  type: dict
  contains:
    path:
      description: Path of the archive.
      type: str
      sample: /srv/images/app.tar.zst
    size:
      description: Size in bytes.
      type: int
      sample: 31457280
    sha256:
      description: SHA-256 of the archive file; null when it was not computed (check mode, or an archive without sidecar that was not read whole).
      type: str
      sample: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
    compression:
      description: V(none), V(gzip) or V(zstd).
      type: str
      sample: zstd
    compression_levels:
      description:
        - The uncompressed tar bytes each compression level compressed, keyed by the level, for an archive this collection
          wrote compressed. One level for a fixed O(compression_level); several when zstd adapted its level.
        - Absent for an archive without compression, and for one this host did not write (for example by C(docker save)).
      type: dict
      returned: when known
      sample: {"1": 903741440, "2": 33554432, "3": 67108864}
    compression_adaptive:
      description: Whether zstd chose its level as it went (no O(compression_level)); returned with RV(archive.compression_levels).
      type: bool
      returned: when known
      sample: true
    layout:
      description: V(legacy) (C(manifest.json) only, Docker 24 and older) or V(oci) (C(index.json) and blobs, Docker 25 and newer).
      type: str
      sample: oci
    parts:
      description:
        - The parts of an archive held as parts (see O(split_size)), in order, as the sidecar records them. The sha256 of a
          part is null with O(state=inspected) when neither a sidecar nor a read of this host records it.
        - Returned for an archive held as parts; with O(state=inspected) always (an empty list for one file).
      type: list
      elements: dict
      sample: [{"name": "app.tar.zst.part001", "size": 4293918720, "sha256": "5b1d…"},
               {"name": "app.tar.zst.part002", "size": 1207959552, "sha256": "a0c3…"}]
      contains:
        name:
          description: File name of the part, next to the archive's path.
          type: str
        size:
          description: Size in bytes.
          type: int
        sha256:
          description: SHA-256 of the part.
          type: str
images:
  description: The images in the archive.
  returned: unless O(state=absent)
  type: list
  elements: dict
  contains:
    id:
      description: The image's ID in this engine; null when it is not there (yet). Not returned with O(state=inspected).
      type: str
    tags:
      description: The image's tags in the archive.
      type: list
      elements: str
    config_digest:
      description: Digest of the image config; the image ID on the classic image store.
      type: str
    manifest_digest:
      description: Digest of the image manifest where the archive has one; the image ID on the containerd image store.
      type: str
    fingerprint:
      description: Digest of the image's layers, creation time, platform and runtime config; equal for the same image on any engine.
      type: str
    size:
      description: Bytes of the image's layers in the archive, or the image's size in the engine for a save.
      type: int
    diff_ids:
      description: The image's layers, bottom first, as uncompressed digests.
      type: list
      elements: str
    omitted_layers:
      description:
        - How many bottom layers a thin archive leaves out (see O(exclude_layers)); 0 for a full archive. The receiving
          engine must hold the first that many RV(images[].diff_ids) as a stack.
      type: int
    layers:
      description: With O(state=inspected), how many layers the image has (those a thin archive leaves out included).
      type: int
    platform:
      description: With O(state=inspected), the image's platform as V(os/architecture), for example V(linux/amd64).
      type: str
    os:
      description: With O(state=inspected), the image's operating system.
      type: str
    architecture:
      description: With O(state=inspected), the image's architecture.
      type: str
    created:
      description: With O(state=inspected), the image's creation time.
      type: str
    index_digest:
      description: With O(state=inspected), the digest of the image's index where the archive has one (multi-platform images).
      type: str
verified:
  description:
    - With O(state=inspected) and O(checksum), whether the archive (the parts joined, for an archive held as parts) has that
      SHA-256; null without O(checksum).
  returned: when O(state=inspected)
  type: bool
  sample: true
source:
  description:
    - With O(state=inspected), where the description comes from. V(memo) is what this host read and verified of exactly these
      files before. V(sidecar) is what the sidecar claims, unchecked, when its size agrees with the file (only without
      O(checksum)). V(archive) is the archive itself, read now and checked against its own digests; with O(checksum) the
      archive is always read, so what is reported never comes from the sidecar alone.
  returned: when O(state=inspected)
  type: str
  sample: sidecar
sidecar:
  description:
    - The archive's sidecar document, as written next to it in C(<path>.airgap.json), for example to build a bundle
      manifest without reading the file back.
  returned: with O(state=saved) when the archive is current, except in check mode when it would be rewritten
  type: dict
diff:
  description: Before and after, in diff mode (C(--diff)).
  returned: when diff mode is on
  type: dict
stats:
  description: Work done.
  returned: always
  type: dict
  contains:
    seconds:
      description: Wall time of the module, in seconds.
      type: float
    bytes_from_engine:
      description: Bytes received from the engine (save).
      type: int
    engine_wait_seconds:
      description:
        - Seconds from the request until the engine's first byte, returned when this run wrote the archive from the
          engine's save (not a thin archive). The classic image store builds the whole export in a temporary directory
          before it sends anything, so on a large image this is most of RV(stats.seconds), and none of it is the
          module's work.
      type: float
    bytes_to_engine:
      description: Archive bytes sent to the engine after decompression (load); 0 when nothing had to be loaded.
      type: int
    archive_bytes_read:
      description: Bytes of the archive file read.
      type: int
    bytes_verified:
      description:
        - Bytes of archive members checked against their own digests (blobs against their names, layers against the
          config's diff IDs, configs against their digests) while the archive was read or loaded; 0 when it was not read.
      type: int
    archive_bytes_written:
      description: Bytes of the archive file written.
      type: int
    peak_rss_bytes:
      description: Peak resident memory of the module process; it does not grow with the archive's size.
      type: int
"""


import os

from ansible.module_utils.basic import missing_required_lib

from ansible_collections.airgap.docker.plugins.module_utils import archive_inspect, archive_stream, image_plans, image_transfer, progress, sidecar
from ansible_collections.airgap.docker.plugins.module_utils.archive_files import archive_stat, resolve
from ansible_collections.airgap.docker.plugins.module_utils.errors import ArchiveError, EngineError, InvalidInput
from ansible_collections.airgap.docker.plugins.module_utils.image_load_steps import ImageArchiveReader, check_thin
from ansible_collections.airgap.docker.plugins.module_utils.image_results import (
    info_result,
    load_diff,
    load_message,
    records_result,
    save_diff,
    steps_result,
    wanted_result,
)
from ansible_collections.airgap.docker.plugins.module_utils.image_save_steps import (
    check_input_carries,
    match_saved,
    normalize_request,
    recorded_state,
    write_to_temp,
)
from ansible_collections.airgap.docker.plugins.module_utils.module_support import (
    ARCHIVE_ARGUMENT_SPEC,
    ENGINE_ARGUMENT_SPEC,
    ArchiveManager,
    build_module,
    run_manager,
)
from ansible_collections.airgap.docker.plugins.module_utils.split_files import SplitFiles
from ansible_collections.airgap.docker.plugins.module_utils.thin_plan import plan_omissions


class ImageArchiveManager(SplitFiles, ArchiveManager):
    """Decides what a run must do, honours check mode, then does it."""

    writes_state = "saved"
    handlers = {"saved": "ensure_saved", "loaded": "ensure_loaded", "inspected": "ensure_inspected"}

    def __init__(self, module):
        super().__init__(module)
        self.prepare_files()
        if self.params["from_archive"]:
            self.params["from_archive"] = resolve(self.params["from_archive"])  # its first part names a split archive
        self.reader = ImageArchiveReader(self.params.get("checksum"), self.recall_verified, self.remember_verified,
                                         self.add_stats)

    # saved ----------------------------------------------------------------------------------

    def ensure_saved(self):
        kind, level = self.writing_compression()
        platform = self.params["platform"]
        requests = [normalize_request(r) for r in self.params["images"]]
        source = self._input_archive(platform)
        if source is None:
            self.engine.check_platform_support(platform)
            wanted = image_plans.wanted_images(requests, lambda ref: self.engine.inspect_image(ref, platform), platform)
        else:
            wanted = image_plans.wanted_from_archive(requests, source.images)
        omitted = plan_omissions([w.diff_ids for w in wanted], self.params["exclude_layers"])
        for want, count in zip(wanted, omitted):
            want.omitted = count
            check_input_carries(want, self.params["from_archive"])

        recorded, facts, up_to_date, reason = self._save_decision(wanted, kind, platform)
        self.diff(*save_diff(recorded, wanted))
        if up_to_date:
            self._keep(recorded, facts, reason, platform)
            return
        if self.check_mode:
            self.finish(True, "would save: " + reason, "saved", None, images=wanted_result(wanted))
            return
        content, records = self._save(wanted, requests, kind, level, platform, source)
        self.finish(True, "saved: " + reason, "saved", content.facts(self.path), images=records_result(records))

    def _keep(self, recorded, facts, reason, platform):
        """The archive holds what is wanted: it stays, laid out again when split_size asks for other files."""
        problem = self.layout_problem()
        if problem is None:
            self.finish(False, reason, "skipped", facts, images=records_result(recorded))
        elif self.check_mode:
            self.finish(True, "would lay the archive out again: " + problem, "relaid", facts, images=records_result(recorded))
        else:
            facts = recorded_state(self.lay_out(self.trusted_document), self.path, platform)[3]
            self.finish(True, "laid the archive out again: " + problem, "relaid", facts, images=records_result(recorded))

    def _save_decision(self, wanted, kind, platform):
        """(recorded images, archive facts, up to date, reason) of the archive at path against wanted.

        What this host wrote or verified before (the memo) decides at O(1) cost; an archive it
        does not know is read, never judged by its sidecar.
        """
        stat = archive_stat(self.path)
        document = self.recall_verified(self.path, stat) if stat is not None else None
        if stat is not None and document is None:
            try:
                content = image_transfer.scan_archive(self.path)
            except ArchiveError as exc:
                # An unreadable file at the path is replaced by a good archive.
                return [], None, False, "the existing file is not a readable image archive (%s)" % exc.msg
            self.add_stats(content.stats)
            document = content.document()
            self.remember_verified(self.path, document, content.file_stat)
        recorded, recorded_kind, recorded_platform, facts = None, None, None, None
        if document is not None:
            self.trusted_document = document
            recorded, recorded_kind, recorded_platform, facts = recorded_state(document, self.path, platform)
        up_to_date, reason = image_plans.save_decision(wanted, recorded, recorded_kind, kind, recorded_platform, platform)
        if self.params["force"] and up_to_date:
            up_to_date, reason = False, "force is set"
        return recorded, facts, up_to_date, reason

    def _input_archive(self, platform):
        """The full archive named by from_archive, as ArchiveContent (with the engine facts its
        sidecar records), or None when the images come from the engine."""
        path = self.params["from_archive"]
        if not path:
            return None
        if platform:
            raise InvalidInput("platform cannot be combined with from_archive: the images come from the archive as they are.")
        if os.path.abspath(path) == os.path.abspath(self.path):
            raise InvalidInput("from_archive must name another file than path (%s)." % self.path)
        content, expected = self.reader.content(path, "written")
        if not content.verified:
            # What the output will hold (images, tags, layers to leave out) must come from the input itself.
            content, expected = self.reader.read_whole(path, "written")
        content.sha256 = expected
        return content

    def _save(self, wanted, requests, kind, level, platform, source):
        # With from_archive the engine is never contacted (it may be down or absent).
        engine = self.engine if source is None else None
        with progress.saving(self.params["progress_file"], "saving %s to %s" % (", ".join(requests), self.path),
                             self.path, sum(w.size or 0 for w in wanted), self.module.warn):
            target, content, thin = write_to_temp(engine, wanted, self.path, kind, level, platform, source,
                                                  self.params["from_archive"], self.split_size)
        try:
            records = match_saved(wanted, content.images)
        except EngineError:
            target.abort()
            raise
        engine_facts = (source.engine if source.verified else {}) if source is not None else self.engine.facts()
        request = {"images": requests, "platform": platform}
        if thin:
            request["exclude_layers"] = sorted(set(self.params["exclude_layers"]))

        def make_sidecar(stat):
            archive = dict(content.facts(self.path), mtime_ns=stat.st_mtime_ns, tar_size=content.tar_size)
            archive.pop("path")
            self.trusted_document = sidecar.build(archive, records, engine_facts, request)
            return self.trusted_document

        written = target.temp_stat()  # the file this run wrote, before it is renamed into place
        archive_stream.commit_archive(target, self.path, make_sidecar)
        self.add_stats(content.stats)
        self.apply_file_attributes(True)
        # Remembered after the file attributes (their change changes the ctime), and only for the
        # file this run wrote, should another have been put in its place meanwhile.
        now = archive_stat(self.path)
        if now is not None and (now.st_dev, now.st_ino) == (written.st_dev, written.st_ino):
            self.remember_verified(self.path, self.trusted_document, now)
        return content, records

    # loaded ---------------------------------------------------------------------------------

    def ensure_loaded(self):
        content, expected_sha256 = self.reader.content(self.path, "loaded")
        platform, force = self.params["platform"], self.params["force"]
        self.engine.check_platform_support(platform)
        lookup = image_plans.EngineLookup(self.engine.inspect_image, self.engine.list_images)
        steps = self._load_steps(content, lookup)
        if not content.verified and (self.check_mode or not any(s.needs_load for s in steps)):
            # A sidecar's claims may plan a load, which verifies them on the way; anything else
            # (skip, re-tag, a forced load, what check mode predicts) rests on the archive itself.
            content, expected_sha256 = self.reader.read_whole(self.path, "loaded")
            steps = self._load_steps(content, lookup)
        needs_load = [s for s in steps if s.needs_load]
        retags = [(tag, s.engine_id) for s in steps if s.needs_retag for tag in s.missing_tags]
        if force and not needs_load:
            needs_load = steps
        if needs_load:
            check_thin(self.engine, content.images, platform, self.path)
        self.diff(*load_diff(steps))
        if not needs_load and not retags:
            self.finish(False, "all %d image(s) of the archive are in the engine with their tags" % len(steps),
                        "skipped", content.facts(self.path), images=steps_result(steps))
            return
        actions = ["loaded"] if needs_load else ["retagged"]
        if self.check_mode:
            self.finish(True, "would " + load_message(needs_load, retags, force, done=False), actions, content.facts(self.path),
                        images=steps_result(steps))
            return
        if needs_load:
            content = self._load(content, expected_sha256, platform)
        else:
            for tag, engine_id in retags:
                self.engine.tag(engine_id, tag)
        steps, retagged_after = image_transfer.settle_loaded_images(self.engine, content.images, lookup)
        if retagged_after and "retagged" not in actions:
            actions.append("retagged")
        self.finish(True, load_message(needs_load, retags, force, done=True), actions, content.facts(self.path),
                    images=steps_result(steps))

    # inspected ------------------------------------------------------------------------------

    def ensure_inspected(self):
        """What the archive holds, without any engine (self.engine is never touched here)."""
        found = archive_inspect.inspect(self.reader, self.path, self.params["checksum"])
        content = found.content
        if self.params["images"]:
            image_plans.check_requested_in_archive([r.strip() for r in self.params["images"]], content.images)
        archive = dict(content.facts(self.path), parts=archive_inspect.parts_result(self.path, content))
        self.finish(False, archive_inspect.message(found), "inspected", archive, images=info_result(content.images),
                    verified=found.verified, source=found.source)
        self.result["verified"] = found.verified  # also when None: no checksum to compare

    def _load_steps(self, content, lookup):
        """What loading content takes, once the images requested are known to be in it."""
        if self.params["images"]:
            image_plans.check_requested_in_archive([r.strip() for r in self.params["images"]], content.images)
        return image_plans.load_steps(content.images, lookup)

    def _load(self, content, expected_sha256, platform):
        """Load the archive, verified while it streams; returns the ArchiveContent it verified."""
        with progress.loading(self.params["progress_file"], "loading " + self.path, self.path, self.module.warn):
            loaded, stats = image_transfer.load_archive(self.engine, self.path, content.compression, expected_sha256, platform,
                                                        claims=content.images)
        self.add_stats(stats)
        if not content.verified:  # what the memo holds already (perhaps richer, from the save) stays
            self.remember_verified(self.path, loaded.document(), loaded.file_stat)
        return loaded


def main():
    # Built without the engine check: state=inspected needs neither an engine nor the Docker SDK.
    module = build_module(
        dict(
            ENGINE_ARGUMENT_SPEC,
            path=dict(type="path", required=True),
            state=dict(type="str", default="saved", choices=["saved", "loaded", "inspected", "absent"]),
            images=dict(type="list", elements="str", aliases=["name"]),
            force=dict(type="bool", default=False),
            platform=dict(type="str"),
            exclude_layers=dict(type="list", elements="str", default=[]),
            from_archive=dict(type="path"),
            split_size=dict(type="str"),
            progress_file=dict(type="path"),
            **ARCHIVE_ARGUMENT_SPEC,
        ),
        engine=False,
        required_if=[("state", "saved", ["images"])],
        add_file_common_args=True,
    )
    if module.params["state"] != "inspected":
        require_docker_sdk(module)
    run_manager(module, ImageArchiveManager)


def require_docker_sdk(module):
    """What build_module checks for modules that always talk to an engine."""
    from ansible_collections.airgap.docker.plugins.module_utils.engine import DOCKER_IMPORT_ERROR

    if DOCKER_IMPORT_ERROR is not None:
        module.fail_json(msg=missing_required_lib("docker (Docker SDK for Python >= 7.0)"), exception=DOCKER_IMPORT_ERROR)


if __name__ == "__main__":
    main()
