#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: container_archive
short_description: Export a container's filesystem and import it as a runnable image, idempotently
version_added: 0.1.0
description:
  - Exports the filesystem of a container into an archive (C(docker export)) and imports such an archive as an
    image (C(docker import)), keeping what plain C(docker import) drops. The container's configuration (C(CMD),
    C(ENTRYPOINT), C(ENV), C(WORKDIR), C(USER), ports, volumes, labels, stop signal, health check, shell, C(ONBUILD))
    is recorded at export inside the archive (a snapshot record after the export's end-of-archive marker, which
    C(tar) and C(docker import) never read) and restored on import, so the imported image runs like the container did.
  - What an import gives the engine comes from the archive's own bytes, covered by O(checksum). The sidecar
    C(<path>.airgap.json) is only a cache; a sidecar that does not describe its archive is refused, never obeyed.
  - Imports are deterministic. The same archive with the same configuration and O(changes) gives the same image ID
    on every host and every run, so a re-run finds the image present and streams nothing.
  - A stopped container whose archive is current is recognised without exporting again, from what this host wrote or
    verified (kept in the user's cache, C(~/.cache/airgap.docker/verified) or C($AIRGAP_DOCKER_CACHE/verified)).
    A running container can change at any moment; it is exported again and the archive is replaced only when the
    filesystem differs.
  - Use M(airgap.docker.image_archive) to move images with their layers and history; this module moves what a
    container has become.
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
      - For a stopped container with a current archive check mode reads nothing. For a running container it exports the
        filesystem and hashes it without writing anything and without pausing the container, to tell whether a real
        run would change the archive.
      - On import, check mode reads an archive this host has not verified before, so that what it predicts rests on
        the archive and not on its sidecar.
  diff_mode:
    support: full
    details: Shows the container or image identity before and after.
  idempotent:
    support: full
  action_group:
    support: full
options:
  state:
    description:
      - V(exported) makes O(path) hold the current filesystem of O(container).
      - V(imported) makes image O(image) exist, built from the archive at O(path).
      - V(absent) removes the archive, its parts (see O(split_size)) and its sidecar.
      - With V(imported) and V(absent), O(path) may name the first part of an archive held as parts.
    type: str
    choices: [exported, imported, absent]
    default: exported
  container:
    description:
      - Name or ID of the container to export. Required for O(state=exported).
    type: str
  path:
    description:
      - The archive file on the managed host.
    type: path
    required: true
  image:
    description:
      - The image to create on import, as V(repo:tag) (the tag defaults to V(latest)). Required for O(state=imported).
    type: str
  restore_config:
    description:
      - On import, give the image the container's configuration recorded at export time.
      - Archives written by C(docker export), or by earlier versions of this collection, carry no snapshot record and so no
        configuration; then only O(changes) apply, whatever their sidecar says.
    type: bool
    default: true
  changes:
    description:
      - Dockerfile instructions applied on import after the restored configuration, as with C(docker import --change).
      - Supported are C(CMD), C(ENTRYPOINT), C(ENV), C(EXPOSE), C(HEALTHCHECK), C(LABEL), C(ONBUILD), C(SHELL),
        C(STOPSIGNAL), C(USER), C(VOLUME) and C(WORKDIR).
    type: list
    elements: str
    default: []
  comment:
    description:
      - Comment recorded in the imported image's history (what C(docker import --message) sets).
      - The option cannot be called C(message), a name ansible-core reserves for itself.
    type: str
  pause:
    description:
      - Pause a running container while it is exported, so the archive is a consistent snapshot. The container is
        always unpaused afterwards, also when the export fails. A container that was already paused stays paused.
    type: bool
    default: false
  force:
    description:
      - Export or import even when the archive or the image is already up to date.
    type: bool
    default: false
notes:
  - The image created on import has one layer, the container's filesystem, and one history entry. Its creation time is
    the time the container stopped, or for a running container the time of the export (for archives without a snapshot
    record, the newest file time in the archive), never the time of the import; that is what makes the image ID repeatable,
    also when a stopped container is exported again.
  - Volumes are not part of a container's filesystem and are not exported.
seealso:
  - module: airgap.docker.image_archive
  - name: docker save versus docker export
    description: When to use image archives and when container archives.
    link: https://github.com/airgap-docker/airgap.docker/blob/main/docs/save-vs-export.md
"""

EXAMPLES = r"""
- name: Snapshot a container's filesystem (paused for a consistent copy)
  airgap.docker.container_archive:
    container: legacy-app
    path: /srv/transfer/legacy-app.tar.zst
    pause: true

- name: Import it on another host; it runs with the original CMD, ENV and WORKDIR
  airgap.docker.container_archive:
    state: imported
    path: /srv/transfer/legacy-app.tar.zst
    image: legacy-app:snapshot

- name: Snapshot a large container onto media with a 4 GiB file size limit (legacy-app.tar.zst.part001, ...)
  airgap.docker.container_archive:
    container: legacy-app
    path: /media/usb/legacy-app.tar.zst
    split_size: 4095M

- name: Import it from the parts (naming the archive or its first part)
  airgap.docker.container_archive:
    state: imported
    path: /media/usb/legacy-app.tar.zst.part001
    image: legacy-app:snapshot

- name: Import an archive written by docker export, giving it a command
  airgap.docker.container_archive:
    state: imported
    path: /srv/transfer/rootfs.tar
    image: rootfs:1
    changes:
      - ENV APP_MODE=offline
      - WORKDIR /srv
      - CMD ["/srv/run.sh"]
"""

RETURN = r"""
msg:
  description: Why the module changed something, or why it did not.
  returned: always
  type: str
  sample: the archive holds the container's current filesystem
actions:
  description:
    - What was done (or, in check mode, would be done), for example V(exported), V(imported), V(retagged), V(skipped), or
      V(relaid) (an up-to-date archive written again as other files, see O(split_size)).
  returned: always
  type: list
  elements: str
archive:
  description: The archive file.
  returned: unless O(state=absent)
  type: dict
  contains:
    path:
      description: Path of the archive.
      type: str
    size:
      description: Size in bytes.
      type: int
    sha256:
      description: SHA-256 of the archive file.
      type: str
    compression:
      description: V(none), V(gzip) or V(zstd).
      type: str
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
    layer_sha256:
      description: SHA-256 of the uncompressed filesystem tar, the imported image's layer diff ID.
      type: str
    parts:
      description: The parts of an archive held as parts (see O(split_size)), in order, as its sidecar records them.
      returned: for an archive held as parts
      type: list
      elements: dict
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
container:
  description: The exported container.
  returned: when O(state=exported)
  type: dict
  contains:
    id:
      description: Container ID.
      type: str
    name:
      description: Container name.
      type: str
    image:
      description: The image the container was created from.
      type: str
image:
  description: The imported image.
  returned: when O(state=imported)
  type: dict
  contains:
    id:
      description: The image's ID in the engine (config digest on the classic store, manifest digest on the containerd store).
      type: str
    tags:
      description: Its tags.
      type: list
      elements: str
    config:
      description: The runtime configuration given to the image.
      type: dict
    config_digest:
      description: Digest of the image config; the same on every host for the same archive, config and changes.
      type: str
    manifest_digest:
      description: Digest of the image manifest.
      type: str
sidecar:
  description:
    - The archive's sidecar document, as written next to it in C(<path>.airgap.json), for example to build a bundle
      manifest without reading the file back.
  returned: with O(state=exported) when the archive is current, except in check mode when it would be rewritten
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
      description: Bytes of the export received from the engine.
      type: int
    bytes_to_engine:
      description: Bytes sent to the engine on import; 0 when the image was already there.
      type: int
    archive_bytes_read:
      description: Bytes of the archive file read.
      type: int
    archive_bytes_written:
      description: Bytes of the archive file written.
      type: int
    peak_rss_bytes:
      description: Peak resident memory of the module process.
      type: int
"""


from ansible_collections.airgap.docker.plugins.module_utils import (
    archive_stream,
    container_image,
    container_transfer,
    image_plans,
    image_transfer,
    progress,
    sidecar,
)
from ansible_collections.airgap.docker.plugins.module_utils.archive_files import archive_stat
from ansible_collections.airgap.docker.plugins.module_utils.container_documents import KIND, claims_of
from ansible_collections.airgap.docker.plugins.module_utils.container_export import export_snapshot
from ansible_collections.airgap.docker.plugins.module_utils.container_reading import (
    LayerReader,
    document_of,
    result_of_document,
    result_of_layer,
)
from ansible_collections.airgap.docker.plugins.module_utils.container_state import check_exportable, container_facts
from ansible_collections.airgap.docker.plugins.module_utils.dockerfile_changes import apply_changes
from ansible_collections.airgap.docker.plugins.module_utils.module_support import (
    ARCHIVE_ARGUMENT_SPEC,
    ArchiveManager,
    build_module,
    run_manager,
)
from ansible_collections.airgap.docker.plugins.module_utils.platforms import engine_platform
from ansible_collections.airgap.docker.plugins.module_utils.references import normalize_tag_reference
from ansible_collections.airgap.docker.plugins.module_utils.split_files import SplitFiles
from ansible_collections.airgap.docker.plugins.module_utils.timestamps import rfc3339


class ContainerArchiveManager(SplitFiles, ArchiveManager):
    """Decides what a run must do, honours check mode, then does it.

    What this host wrote or verified about an archive (the verified memo) decides at O(1)
    cost. A sidecar is someone's claim: it may plan an import that checks it on the way, and
    it is refused when the archive says otherwise; it never decides alone.
    """

    writes_state = "exported"
    sidecar_kind = KIND
    handlers = {"exported": "ensure_exported", "imported": "ensure_imported"}

    def __init__(self, module):
        super().__init__(module)
        self.prepare_files()
        self.reader = LayerReader(self.params.get("checksum"), self.recall_verified, self.remember_verified, self.add_stats,
                                  module.warn if self.params["restore_config"] else None)

    # exported -------------------------------------------------------------------------------

    def ensure_exported(self):
        kind, level = self.writing_compression()
        info = check_exportable(self.engine.inspect_container(self.params["container"]), self.params["container"], self.engine.host)
        container = container_facts(info)
        stat = archive_stat(self.path)
        meta, verified = self._recorded_archive(stat)
        self.diff({"container": (meta or {}).get("container"), "layer_sha256": ((meta or {}).get("layer") or {}).get("sha256")},
                  {"container": container, "layer_sha256": "(taken at export)"})

        reason = self._export_needed(meta, verified, stat, container, kind)
        if reason is None:
            self._keep(dict(meta, container=container), stat,
                       "the archive holds the stopped container's filesystem, and it has not run since")
            return
        recorded = (meta or {}).get("container") or {}
        compare = (meta is not None and not self.params["force"] and meta["archive"].get("compression") == kind
                   and recorded.get("id") == container["id"])
        if self.check_mode and not compare:
            self.finish(True, "would export: " + reason, "exported", None, container=container)
            return

        target, layer = self._export_to_temp(info, container, kind, level)
        if compare and layer.tar_sha256 == meta["layer"]["sha256"]:
            kept = meta if verified else self._verified_for_keeping(meta, container)
            if kept is not None:
                if target:
                    target.abort()
                self._keep(dict(kept, container=container), stat, "the container's filesystem is unchanged since the archive was written")
                return
            reason = "the archive does not hold what its sidecar says"
        elif compare:
            reason = "the container's filesystem changed"
        if self.check_mode:
            self.finish(True, "would export: " + reason, "exported", None, container=container)
            return

        def make_sidecar(new_stat):
            self.trusted_document = document_of(layer, new_stat, container, self.engine.facts())
            return self.trusted_document

        written = archive_stream.commit_archive(target, self.path, make_sidecar)
        self.apply_file_attributes(True)
        self.finish(True, "exported: " + reason, "exported", result_of_document(self.path, self.trusted_document),
                    container=container)
        self.remember_if_unchanged(self.trusted_document, written)

    def _export_to_temp(self, info, container, kind, level):
        """(SplitTarget or None in check mode, LayerFacts): the export with its snapshot record appended."""
        # In check mode the export only streams to compare: nobody waits on a file for it.
        with progress.saving(None if self.check_mode else self.params["progress_file"],
                             "exporting container %s to %s" % (container["name"], self.path), self.path, None, self.module.warn):
            target, layer = export_snapshot(self.engine, info, container, self.path, kind, level, self.params["pause"],
                                            write=not self.check_mode, split_size=self.split_size)
        self.add_stats(layer.stats)
        return target, layer

    def _keep(self, document, stat, msg):
        """The archive stays: report it, and remember the document that describes it; laid out
        again first when split_size asks for other files."""
        document = dict(document, archive=dict(document["archive"], size=stat.st_size, mtime_ns=stat.st_mtime_ns))
        self.trusted_document = document
        problem = self.layout_problem()
        if problem is not None:
            if not self.check_mode:
                document = self.lay_out(document)
            msg = "%s the archive out again: %s" % ("would lay" if self.check_mode else "laid", problem)
        self.finish(problem is not None, msg, "relaid" if problem else "skipped", result_of_document(self.path, document),
                    container=document["container"])
        if not self.check_mode and problem is None:
            self.remember_if_unchanged(document, stat)

    def _verified_for_keeping(self, meta, container):
        """The document of the archive on disk when reading it confirms its sidecar, else None."""
        found = self.reader.confirmed(self.path, meta, container["id"])
        return document_of(found, found.file_stat, container, self.engine.facts()) if found is not None else None

    def _recorded_archive(self, stat):
        """(document, verified) for the archive at path: what this host wrote or verified (True),
        else its sidecar when it was written for this very file (False), else (None, False)."""
        if stat is None:
            return None, False
        document = self.recall_verified(self.path, stat)
        if document is not None:
            return document, True
        meta = sidecar.read_sidecar(self.path, kind=KIND)
        if meta is not None and sidecar.describes(meta, stat) and claims_of(meta, None) is not None:
            return meta, False
        return None, False

    def _export_needed(self, meta, verified, stat, container, kind):
        """None when the archive is up to date without exporting; else why an export is needed."""
        if self.params["force"]:
            return "force is set"
        if stat is None:
            return "the archive does not exist"
        if meta is None:
            return "no sidecar describes the archive as it is"
        if meta["archive"].get("compression") != kind:
            return "the archive is compressed with %s, %s was requested" % (meta["archive"].get("compression"), kind)
        recorded = meta.get("container") or {}
        if recorded.get("id") != container["id"]:
            return "the archive was taken from another container (%s)" % (recorded.get("name") or recorded.get("id"))
        if container["running"]:
            return "the container is running, so its filesystem may have changed"
        if (recorded.get("started_at"), recorded.get("finished_at")) != (container["started_at"], container["finished_at"]):
            return "the container has run since the archive was written"
        if not verified:
            return "this host has not written or verified the archive, and its sidecar alone does not show it current"
        return None

    # imported -------------------------------------------------------------------------------

    def ensure_imported(self):
        name = normalize_tag_reference(self.params["image"])
        layer, claimed_by = self.reader.for_import(self.path)
        archive, wanted, step, config = self._import_plan(name, layer)
        force = self.params["force"]
        if claimed_by and (self.check_mode or force or not step.needs_load):
            # A sidecar's claims may plan an import, which verifies them on the way; anything
            # else (skip, re-tag, a forced import, what check mode predicts) rests on the archive itself.
            layer, claimed_by = self.reader.read_whole(self.path, claims=layer, claimed_by=claimed_by), None
            archive, wanted, step, config = self._import_plan(name, layer)
        facts = result_of_layer(self.path, layer)
        image = {"id": step.engine_id, "tags": [name], "config": config, "config_digest": archive.config_digest,
                 "manifest_digest": archive.manifest_digest}
        self.diff({"tags": dict(step.tags_before)}, {"tags": {name: step.engine_id or archive.config_digest}})
        if not step.needs_load and not step.needs_retag and not force:
            self.finish(False, "image %s already exists, built from this archive with this configuration" % name,
                        "skipped", facts, image=image)
            return
        action = "imported" if (step.needs_load or force) else "retagged"
        why = "force is set" if force and not step.needs_load else (
            "no image from this archive and configuration in the engine" if step.needs_load else "%s points to another image" % name)
        if self.check_mode:
            self.finish(True, "would %s: %s" % ("import" if action == "imported" else "re-tag", why), action, facts, image=image)
            return
        if action == "imported":
            with progress.loading(self.params["progress_file"], "importing " + self.path, self.path, self.module.warn):
                stats, found = container_transfer.import_layer(self.engine, self.path, layer, archive,
                                                               container_transfer.mismatch_error(self.path, claimed_by))
            self.add_stats(stats)
            self.reader.remember_read(self.path, found)
        else:
            self.engine.tag(step.engine_id, name)
        steps = image_transfer.settle_loaded_images(self.engine, [wanted], lookup=self._lookup())[0]
        image["id"] = steps[0].engine_id
        self.finish(True, "%s: %s" % (action, why), action, facts, image=image)

    def _lookup(self):
        return image_plans.EngineLookup(self.engine.inspect_image, self.engine.list_images)

    def _import_plan(self, name, layer):
        """(ImportArchive, ArchiveImage, engine step, config) of importing `layer` as image name."""
        record = layer.record
        config = dict(record["config"]) if (record and self.params["restore_config"]) else {}
        config = apply_changes(config, self.params["changes"])
        created = record["created"] if record else rfc3339(layer.newest_mtime)
        platform = record["platform"] if record else engine_platform(self.engine.version())
        archive, wanted = container_image.import_plan(name, layer.tar_sha256, layer.tar_size, created, platform, config,
                                                      self.params["comment"])
        step = image_plans.load_steps([wanted], self._lookup())[0]
        return archive, wanted, step, config


def main():
    module = build_module(
        dict(
            state=dict(type="str", default="exported", choices=["exported", "imported", "absent"]),
            container=dict(type="str"),
            path=dict(type="path", required=True),
            image=dict(type="str"),
            restore_config=dict(type="bool", default=True),
            changes=dict(type="list", elements="str", default=[]),
            comment=dict(type="str"),
            pause=dict(type="bool", default=False),
            force=dict(type="bool", default=False),
            split_size=dict(type="str"),
            progress_file=dict(type="path"),
            **ARCHIVE_ARGUMENT_SPEC,
        ),
        required_if=[("state", "exported", ["container"]), ("state", "imported", ["image"])],
        add_file_common_args=True,
    )
    run_manager(module, ContainerArchiveManager)


if __name__ == "__main__":
    main()
