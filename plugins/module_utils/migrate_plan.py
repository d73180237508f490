# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The migrate role's decisions, as pure functions of what its steps registered.

The role's YAML sequences steps; everything it decides is here: which archives to make and what
they are called, how the source's engine is reached, what the manifest lists, which files a host
is sent and loaded from, and what the report says. delivery_plan.py decides, per host, between a
full and a thin archive. The filters in plugins/filter/migrate.py hand these to the role.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any, Iterable, Mapping

from ansible_collections.airgap.docker.plugins.module_utils import archive_parts, fanout_plan
from ansible_collections.airgap.docker.plugins.module_utils.constants import DEFAULT_HOST, KIND_CONTAINER, KIND_IMAGES
from ansible_collections.airgap.docker.plugins.module_utils.errors import InvalidInput

MODES = ("relay", "pack", "unpack")
SUFFIXES = {"zstd": ".tar.zst", "gzip": ".tar.gz", "none": ".tar"}

# The engine connection a host gets when its inventory sets none: defaults/main.yml's values, which
# a unit test keeps equal. They apply to the source of a relay, whose settings come from its own
# host variables and never from the host the play runs for.
ENGINE_DEFAULTS = {"docker_host": DEFAULT_HOST, "tls": False, "validate_certs": False, "ca_path": "",
                   "client_cert": "", "client_key": "", "api_version": "auto", "timeout": 0}
STAGING_DEFAULT = "/var/tmp/airgap.docker"
_OPTIONAL_PATHS = ("ca_path", "client_cert", "client_key")


def file_name(name: str) -> str:
    """A name as the role stores it: anything but letters, digits, `.`, `_` and `-` becomes `_`."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)


def archives_to_make(images: Iterable[str], containers: Iterable[Mapping[str, Any]], compression: str) -> dict:
    """One archive per requested image and per container, named after what it holds, so that a
    change to one image re-saves and re-sends that archive only."""
    suffix = SUFFIXES[compression]
    image_archives = [{"request": request.strip(), "path": "images/%s%s" % (file_name(request.strip()), suffix)}
                      for request in images]
    # pause is handed on as given: the module reads it the way Ansible reads booleans ("no" is false).
    container_archives = [{"name": c["name"], "image": c["image"], "pause": c.get("pause", False),
                           "path": "containers/%s%s" % (file_name(c["name"]), suffix)} for c in containers]
    return {"images": image_archives, "containers": container_archives,
            "paths": [a["path"] for a in image_archives + container_archives]}


def settings_problems(mode: str, settings: Mapping[str, Any]) -> list[str]:
    """What is wrong with a play's settings, one sentence each; empty when nothing is.

    settings: images, containers, compression, source, source_known (whether the inventory has it),
    bundle_dir, play_hosts and checks (each host's verification settings, compared in an unpack).
    """
    problems = []
    moving = mode != "unpack"
    if moving and not (settings["images"] or settings["containers"]):
        problems.append("Nothing to move; set migrate_images and/or migrate_containers.")
    if mode == "relay" and not settings["source_known"]:
        problems.append("migrate_source is %s, which is not a host of the inventory." % json.dumps(settings["source"]))
    if mode == "pack" and len(settings["play_hosts"]) != 1:
        problems.append("The pack entry point runs in a play on the one source host; this play has %d hosts (%s)."
                        % (len(settings["play_hosts"]), ", ".join(settings["play_hosts"])))
    if moving and not problems:
        paths = archives_to_make(settings["images"], settings["containers"], settings["compression"])["paths"]
        if len(set(paths)) != len(paths):
            problems.append("Two images or containers would be stored under the same file name (%s); name each image"
                            " and container once." % ", ".join(sorted(paths)))
    if mode == "pack" and settings.get("split_size"):
        try:
            archive_parts.parse_size(settings["split_size"])
        except InvalidInput as exc:
            problems.append("migrate_split_size: %s" % exc.msg)
    if mode in ("pack", "unpack") and not settings["bundle_dir"]:
        problems.append("The %s entry point needs migrate_bundle_dir, the bundle directory on the controller." % mode)
    if mode == "unpack" and len({json.dumps(c, sort_keys=True) for c in settings.get("checks") or []}) > 1:
        problems.append("migrate_allowed_signers and migrate_verify must be the same for every host of the play (the"
                        " bundle is checked once for all of them); set them for the play or in group_vars/all.")
    return problems


def source_settings(mode: str, own: Mapping[str, Any], source_vars: Mapping[str, Any]) -> dict:
    """How the source's engine is reached and where it stages archives.

    In a pack the source is the play's host and `own` (this host's settings) applies. In a relay
    the source's own host variables say it; what they do not set takes the role's default.
    """
    if mode == "pack":
        return dict(own)
    settings = {key: source_vars.get("migrate_" + key, default) for key, default in ENGINE_DEFAULTS.items()}
    settings["staging_dir"] = source_vars.get("migrate_staging_dir", STAGING_DEFAULT)
    return settings


def engine_options(settings: Mapping[str, Any]) -> dict:
    """The airgap.docker.docker group's options for module_defaults: unset paths and timeout left out."""
    options = {key: settings.get(key, default) for key, default in ENGINE_DEFAULTS.items()}
    for key in _OPTIONAL_PATHS:
        if not options[key]:
            del options[key]
    timeout = _seconds(options.pop("timeout"))
    if timeout:
        options["timeout"] = timeout
    return options


