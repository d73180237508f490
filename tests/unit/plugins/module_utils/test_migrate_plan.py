"""The migrate role's decisions (module_utils/migrate_plan.py), without Ansible."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ansible_collections.airgap.docker.plugins.module_utils import migrate_plan
from ansible_collections.airgap.docker.plugins.module_utils.errors import InvalidInput

ROLE = Path(__file__).resolve().parents[4] / "roles/migrate"


def settings(**overrides):
    base = {"images": ["app:1"], "containers": [], "compression": "zstd", "source": "src", "source_known": True,
            "bundle_dir": "", "play_hosts": ["a", "b"], "checks": [{"verify": True, "allowed_signers": ""}] * 2}
    base.update(overrides)
    return base


def test_engine_defaults_are_the_role_defaults():
    defaults = yaml.safe_load((ROLE / "defaults/main.yml").read_text())
    assert {k: defaults["migrate_" + k] for k in migrate_plan.ENGINE_DEFAULTS} == migrate_plan.ENGINE_DEFAULTS
    assert defaults["migrate_staging_dir"] == migrate_plan.STAGING_DEFAULT


def test_archives_are_named_after_what_they_hold():
    made = migrate_plan.archives_to_make([" reg.example:5000/app:1 "], [{"name": "web/1", "image": "snap:1"}], "gzip")
    assert made["images"] == [{"request": "reg.example:5000/app:1", "path": "images/reg.example_5000_app_1.tar.gz"}]
    assert made["containers"] == [{"name": "web/1", "image": "snap:1", "pause": False, "path": "containers/web_1.tar.gz"}]
    assert made["paths"] == ["images/reg.example_5000_app_1.tar.gz", "containers/web_1.tar.gz"]


@pytest.mark.parametrize("mode, overrides, expected", [
    ("relay", {}, []),
    ("relay", {"images": [], "containers": []}, ["Nothing to move; set migrate_images and/or migrate_containers."]),
    ("relay", {"source": "nowhere", "source_known": False}, ['migrate_source is "nowhere", which is not a host of the inventory.']),
    ("pack", {"bundle_dir": "/b"}, ["The pack entry point runs in a play on the one source host; this play has 2 hosts (a, b)."]),
    ("pack", {"play_hosts": ["a"]}, ["The pack entry point needs migrate_bundle_dir, the bundle directory on the controller."]),
    ("relay", {"images": ["app:1", "app/1"]}, ["Two images or containers would be stored under the same file name"
                                               " (images/app_1.tar.zst, images/app_1.tar.zst); name each image and container once."]),
    ("unpack", {"images": [], "bundle_dir": "/b"}, []),
    ("pack", {"play_hosts": ["a"], "bundle_dir": "/b", "split_size": "4095M"}, []),
    ("pack", {"play_hosts": ["a"], "bundle_dir": "/b", "split_size": "4 gigs"},
     ["migrate_split_size: '4 gigs' is not a size: give bytes, or a number with K, M, G or T (powers of 1024), for example 4095M."]),
])
def test_settings_problems(mode, overrides, expected):
    assert migrate_plan.settings_problems(mode, settings(**overrides)) == expected


def test_unpack_hosts_must_verify_alike():
    checks = [{"verify": True, "allowed_signers": ""}, {"verify": False, "allowed_signers": ""}]
    problems = migrate_plan.settings_problems("unpack", settings(bundle_dir="/b", checks=checks))
    assert len(problems) == 1 and problems[0].startswith("migrate_allowed_signers and migrate_verify must be the same")


def test_relay_source_settings_come_from_its_own_variables_or_the_defaults():
    own = dict(migrate_plan.ENGINE_DEFAULTS, docker_host="tcp://own:2375", ca_path="/own/ca.pem", staging_dir="/own")
    got = migrate_plan.source_settings("relay", own, {"migrate_docker_host": "tcp://src:2376", "migrate_tls": True})
    assert got["docker_host"] == "tcp://src:2376" and got["tls"] is True
    assert got["ca_path"] == "" and got["staging_dir"] == migrate_plan.STAGING_DEFAULT
    assert migrate_plan.source_settings("pack", own, {"migrate_docker_host": "tcp://src:2376"}) == own


def test_engine_options_leave_out_what_is_not_set():
    options = migrate_plan.engine_options(dict(migrate_plan.ENGINE_DEFAULTS, client_cert="/c.pem", timeout="0"))
    assert options == {"docker_host": "unix:///var/run/docker.sock", "tls": False, "validate_certs": False,
                       "client_cert": "/c.pem", "api_version": "auto"}
    assert migrate_plan.engine_options(dict(migrate_plan.ENGINE_DEFAULTS, timeout=30))["timeout"] == 30


@pytest.mark.parametrize("given, expected", [(0, None), ("", None), ("0", None), ("30", 30), (45, 45), (None, None)])
def test_engine_options_timeout_is_a_whole_number(given, expected):
    assert migrate_plan.engine_options(dict(migrate_plan.ENGINE_DEFAULTS, timeout=given)).get("timeout") == expected


@pytest.mark.parametrize("given", ["1.5", "abc", True, -3])
def test_engine_options_refuse_a_timeout_that_is_no_whole_number(given):
    with pytest.raises(InvalidInput) as failure:
        migrate_plan.engine_options(dict(migrate_plan.ENGINE_DEFAULTS, timeout=given))
    assert failure.value.msg.startswith("migrate_timeout must be a whole number of seconds (0 for none), not ")


def test_container_pause_is_handed_on_as_given():
    """The module reads it as Ansible reads booleans, so "no" stays "no" (bool("no") would be True)."""
    made = migrate_plan.archives_to_make([], [{"name": "db", "image": "db:1", "pause": "no"}, {"name": "web", "image": "w:1"}], "none")
    assert [c["pause"] for c in made["containers"]] == ["no", False]


def test_relay_bundle_dir_differs_per_source_address():
    one = migrate_plan.relay_bundle_dir("/home/u/.cache", "build 1", {"ansible_host": "10.0.0.1"}, "unix:///d.sock")
    two = migrate_plan.relay_bundle_dir("/home/u/.cache", "build 1", {"ansible_host": "10.0.0.2"}, "unix:///d.sock")
    assert one.startswith("/home/u/.cache/airgap.docker/relay/build_1-") and len(one.rsplit("-", 1)[1]) == 16
    assert one != two


def sidecar(sha, size):
    return {"archive": {"sha256": sha, "size": size}}


SAVED = {"results": [
    {"item": {"request": "app:1", "path": "images/app_1.tar.zst"}, "sidecar": sidecar("a" * 64, 10)},
    {"item": {"request": "app:2", "path": "images/app_2.tar.zst"},
     "images": [{"tags": ["app:2"], "fingerprint": "f2", "diff_ids": ["sha256:l1"]}]},
]}
EXPORTED = {"results": [
    {"item": {"name": "web", "image": "web-snap:1", "path": "containers/web.tar.zst"}, "sidecar": sidecar("b" * 64, 20)},
    {"item": {"name": "db", "image": "db-snap:1", "path": "containers/db.tar.zst"}},
]}
CUT = {"results": [
    {"item": {"file": "images/app_1+delta1.tar.zst", "logical": "images/app_1.tar.zst"}, "sidecar": sidecar("c" * 64, 3)},
    {"item": {"file": "images/app_2+delta1.tar.zst", "logical": "images/app_2.tar.zst"}},
]}


def test_outcome_relay_keeps_full_archives_beside_thin_ones():
    outcome = migrate_plan.source_outcome("relay", SAVED, EXPORTED, CUT)
    assert [a["path"] for a in outcome["described"]] == ["images/app_1.tar.zst", "containers/web.tar.zst"]
    assert [a["path"] for a in outcome["archives"]] == [
        "images/app_1.tar.zst", "containers/web.tar.zst", "images/app_1+delta1.tar.zst"]
    assert outcome["pending"] == ["containers/db.tar.zst", "images/app_2.tar.zst", "images/app_2+delta1.tar.zst"]
    assert outcome["pending_records"] == [
        {"tags": ["app:2"], "fingerprint": "f2", "diff_ids": ["sha256:l1"], "archive": "images/app_2.tar.zst"},
        {"tags": ["db-snap:1"], "archive": "containers/db.tar.zst"}]


def test_outcome_pack_replaces_full_archives_by_their_cut():
    outcome = migrate_plan.source_outcome("pack", SAVED, EXPORTED, CUT)
    assert [a["path"] for a in outcome["archives"]] == ["containers/web.tar.zst", "images/app_1+delta1.tar.zst"]
    assert outcome["pack_entries"] == [{"path": "containers/web.tar.zst", "sha256": "b" * 64, "size": 20},
                                       {"path": "images/app_1+delta1.tar.zst", "sha256": "c" * 64, "size": 3}]


def test_outcome_of_steps_that_did_not_run_is_empty():
    skipped = {"skipped": True, "results": [{"skipped": True, "item": {"request": "x", "path": "images/x.tar"}}]}
    outcome = migrate_plan.source_outcome("relay", None, {}, None)
    assert outcome["archives"] == [] and outcome["pending"] == []
    # A loop item skipped in check mode (its staging directory was new) counts as pending by request.
    assert migrate_plan.source_outcome("relay", skipped, None)["pending_records"] == [
        {"tags": ["x"], "fingerprint": None, "diff_ids": [], "archive": "images/x.tar"}]


def test_cuts_are_asked_once_per_file():
    plans = [{"deliveries": [{"file": "a+delta1", "build": True}, {"file": "b", "build": False}]},
             {"deliveries": [{"file": "a+delta1", "build": True}]}, {"deliveries": []}]
    assert migrate_plan.cuts_to_make(plans) == [{"file": "a+delta1", "build": True}]


MANIFEST = [
    {"path": "images/app_1.tar.zst", "kind": "images", "size": 100},
    {"path": "images/app_1+delta2.tar.zst", "kind": "images", "size": 7, "delta_of": "images/app_1.tar.zst"},
    {"path": "images/app_2.tar.zst", "kind": "images", "size": 50},
    {"path": "containers/web.tar.zst", "kind": "container", "size": 30},
]


def test_host_files_by_how_they_load():
    plan = {"deliveries": [{"logical": "images/app_1.tar.zst", "file": "images/app_1+delta2.tar.zst", "omitted": 2},
                           {"logical": "images/app_2.tar.zst", "file": "images/app_2.tar.zst", "omitted": 0},
                           {"logical": "containers/web.tar.zst", "file": "containers/web.tar.zst", "omitted": 0}]}
    files = migrate_plan.host_files(plan, MANIFEST, ["images/app_1.tar.zst"])
    assert [a["path"] for a in files["full"]] == ["images/app_2.tar.zst"]
    assert [a["path"] for a in files["thin"]] == ["images/app_1+delta2.tar.zst"]
    assert [a["path"] for a in files["containers"]] == ["containers/web.tar.zst"]
    assert [a["path"] for a in files["images"]] == ["images/app_1+delta2.tar.zst", "images/app_2.tar.zst"]
    assert [a["path"] for a in files["fallback"]] == ["images/app_1.tar.zst"]


def test_refusal_names_host_images_baseline_and_layers():
    refused = [{"tags": ["app:2"], "holds": 1, "needs": 3}]
    state = {"manifest": {"source": {"baseline": ["base:1"]}}}
    assert migrate_plan.refusal("web1", refused, state, True) == (
        "web1 cannot be given app:2: the bundle carries only thin archives of it, packed against the baseline base:1,"
        " and this host lacks the layers they leave out (it holds 1 of the 3 bottom layers). Nothing was copied to"
        " this host. Bring it a bundle packed without migrate_baseline, or with a baseline it holds.")
    assert "this host lacks, and migrate_delta is false." in migrate_plan.refusal("w", refused * 2, {}, False)


def test_host_report_counts_bytes_and_thin_files():
    plan = {"deliveries": [{"logical": "images/app_1.tar.zst", "file": "images/app_1+delta2.tar.zst", "omitted": 2}]}
    report = migrate_plan.host_report({
        "mode": "relay", "check_mode": False, "plan": plan, "manifest_archives": MANIFEST, "fallback": [],
        "wanted": [{"tags": ["app:1"], "state": "absent"}, {"tags": ["app:0"], "state": "present"}],
        "pushed": {"results": [{"bytes": 7}, {"bytes": True}, {"skipped": True}]}, "fallback_pushed": None})
    assert report == {"mode": "relay", "check_mode": False, "archives": ["images/app_1+delta2.tar.zst"], "images": ["app:1"],
                      "bytes_sent": 7, "bytes_total": 7, "bytes_full": 100, "thin": ["images/app_1+delta2.tar.zst"],
                      "fallback": [], "signer": None, "bytes_from_peers": 0, "sources": []}
    line = migrate_plan.summary_line("web1", report)
    assert line == "web1: received app:1 (7 bytes; archives 7 instead of 100 in full), 1 thin"


def test_host_report_without_the_full_archive_has_no_full_size():
    plan = {"deliveries": [{"logical": "images/gone.tar.zst", "file": "images/app_1+delta2.tar.zst", "omitted": 2}]}
    report = migrate_plan.host_report({"mode": "unpack", "check_mode": True, "plan": plan, "manifest_archives": MANIFEST,
                                       "wanted": []})
    assert report["bytes_full"] is None
    assert migrate_plan.summary_line("w", report) == "w: would receive , 1 thin"


def test_pack_report_and_its_line():
    report = migrate_plan.pack_report({"check_mode": False, "bundle": "/b", "manifest_archives": MANIFEST[:2],
                                       "fetched": {"results": [{"bytes": 107}]}, "signed": True, "baseline": ["base:1"]})
    assert report["thin"] == ["images/app_1+delta2.tar.zst"] and report["bytes_total"] == 107
    assert migrate_plan.summary_line("src", report) == (
        "src: packed 2 archive(s) into /b, 107 of 107 bytes copied this run, signed, 1 thin against the baseline base:1")


def test_summary_lists_batch_and_failed_hosts():
    up_to_date = {"mode": "relay", "archives": []}
    lines = migrate_plan.summary({"a": up_to_date, "b": {}, "c": up_to_date}, ["a", "b", "c", "d"], ["a", "b"], ["a", "b", "c"])
    assert lines == ["a: up to date, nothing sent", "b: FAILED or unreachable, see above", "d: FAILED or unreachable, see above"]


def test_fanout_report_says_where_each_archive_came_from_and_the_controllers_egress():
    plan = {"deliveries": [{"logical": "images/app_2.tar.zst", "file": "images/app_2.tar.zst"}]}
    path = "images/app_2.tar.zst"

    def report(got, failed=(), pushed=None, check_mode=False):
        fanout = {"needs": [path], "got": list(got), "failed": list(failed)}
        return migrate_plan.host_report({"mode": "relay", "check_mode": check_mode, "plan": plan, "manifest_archives": MANIFEST,
                                         "fallback": [], "wanted": [{"tags": ["app:2"], "state": "missing"}], "fanout": fanout,
                                         "pushed": pushed})

    seed = report([{"path": path, "source": "controller", "round": 0, "bytes": 105}])
    peer = report([{"path": path, "source": "a", "round": 1, "bytes": 105}])
    replaced = report([], [{"path": path, "source": "a", "round": 1, "reason": "refused"}],
                      {"results": [{"item": path, "bytes": 105}]})
    assert (seed["bytes_sent"], seed["bytes_from_peers"]) == (105, 0)
    assert (peer["bytes_sent"], peer["bytes_from_peers"]) == (0, 105)
    assert replaced["sources"] == [{"path": path, "source": "controller", "round": None, "bytes": 105, "replacing": ["a"]}]
    assert migrate_plan.summary_line("b", peer) == "b: received app:2 (105 bytes); images/app_2.tar.zst from a (round 1)"
    assert migrate_plan.summary_line("c", replaced).endswith("; images/app_2.tar.zst from controller replacing a")
    lines = migrate_plan.summary({"a": seed, "b": peer, "c": replaced}, ["a", "b", "c"], ["a", "b", "c"], ["a", "b", "c"])
    assert lines[-1] == "controller sent 210 bytes; hosts passed on 105 bytes in 2 round(s)"
    predicted = report([{"path": path, "source": "a", "round": 1}], check_mode=True)
    assert predicted["bytes_from_peers"] == 50
    assert migrate_plan.summary({"b": predicted}, ["b"], ["b"], ["b"])[-1] == "controller would send 0 bytes; hosts passed on 50 bytes in 2 round(s)"
