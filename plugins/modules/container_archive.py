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
    is recorded at export and restored on import, so the imported image runs like the container did.
  - Imports are deterministic. The same archive with the same configuration and O(changes) gives the same image ID
    on every host and every run, so a re-run finds the image present and streams nothing.
  - A stopped container whose archive is current is recognised from the archive's sidecar without exporting again.
    A running container can change at any moment; it is exported again and the archive is replaced only when the
    filesystem differs.
  - Use M(airgap.docker.image_archive) to move images with their layers and history; this module moves what a
    container has become.
author:
  - airgap.docker contributors (@airgap-docker)
extends_documentation_fragment:
  - airgap.docker.engine
  - airgap.docker.archive
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
      - V(absent) removes the archive and its sidecar.
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
      - Archives without a sidecar (written by C(docker export)) carry no configuration; then only O(changes) apply.
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
    the time the container stopped, or for a running container the time of the export (for archives without a sidecar,
    the newest file time in the archive), never the time of the import; that is what makes the image ID repeatable,
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
  description: What was done (or, in check mode, would be done), for example V(exported), V(imported), V(retagged), V(skipped).
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
    layer_sha256:
      description: SHA-256 of the uncompressed filesystem tar, the imported image's layer diff ID.
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

import datetime
import os

from ansible_collections.airgap.docker.plugins.module_utils import (
    archive_stream,
    compression,
    container_image,
    container_transfer,
    image_plans,
    image_transfer,
    sidecar,
)
from ansible_collections.airgap.docker.plugins.module_utils.dockerfile_changes import apply_changes
from ansible_collections.airgap.docker.plugins.module_utils.errors import AirgapError, ArchiveError, ContainerNotFound
from ansible_collections.airgap.docker.plugins.module_utils.files import stat_or_none
from ansible_collections.airgap.docker.plugins.module_utils.module_support import (
    ARCHIVE_ARGUMENT_SPEC,
    ArchiveManager,
    build_module,
    run_manager,
)
from ansible_collections.airgap.docker.plugins.module_utils.references import normalize_tag_reference

KIND = "container"


