#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: image_info
short_description: Tell which images a Docker engine holds, by name or by identity, without reading any archive
version_added: 0.1.0
description:
  - Reports images of a Docker engine with their IDs, tags, layer diff IDs and the engine-independent fingerprint
    that M(airgap.docker.image_archive) uses to recognise an image on any image store.
  - Given the image records of an archive's sidecar or of a bundle manifest (O(wanted)), says for each one whether
    the engine already holds it with all its tags, holds it under other tags only, or lacks it. That is how the
    R(airgap.docker.migrate, ansible_collections.airgap.docker.migrate_role) role decides, before copying a byte, which archives a host needs.
  - Never changes anything.
author:
  - airgap.docker contributors (@airgap-docker)
extends_documentation_fragment:
  - airgap.docker.engine
  - airgap.docker.attributes
  - airgap.docker.attributes.info_module
  - airgap.docker.attributes.action_group
attributes:
  action_group:
    support: full
options:
  images:
    description:
      - Images to report, by name (V(repo:tag)) or by full or short ID. An image the engine does not hold is reported
        with RV(images[].present=false) rather than failing the module.
    type: list
    elements: str
    default: []
  wanted:
    description:
      - Image records to look for, as found in RV(airgap.docker.image_archive#module:images) or in a bundle's
        C(manifest.json). The keys used are V(tags), V(config_digest), V(manifest_digest), V(index_digest),
        V(fingerprint), V(created) and V(diff_ids); every other key is returned as it was given.
    type: list
    elements: dict
    default: []
  inventory:
    description:
      - Also return the engine's layer inventory, RV(inventory), with every image and its layer stack and every layer
        held. It is what O(airgap.docker.image_archive#module:exclude_layers) needs to write a thin archive for this engine.
      - Costs one inspect per image of the engine; nothing is read from disk.
    type: bool
    default: false
seealso:
  - module: airgap.docker.image_archive
"""

EXAMPLES = r"""
- name: Which of the bundle's images does this host lack?
  airgap.docker.image_info:
    wanted: "{{ bundle.images }}"
  register: probe

- name: Archives this host needs
  ansible.builtin.set_fact:
    needed: "{{ probe.wanted | rejectattr('state', 'eq', 'present') | map(attribute='archive') | unique }}"

- name: Which layers does this host hold, for a thin archive?
  airgap.docker.image_info:
    inventory: true
  register: receiver

- name: Layers and fingerprint of one image
  airgap.docker.image_info:
    images: [registry.example.com/app:1.4]
  register: app
"""

RETURN = r"""
images:
  description: One entry per O(images) request, in order.
  returned: always
  type: list
  elements: dict
  contains:
    request:
      description: The name or ID as requested.
      type: str
    present:
      description: Whether the engine holds it.
      type: bool
    id:
      description: The image's ID in this engine.
      type: str
    tags:
      description: All tags of the image in this engine.
      type: list
      elements: str
    fingerprint:
      description: Digest of the layers, creation time, platform and runtime config; equal for the same image on any engine.
      type: str
    diff_ids:
      description: The image's layers, bottom first, as uncompressed digests.
      type: list
      elements: str
    created:
      description: Creation time of the image.
      type: str
    size:
      description: Size the engine reports for the image.
      type: int
wanted:
  description: Each O(wanted) record as given, plus what the engine has of it.
  returned: always
  type: list
  elements: dict
  contains:
    state:
      description: V(present) (held with all its tags), V(retag) (held, some tags absent or pointing elsewhere) or V(missing).
      type: str
    id:
      description: The image's ID in this engine; null when missing.
      type: str
    missing_tags:
      description: Tags that are absent or point to another image.
      type: list
      elements: str
    held_layers:
      description:
        - How many bottom layers of the record's V(diff_ids) the engine holds as one stack; all of them when the engine
          holds the image (V(present) or V(retag)). A thin archive that leaves out at most that many layers loads here.
      type: int
missing:
  description: Number of O(wanted) records not V(present).
  returned: always
  type: int
inventory:
  description: The engine's layer inventory.
  returned: when O(inventory=true)
  type: dict
  contains:
    images:
      description: Every image, build steps included, with its ID, tags and V(diff_ids) (bottom first).
      type: list
      elements: dict
    layers:
      description: Every layer diff ID the engine holds, sorted.
      type: list
      elements: str
engine:
  description: Version and image store of the engine.
  returned: always
  type: dict
"""

from ansible_collections.airgap.docker.plugins.module_utils import image_plans
from ansible_collections.airgap.docker.plugins.module_utils.archive_layout import ArchiveImage
from ansible_collections.airgap.docker.plugins.module_utils.identity import fingerprint_from_inspect
from ansible_collections.airgap.docker.plugins.module_utils.layer_inventory import LayerInventory
from ansible_collections.airgap.docker.plugins.module_utils.module_support import build_module, engine_client, run_manager


class ImageInfoManager:
    """Reads the engine; decides nothing and changes nothing."""

    def __init__(self, module):
        self.params = module.params
        self.engine = engine_client(self.params)
        self.lookup = image_plans.EngineLookup(self.engine.inspect_image, self.engine.list_images)

        self._inventory = None

    @property
    def inventory(self):
        """The engine's layer stacks, read once and only when needed."""
        if self._inventory is None:
            self._inventory = LayerInventory.from_engine(lambda: self.engine.list_images(intermediate=True), self.lookup.inspect,
                                                         image_plans.engine_tags)
        return self._inventory

    def run(self):
        images = [self._report(request.strip()) for request in self.params["images"]]
        wanted = [self._compare(record) for record in self.params["wanted"]]
        result = {"changed": False, "images": images, "wanted": wanted, "missing": sum(1 for w in wanted if w["state"] != "present"),
                  "engine": self.engine.facts()}
        if self.params["inventory"]:
            result["inventory"] = {"images": self.inventory.images, "layers": self.inventory.layers()}
        return result

    def _report(self, request):
        info = self.lookup.inspect(request)
        if info is None:
            return {"request": request, "present": False, "id": None, "tags": [], "fingerprint": None, "diff_ids": [],
                    "created": None, "size": 0}
        return {"request": request, "present": True, "id": info["Id"], "tags": sorted(image_plans.engine_tags(info)),
                "fingerprint": fingerprint_from_inspect(info), "diff_ids": list((info.get("RootFS") or {}).get("Layers") or []),
                "created": info.get("Created"), "size": info.get("Size") or 0}

    def _compare(self, record):
        # A record may carry only tags and a fingerprint (an archive not written yet).
        image = ArchiveImage.from_dict(dict({"config_digest": None, "tags": []}, **record))
        step = image_plans.load_steps([image], self.lookup)[0]
        state = "missing" if step.needs_load else ("retag" if step.needs_retag else "present")
        held = len(image.diff_ids) if not step.needs_load else self.inventory.held_run(image.diff_ids)
        return dict(record, state=state, id=step.engine_id, missing_tags=step.missing_tags, held_layers=held)


def main():
    module = build_module(
        dict(
            images=dict(type="list", elements="str", default=[]),
            wanted=dict(type="list", elements="dict", default=[]),
            inventory=dict(type="bool", default=False),
        ),
    )
    run_manager(module, ImageInfoManager)


if __name__ == "__main__":
    main()
