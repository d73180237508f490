# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The migrate role's decisions as filters; the decisions themselves live in module_utils.migrate_plan.

Each filter checks the shape of what the role hands it, so that a misuse fails with one sentence
instead of a Python traceback.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from ansible.errors import AnsibleFilterError

from ansible_collections.airgap.docker.plugins.module_utils import migrate_plan
from ansible_collections.airgap.docker.plugins.module_utils.errors import AirgapError


def _require(condition, name, expected):
    if not condition:
        raise AnsibleFilterError("%s expects %s." % (name, expected))


def _is_list_of(value, kind):
    return isinstance(value, list) and all(isinstance(v, kind) for v in value)


def _registered(value, name):
    """A registered result (with `results` when looped), or nothing when the step did not run."""
    if value is None or value == "":
        return {}
    _require(isinstance(value, Mapping), name, "a registered task result")
    return value


def migrate_archives(images, containers, compression="zstd"):
    _require(_is_list_of(images, str), "migrate_archives", "migrate_images, a list of image names")
    _require(_is_list_of(containers, Mapping) and all("name" in c and "image" in c for c in containers),
             "migrate_archives", "migrate_containers, a list of dictionaries with name and image")
    _require(compression in migrate_plan.SUFFIXES, "migrate_archives",
             "a compression of %s" % ", ".join(sorted(migrate_plan.SUFFIXES)))
    return migrate_plan.archives_to_make(images, containers, compression)


def migrate_problems(settings, mode):
    _require(mode in migrate_plan.MODES, "migrate_problems", "a mode of %s" % ", ".join(migrate_plan.MODES))
    _require(isinstance(settings, Mapping), "migrate_problems", "a dictionary of the play's settings")
    missing = {"images", "containers", "compression", "source", "source_known", "bundle_dir", "play_hosts"} - set(settings)
    _require(not missing, "migrate_problems", "the settings %s as well" % ", ".join(sorted(missing)))
    return migrate_plan.settings_problems(mode, settings)


def migrate_source(source_vars, mode, own, source=""):
    """The source's settings (engine, staging_dir), its engine's module options and a relay's default bundle dir."""
    _require(isinstance(source_vars, Mapping), "migrate_source", "the source's host variables (hostvars[migrate_source])")
    _require(isinstance(own, Mapping), "migrate_source", "this host's settings as its second argument")
    settings = migrate_plan.source_settings(mode, own, source_vars)
    cache_home = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return {"settings": settings, "staging_dir": settings["staging_dir"], "engine": _engine_options(settings),
            "relay_bundle_dir": migrate_plan.relay_bundle_dir(cache_home, source, source_vars, settings["docker_host"])}


def _engine_options(settings):
    try:
        return migrate_plan.engine_options(settings)
    except AirgapError as exc:
        raise AnsibleFilterError(str(exc)) from None


def migrate_engine(settings):
    _require(isinstance(settings, Mapping) and "docker_host" in settings, "migrate_engine",
             "a dictionary of engine settings with docker_host")
    return _engine_options(settings)


def migrate_outcome(mode, saved=None, exported=None, cut=None):
    return migrate_plan.source_outcome(mode, _registered(saved, "migrate_outcome"), _registered(exported, "migrate_outcome"),
                                       _registered(cut, "migrate_outcome"))


def migrate_cuts(plans):
    _require(_is_list_of(plans, Mapping), "migrate_cuts", "the delivery plans of the batch's hosts")
    return migrate_plan.cuts_to_make(plans)


def migrate_host_files(plan, manifest_archives, fallback=()):
    _require(isinstance(plan, Mapping), "migrate_host_files", "a host's delivery plan")
    _require(_is_list_of(manifest_archives, Mapping), "migrate_host_files", "the manifest's archives as its argument")
    _require(_is_list_of(list(fallback or []), str), "migrate_host_files", "the fallback's archive paths")
    return migrate_plan.host_files(plan, manifest_archives, fallback)


def migrate_refusal(refused, host, bundle_state, delta=True):
    _require(_is_list_of(refused, Mapping), "migrate_refusal", "the refused archives of a delivery plan")
    _require(isinstance(bundle_state, Mapping), "migrate_refusal", "the bundle's state (airgap.docker.bundle's result)")
    return migrate_plan.refusal(host, refused, bundle_state, bool(delta))


def migrate_report(facts):
    _require(isinstance(facts, Mapping) and facts.get("mode") in migrate_plan.MODES, "migrate_report",
             "a dictionary of what the run did, with its mode")
    return migrate_plan.pack_report(facts) if facts["mode"] == "pack" else migrate_plan.host_report(facts)


def migrate_summary(hostvars, hosts_all, batch, alive):
    _require(isinstance(hostvars, Mapping), "migrate_summary", "hostvars")
    reports = {host: hostvars[host].get("migrate_report") for host in hosts_all if host in hostvars}
    return migrate_plan.summary(reports, hosts_all, batch, alive)


class FilterModule:
    def filters(self):
        filters = (migrate_archives, migrate_problems, migrate_source, migrate_engine, migrate_outcome, migrate_cuts,
                   migrate_host_files, migrate_refusal, migrate_report, migrate_summary)
        return {f.__name__: f for f in filters}