class ContainerArchiveManager(ArchiveManager):
    """Decides what a run must do, honours check mode, then does it."""

    writes_state = "exported"
    sidecar_kind = KIND
    handlers = {"exported": "ensure_exported", "imported": "ensure_imported"}

    # exported -------------------------------------------------------------------------------

    def ensure_exported(self):
        kind, level = self.writing_compression()
        info = self._container()
        container = self._container_facts(info)
        meta, current = self._current_archive()
        self.diff({"container": (meta or {}).get("container"), "layer_sha256": ((meta or {}).get("layer") or {}).get("sha256")},
                  {"container": container, "layer_sha256": "(taken at export)"})

        reason = self._export_needed(meta, current, container, kind)
        if reason is None:
            self.finish(False, "the archive holds the stopped container's filesystem, and it has not run since",
                        "skipped", self._archive_facts(meta), container=container)
            return
        compare = meta is not None and current and not self.params["force"] and (meta["archive"].get("compression") == kind)
        if self.check_mode and not compare:
            self.finish(True, "would export: " + reason, "exported", None, container=container)
            return

        running = info["State"].get("Running") and not info["State"].get("Paused")
        pause = bool(self.params["pause"] and running and not self.check_mode)
        estimate = (self.engine.inspect_container(info["Id"], size=True) or {}).get("SizeRootFs") or 0 if not self.check_mode else 0
        with container_transfer.paused(self.engine, info["Id"], pause):
            target, layer = container_transfer.export_container(self.engine, info["Id"], self.path, kind, level, estimate,
                                                                write=not self.check_mode)
        self.add_stats(layer.stats)
        if compare and layer.tar_sha256 == meta["layer"]["sha256"]:
            if target:
                target.abort()
                self._record_run(meta, container)
            self.finish(False, "the container's filesystem is unchanged since the archive was written", "skipped",
                        self._archive_facts(meta), container=container)
            return
        if self.check_mode:
            self.finish(True, "would export: the container's filesystem changed", "exported", None, container=container)
            return
        created = _snapshot_time(container)
        platform = self._platform(info)

        def make_sidecar(stat):
            archive = {"size": layer.archive_size, "sha256": layer.archive_sha256, "compression": kind, "mtime_ns": stat.st_mtime_ns}
            return sidecar.build(archive, [], self.engine.facts(), kind=KIND, extra={
                "layer": {"sha256": layer.tar_sha256, "size": layer.tar_size},
                "container": container, "config": container_image.capture_config(info.get("Config")),
                "platform": platform, "created": created,
            })

        archive_stream.commit_archive(target, self.path, make_sidecar)
        self.apply_file_attributes(True)
        self.finish(True, "exported: " + reason, "exported", {
            "path": self.path, "size": layer.archive_size, "sha256": layer.archive_sha256, "compression": kind,
            "layer_sha256": layer.tar_sha256}, container=container)

    def _container(self):
        name = self.params["container"]
        info = self.engine.inspect_container(name)
        if info is None:
            raise ContainerNotFound("No container %s in the engine at %s." % (name, self.engine.host))
        state = info.get("State") or {}
        if state.get("Dead") or state.get("Status") == "dead":
            raise AirgapError("Container %s is dead; its filesystem cannot be exported." % name)
        if state.get("Status") == "removing":
            raise AirgapError("Container %s is being removed; its filesystem cannot be exported." % name)
        return info

    @staticmethod
    def _container_facts(info):
        state = info.get("State") or {}
        return {"id": info["Id"], "name": (info.get("Name") or "").lstrip("/"), "image": (info.get("Config") or {}).get("Image"),
                "image_id": info.get("Image"), "started_at": state.get("StartedAt"), "finished_at": state.get("FinishedAt"),
                "running": bool(state.get("Running"))}

    def _current_archive(self):
        """(sidecar, sidecar describes the file on disk) for the archive at path."""
        stat = stat_or_none(self.path)
        meta = sidecar.read_sidecar(self.path, kind=KIND) if stat else None
        return meta, bool(meta and sidecar.describes(meta, stat))

    def _export_needed(self, meta, current, container, kind):
        """None when the archive is up to date without exporting; else why an export is needed."""
        if self.params["force"]:
            return "force is set"
        if not os.path.exists(self.path):
            return "the archive does not exist"
        if meta is None:
            return "the archive has no sidecar describing its container"
        if not current:
            return "the archive was changed after its sidecar was written"
        if meta["archive"].get("compression") != kind:
            return "the archive is compressed with %s, %s was requested" % (meta["archive"].get("compression"), kind)
        recorded = meta.get("container") or {}
        if recorded.get("id") != container["id"]:
            return "the archive was taken from another container (%s)" % (recorded.get("name") or recorded.get("id"))
        if container["running"]:
            return "the container is running, so its filesystem may have changed"
        if (recorded.get("started_at"), recorded.get("finished_at")) != (container["started_at"], container["finished_at"]):
            return "the container has run since the archive was written"
        return None

    def _record_run(self, meta, container):
        """The filesystem is unchanged: remember the container's run so the next check is O(1)."""
        meta = dict(meta, container=container)
        stat = os.stat(self.path)
        meta["archive"] = dict(meta["archive"], mtime_ns=stat.st_mtime_ns, size=stat.st_size)
        sidecar.write(self.path, meta)

    def _platform(self, info):
        image = self.engine.inspect_image(info.get("Image")) or {}
        version = self.engine.version()
        return {"os": image.get("Os") or version.get("Os") or "linux",
                "architecture": image.get("Architecture") or version.get("Arch") or "amd64",
                "variant": image.get("Variant")}

    # imported -------------------------------------------------------------------------------

    def ensure_imported(self):
        name = normalize_tag_reference(self.params["image"])
        layer, meta, expected_sha256 = self._layer_for_import()
        config = dict(meta.get("config") or {}) if (meta and self.params["restore_config"]) else {}
        config = apply_changes(config, self.params["changes"])
        created = (meta or {}).get("created") or _rfc3339(layer.newest_mtime)
        platform = (meta or {}).get("platform") or self._engine_platform()
        archive, wanted = container_image.import_plan(name, layer.tar_sha256, layer.tar_size, created, platform, config,
                                                      self.params["comment"])
        lookup = image_plans.EngineLookup(self.engine.inspect_image, self.engine.list_images)
        step = image_plans.load_steps([wanted], lookup)[0]
        facts = {"path": self.path, "size": layer.archive_size, "sha256": layer.archive_sha256,
                 "compression": layer.compression, "layer_sha256": layer.tar_sha256}
        image = {"id": step.engine_id, "tags": [name], "config": config, "config_digest": archive.config_digest,
                 "manifest_digest": archive.manifest_digest}
        self.diff({"tags": dict(step.tags_before)}, {"tags": {name: step.engine_id or archive.config_digest}})
        force = self.params["force"]
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
            self.add_stats(container_transfer.import_layer(self.engine, self.path, layer, archive, expected_sha256))
        else:
            self.engine.tag(step.engine_id, name)
        steps = image_transfer.settle_loaded_images(self.engine, [wanted], lookup)[0]
        image["id"] = steps[0].engine_id
        self.finish(True, "%s: %s" % (action, why), action, facts, image=image)

    def _layer_for_import(self):
        """(LayerFacts, sidecar or None, archive sha256 to verify or None)."""
        stat = stat_or_none(self.path)
        if stat is None:
            raise ArchiveError("The archive %s does not exist." % self.path)
        kind = archive_stream.sniff_compression(self.path)
        compression.require(kind)
        meta = sidecar.read_sidecar(self.path, kind=KIND)
        if meta is None:
            layer = container_transfer.scan_layer_archive(self.path)
            self.add_stats(layer.stats)
            return layer, None, self.expected_sha256(layer.archive_sha256, "imported")
        archive = meta.get("archive") or {}
        self.check_sidecar_size(meta, stat, "imported")
        expected = self.expected_sha256(archive.get("sha256"), "imported")
        layer = container_transfer.LayerFacts(meta["layer"]["sha256"], meta["layer"]["size"], kind, expected, stat.st_size)
        return layer, meta, expected

    def _engine_platform(self):
        version = self.engine.version()
        return {"os": version.get("Os") or "linux", "architecture": version.get("Arch") or "amd64"}

    # results --------------------------------------------------------------------------------

    def _archive_facts(self, meta):
        archive = meta["archive"]
        return {"path": self.path, "size": archive.get("size"), "sha256": archive.get("sha256"),
                "compression": archive.get("compression"), "layer_sha256": meta["layer"]["sha256"]}


def _snapshot_time(container):
    """When the exported filesystem last could change: the stop time of a stopped container (so
    that exporting it again gives the same image ID), else now."""
    finished = container.get("finished_at") or ""
    if not container["running"] and finished and not finished.startswith("0001-"):
        return finished
    return _now_rfc3339()


def _now_rfc3339():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _rfc3339(timestamp):
    return datetime.datetime.fromtimestamp(timestamp, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


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
            **ARCHIVE_ARGUMENT_SPEC,
        ),
        required_if=[("state", "exported", ["container"]), ("state", "imported", ["image"])],
        add_file_common_args=True,
    )
    run_manager(module, ContainerArchiveManager)


if __name__ == "__main__":
    main()