def _seconds(value: Any) -> int:
    """A timeout as the role's variables give it (an int or a string of one); 0 or empty is none."""
    text = str(value if value is not None else "").strip()
    if isinstance(value, bool) or not re.fullmatch(r"\d*", text):
        raise InvalidInput("migrate_timeout must be a whole number of seconds (0 for none), not %s." % json.dumps(str(value)))
    return int(text or 0)


def relay_bundle_dir(cache_home: str, source: str, source_vars: Mapping[str, Any], docker_host: str) -> str:
    """A relay's default controller directory: one per source, named after its inventory name (for
    people) and a hash of that name with its address, port and engine, so that two inventories
    whose sources share a name never share (and clean up) each other's archives."""
    key = json.dumps([source, source_vars.get("ansible_host", source), str(source_vars.get("ansible_port", "")), docker_host])
    return "%s/airgap.docker/relay/%s-%s" % (cache_home, file_name(source), hashlib.sha256(key.encode()).hexdigest()[:16])


def _results(registered: Mapping[str, Any] | None) -> list:
    return list((registered or {}).get("results") or [])


def source_outcome(mode: str, saved: Mapping | None, exported: Mapping | None, cut: Mapping | None = None) -> dict:
    """What the source's saves, snapshots and cuts (their registered results) amount to.

    - described: the archives written with their sidecars; cuts: the thin archives, each standing
      for a full one (delta_of);
    - archives: what the manifest lists. A relay keeps every full archive (the fallback for any
      host) beside the thin ones; a pack against a baseline carries the thin archive instead;
    - pending: in check mode, archives that would be (re)written and have no sidecar yet, with
      pending_records, their images as the save reported them (or by request), for the probe;
    - pack_entries: what a pack copies to the controller.
    """
    described, pending_records = [], []
    for result in _results(saved):
        item = result.get("item") or {}
        if result.get("sidecar") is not None:
            described.append({"path": item["path"], "sidecar": result["sidecar"], "image": None})
            continue
        if not item:
            continue
        for image in result.get("images") or [{"tags": [item["request"]]}]:
            pending_records.append({"tags": image.get("tags"), "fingerprint": image.get("fingerprint"),
                                    "diff_ids": image.get("diff_ids") or [], "archive": item["path"]})
    for result in _results(exported):
        item = result.get("item") or {}
        if result.get("sidecar") is not None:
            described.append({"path": item["path"], "sidecar": result["sidecar"], "image": item.get("image")})
        elif item:
            pending_records.append({"tags": [item["image"]], "archive": item["path"]})
    cuts, cut_pending = [], []
    for result in _results(cut):
        item = result.get("item") or {}
        if result.get("sidecar") is not None:
            cuts.append({"path": item["file"], "sidecar": result["sidecar"], "delta_of": item["logical"]})
        elif item:
            cut_pending.append(item["file"])
    replaced = {c["delta_of"] for c in cuts} if mode == "pack" else set()
    archives = [a for a in described if a["path"] not in replaced] + cuts
    pending = sorted({r["archive"] for r in pending_records}) + cut_pending
    return {"described": described, "cuts": cuts, "archives": archives, "pending": pending,
            "pending_records": pending_records,
            "pack_entries": [{"path": a["path"], "sha256": a["sidecar"]["archive"]["sha256"],
                              "size": a["sidecar"]["archive"]["size"]} for a in archives]}


