# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A fake AnsibleModule and a fake engine, to run a module's main() and manager without Ansible or Docker.

run_module(module, params) builds the module's argument spec through its own main(), fills the
defaults, runs its manager through module_support.run_manager, and returns the result of
exit_json, or raises Failed with the arguments of fail_json.
"""

from __future__ import annotations

import calendar
import copy
import signal
import time

from ansible_collections.airgap.docker.plugins.module_utils import module_support

FILE_COMMON_ARGS = ("mode", "owner", "group", "seuser", "serole", "selevel", "setype", "attributes", "unsafe_writes")


class Exited(Exception):
    def __init__(self, result):
        super().__init__(result)
        self.result = result


class Failed(Exception):
    def __init__(self, result):
        super().__init__(result.get("msg"))
        self.result = result


class FakeModule:
    """What the managers use of AnsibleModule: params, check and diff mode, warn, exit and fail."""

    def __init__(self, argument_spec, params, check_mode=False, diff=False):
        self.params = {name: copy.deepcopy(option.get("default")) for name, option in argument_spec.items()}
        self.params.update(params)
        self.check_mode = check_mode
        self._diff = diff
        self.warnings = []

    def exit_json(self, **result):
        raise Exited(result)

    def fail_json(self, **result):
        raise Failed(result)

    def warn(self, msg):
        self.warnings.append(msg)

    def load_file_common_arguments(self, params, path=None):
        return {"path": path}

    def set_fs_attributes_if_different(self, file_args, changed, *args, **kwargs):
        return changed


def run_module(monkeypatch, module, params, check_mode=False, diff=False, engine=None, connect=None):
    """The result of module.main() with params; Failed when it fails. engine replaces the Docker engine;
    connect, when given, replaces module_support.engine_client (called with the params to connect)."""
    built = []

    def build_module(argument_spec, engine=True, add_file_common_args=False, **_kwargs):
        spec = dict(module_support.ENGINE_ARGUMENT_SPEC) if engine else {}
        spec.update(argument_spec)
        if add_file_common_args:
            spec.update({name: {} for name in FILE_COMMON_ARGS})
        built.append(FakeModule(spec, params, check_mode, diff))
        return built[-1]

    monkeypatch.setattr(module, "build_module", build_module)
    connect = connect or (lambda _params: engine)
    monkeypatch.setattr(module_support, "engine_client", connect)
    if hasattr(module, "engine_client"):
        monkeypatch.setattr(module, "engine_client", connect)
    handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGHUP)}
    try:
        module.main()
    except Exited as exc:
        exc.result["warnings"] = built[-1].warnings
        return exc.result
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
    raise AssertionError("main() neither exited nor failed")


class FakeEngine:
    """The EngineClient methods the managers call, over a table of images and containers.

    Whatever would change the engine (load, tag, export, save) is recorded or refused: a test
    that expects nothing to change leaves `calls` without them.
    """

    host = "unix:///fake/docker.sock"
    podman = False

    def __init__(self, images=None, containers=None):
        self.images = {}  # ref -> inspect
        self.listing = []
        self.containers = dict(containers or {})
        self.calls = []
        for info, refs in images or []:
            self.add_image(info, *refs)

    def add_image(self, info, *refs):
        for ref in (info["Id"],) + tuple(refs) + tuple(info.get("RepoTags") or []):
            self.images[ref] = info
        created = info.get("Created") or ""
        unix = calendar.timegm(time.strptime(created[:19], "%Y-%m-%dT%H:%M:%S")) if created else 0
        self.listing.append({"Id": info["Id"], "Created": unix})

    def version(self):
        return {"Os": "linux", "Arch": "amd64", "ApiVersion": "1.47", "Version": "27.0.0"}

    def facts(self):
        return {"version": "27.0.0", "api_version": "1.47", "storage": "classic", "storage_driver": "overlay2", "os": "linux",
                "arch": "amd64"}

    def check_platform_support(self, platform):
        self.calls.append(("check_platform_support", platform))

    def inspect_image(self, ref, platform=None):
        info = self.images.get(ref)
        return copy.deepcopy(info) if info is not None else None

    def list_images(self, intermediate=False):
        return copy.deepcopy(self.listing)

    def inspect_container(self, ref, size=False):
        info = self.containers.get(ref)
        return copy.deepcopy(info) if info is not None else None

    def tag(self, image_id, reference):
        self.calls.append(("tag", image_id, reference))

    def load(self, *args, **kwargs):
        raise AssertionError("the engine was asked to load an archive")

    def save_stream(self, *args, **kwargs):
        raise AssertionError("the engine was asked to save images")

    def export_stream(self, *args, **kwargs):
        raise AssertionError("the engine was asked to export a container")