def cuts_to_make(plans: Iterable[Mapping[str, Any]]) -> list:
    """The thin archives the hosts of a batch asked for (delivery_plan with build), each once."""
    cuts, seen = [], set()
    for plan in plans:
        for delivery in plan.get("deliveries") or []:
            if delivery.get("build") and delivery["file"] not in seen:
                seen.add(delivery["file"])
                cuts.append(delivery)
    return cuts


def host_files(plan: Mapping[str, Any], manifest_archives: Iterable[Mapping[str, Any]], fallback: Iterable[str] = ()) -> dict:
    """The bundle entries behind the files a host is sent, by how each is loaded.

    images: every image archive (full and thin: what is removed afterwards), of which full and
    thin (a failed thin load falls back to the full archive); containers: container snapshots;
    fallback: the full archives replacing thin ones that did not load (`fallback`, their paths).
    """
    manifest_archives = list(manifest_archives)
    wanted = {d["file"] for d in plan.get("deliveries") or []}
    entries = [a for a in manifest_archives if a["path"] in wanted]
    fallback = set(fallback or ())
    images = [a for a in entries if a.get("kind") == KIND_IMAGES]
    return {"images": images,
            "full": [a for a in images if "delta_of" not in a],
            "thin": [a for a in images if "delta_of" in a],
            "containers": [a for a in entries if a.get("kind") == KIND_CONTAINER],
            "fallback": [a for a in manifest_archives if a["path"] in fallback]}


def refusal(host: str, refused: list, bundle_state: Mapping[str, Any], delta: bool) -> str:
    """Why a host cannot be given what it lacks: the bundle carries only thin archives of it, whose
    left-out layers the host lacks (or delta is off)."""
    baseline = ((bundle_state.get("manifest") or {}).get("source") or {}).get("baseline") or []
    if delta:
        why = "and this host lacks the layers they leave out (it holds %s of the %s bottom layers)" % (
            ", ".join(str(r["holds"]) for r in refused), ", ".join(str(r["needs"]) for r in refused))
    else:
        why = "and migrate_delta is false"
    return ("%s cannot be given %s: the bundle carries only thin archives of %s, packed against the baseline %s, %s."
            " Nothing was copied to this host. Bring it a bundle packed without migrate_baseline, or with a baseline"
            " it holds." % (host, ", ".join(t for r in refused for t in r.get("tags") or []),
                            "them" if len(refused) > 1 else "it", ", ".join(baseline) or "this host lacks", why))


def _bytes(results: Iterable[Mapping[str, Any]]) -> int:
    return sum(r["bytes"] for r in results if isinstance(r.get("bytes"), int) and not isinstance(r.get("bytes"), bool))


def host_report(facts: Mapping[str, Any]) -> dict:
    """What a relay or an unpack did for one host (its migrate_report).

    facts: mode, check_mode, plan, wanted (image_info's records), manifest_archives, pushed and
    fallback_pushed (registered copies), fallback, signer.
    """
    plan = facts["plan"]
    deliveries = plan.get("deliveries") or []
    files = sorted({d["file"] for d in deliveries})
    by_path = {a["path"]: a for a in facts["manifest_archives"]}
    logical = sorted({d["logical"] for d in deliveries})
    fulls = [by_path[p] for p in logical if p in by_path]
    sources = _sources(facts.get("fanout") or {}, _results(facts.get("pushed")), by_path)
    from_peers = sum(r["bytes"] for r in sources if r["source"] != fanout_plan.CONTROLLER)
    # Seeds sent in the rounds; what the controller sent after them is among `pushed`.
    seeded = sum(r["bytes"] for r in sources if r["source"] == fanout_plan.CONTROLLER and r["round"] is not None)
    return {
        "mode": facts["mode"], "check_mode": bool(facts["check_mode"]), "archives": files,
        "images": sorted({t for r in facts["wanted"] if r.get("state") != "present" for t in r.get("tags") or []}),
        # From the controller (copies, fan-out seeds, fallback), and from other hosts of the batch.
        "bytes_sent": seeded + _bytes(_results(facts.get("pushed")) + _results(facts.get("fallback_pushed"))),
        "bytes_from_peers": from_peers,
        "sources": sources,
        # Archive bytes delivered (thin or full), and what the full archives of the same images
        # weigh: none when the bundle does not hold them all (a bundle packed against a baseline).
        "bytes_total": sum(by_path[f]["size"] for f in files if f in by_path),
        "bytes_full": sum(a["size"] for a in fulls) if len(fulls) == len(logical) else None,
        "thin": [d["file"] for d in deliveries if d.get("omitted")],
        "fallback": list(facts.get("fallback") or []),
        "signer": facts.get("signer"),
    }


def _sources(fanout: Mapping[str, Any], pushed: list, by_path: Mapping[str, Any]) -> list:
    """Where each archive came from in a fan-out (empty without one). Check mode's records are the
    planned ones, which carry no bytes: the manifest's sizes stand for them."""
    if not fanout.get("needs"):
        return []
    sizes = {path: entry["size"] for path, entry in by_path.items()}
    replaced = {r["item"]: int(r.get("bytes") or 0) for r in pushed
                if isinstance(r.get("item"), str) and not r.get("failed") and not r.get("skipped")}
    return fanout_plan.sources_report(fanout, replaced, sizes)


def pack_report(facts: Mapping[str, Any]) -> dict:
    """What a pack wrote (its migrate_report). facts: check_mode, bundle, manifest_archives, fetched,
    signed, baseline."""
    archives = facts["manifest_archives"]
    return {"mode": "pack", "check_mode": bool(facts["check_mode"]), "bundle": facts["bundle"],
            "archives": [a["path"] for a in archives], "bytes_fetched": _bytes(_results(facts.get("fetched"))),
            "bytes_total": sum(a["size"] for a in archives), "signed": bool(facts["signed"]),
            "baseline": list(facts.get("baseline") or []), "thin": [a["path"] for a in archives if "delta_of" in a]}


def summary_line(host: str, report: Mapping[str, Any] | None) -> str:
    """One host's line of the play's summary."""
    if not report:
        return "%s: FAILED or unreachable, see above" % host
    if report["mode"] == "pack":
        line = "%s: packed %d archive(s) into %s, %d of %d bytes copied this run" % (
            host, len(report["archives"]), report["bundle"], report["bytes_fetched"], report["bytes_total"])
        line += ", signed" if report["signed"] else ""
        if report["thin"]:
            line += ", %d thin against the baseline %s" % (len(report["thin"]), ", ".join(report["baseline"]))
        return line
    if not report["archives"]:
        return "%s: up to date, nothing sent" % host
    line = "%s: %s%s" % (host, "would receive " if report["check_mode"] else "received ", ", ".join(report["images"]))
    received = report["bytes_sent"] + (report.get("bytes_from_peers") or 0)
    if received:
        detail = "%d bytes" % received
        if report["thin"] and report["bytes_full"]:
            detail += "; archives %d instead of %d in full" % (report["bytes_total"], report["bytes_full"])
        line += " (%s)" % detail
    if report["thin"]:
        line += ", %d thin" % len(report["thin"])
    if report["fallback"]:
        line += ", fell back to the full archive for " + ", ".join(report["fallback"])
    for record in report.get("sources") or []:
        line += "; %s from %s" % (record["path"], record["source"])
        if record["round"] is not None:
            line += " (round %d)" % record["round"]
        if record["replacing"]:
            line += " replacing %s" % ", ".join(record["replacing"])
    return line


def _egress_line(reports: list) -> list:
    """The controller's total egress and what the hosts passed on, when the batch fanned out."""
    sources = [s for r in reports if r for s in r.get("sources") or []]
    if not sources:
        return []
    controller = sum(r["bytes_sent"] for r in reports if r and r.get("mode") != "pack")
    peers = sum(r.get("bytes_from_peers") or 0 for r in reports if r)
    rounds = max([s["round"] for s in sources if s["round"] is not None] or [-1]) + 1
    verb = "would send" if any(r and r["check_mode"] for r in reports) else "sent"
    return ["controller %s %d bytes; hosts passed on %d bytes in %d round(s)" % (verb, controller, peers, rounds)]


def summary(reports: Mapping[str, Any], hosts_all: Iterable[str], batch: Iterable[str], alive: Iterable[str]) -> list:
    """The play's summary: a line per host of this batch and per host that failed or is unreachable.

    reports: each host's migrate_report (missing or empty when it did not get that far).
    """
    batch, alive = set(batch), set(alive)
    lines = [summary_line(host, reports.get(host) if host in alive else None)
             for host in hosts_all if host in batch or host not in alive]
    return lines + _egress_line([reports.get(host) for host in hosts_all if host in batch and host in alive])
