"""Delta migration with the migrate role on the simulated fleet: hosts that hold an image's bottom
layers get a thin archive with only the layers above (relay), a bundle packed against a baseline
carries only the new layers (pack/unpack), and a thin archive that does not load is replaced by
the full one.
"""

from __future__ import annotations

import json
import threading
import time

import pytest
from migrate_scenario import TARGETS, archive_name, assert_ok, bundle_bytes, pack, unpack

BASE_BYTES = 2 << 20  # the part of the image that does not change
SMALL = 64 * 1024


def versions(scenario, hosts):
    """base (busybox + 2 MiB) and two versions of an app on top of it, on the source engine."""
    base = "%s-base:1" % scenario.repo
    hosts["src"].build(base, random_bytes=BASE_BYTES)
    refs = []
    for version in ("1", "2"):
        ref = "%s:%s" % (scenario.repo, version)
        hosts["src"].build_on(base, ref, ["RUN echo version-%s > /version.txt" % version, 'CMD ["cat", "/version.txt"]'])
        refs.append(ref)
    return refs


def thin_files(directory):
    return sorted(p.name for p in directory.rglob("*+delta*.tar.zst"))


def test_relay_sends_only_the_layers_each_host_lacks(scenario, hosts, fleet):
    app1, app2 = versions(scenario, hosts)
    assert_ok(scenario.relay([app1]), *TARGETS)

    runs = [scenario.relay([app2], check=True), scenario.relay([app2]), scenario.relay([app2], check=True), scenario.relay([app2])]
    for run in runs:
        assert_ok(run, *TARGETS)
    thin = "images/%s+delta%d.tar.zst" % (archive_name(app2)[:-8], len(hosts["src"].inspect(app1)["RootFS"]["Layers"]) - 1)
    for host in TARGETS:
        assert [run.changed(host) for run in runs] == [True, True, False, False], runs[1].output[-5000:]
        # Check mode predicts the thin delivery although the source has not saved the new version yet.
        assert runs[0].reports[host]["thin"] == [thin] and runs[0].reports[host]["check_mode"] is True
        report = runs[1].reports[host]
        assert report["thin"] == [thin]
        assert report["fallback"] == []
        # Only the new layer travelled: well under the full archive, which holds the 2 MiB base.
        assert 0 < report["bytes_sent"] < SMALL < BASE_BYTES < report["bytes_full"], report
        assert scenario.target_fingerprint(host, app2) == scenario.target_fingerprint("src", app2)
        assert hosts[host].run_image(app2, "%s-check-%s" % (scenario.repo.split("/")[1], host)) == "version-2\n"
        assert fleet.staging_files(host) == []
        assert runs[3].reports[host]["bytes_sent"] == 0
    assert "in full" in runs[1].output and "1 thin" in runs[1].output
    # Both hosts hold the same layers: one thin archive served both, and the relay keeps it.
    assert thin_files(scenario.tmp / "relay") == [archive_name(app2)[:-8] + "+delta%d.tar.zst" % (
        len(hosts["src"].inspect(app1)["RootFS"]["Layers"]) - 1)]


def _remove_when_staged(staging, pattern, factory, refs, done):
    """Remove refs from an engine as soon as a file matching pattern is staged for it (between the
    probe and the load: the engine loses the layers a thin archive leaves out)."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not done.is_set():
        if any(staging.rglob(pattern)):
            factory.remove(*refs)
            done.set()
            return
        time.sleep(0.02)


def test_thin_archive_that_does_not_load_is_replaced_by_the_full_one(scenario, hosts, fleet):
    app1, app2 = versions(scenario, hosts)
    assert_ok(scenario.relay([app1], hosts="tgt-classic"), "tgt-classic")
    done = threading.Event()
    watcher = threading.Thread(target=_remove_when_staged, args=(
        fleet.hosts["tgt-classic"]["staging"], "*+delta*.tar.zst", hosts["tgt-classic"], [app1], done), daemon=True)
    watcher.start()
    try:
        run = scenario.relay([app2], hosts="tgt-classic")
    finally:
        done.set()
        watcher.join()
    assert hosts["tgt-classic"].inspect(app1) is None, "the watcher removed the base before the load"
    assert_ok(run, "tgt-classic")
    report = run.reports["tgt-classic"]
    assert report["fallback"] == ["images/" + archive_name(app2)], report
    assert "is thin" in run.output and "lacks layer" in run.output
    assert report["bytes_sent"] > BASE_BYTES // 2  # the full archive (zstd of 2 MiB of random bytes)
    assert scenario.target_fingerprint("tgt-classic", app2) == scenario.target_fingerprint("src", app2)
    assert fleet.staging_files("tgt-classic") == []


def test_pack_against_a_baseline_and_unpack(scenario, hosts, fleet):
    app1, app2 = versions(scenario, hosts)
    # The disconnected site's tgt-classic has version 1; tgt-modern has nothing.
    full = scenario.tmp / "full-bundle"
    assert_ok(pack(scenario, full, [app1]), "src")
    assert_ok(scenario.play("unpack", "tgt-classic", {"migrate_bundle_dir": str(full)}, inventory_hosts=TARGETS), "tgt-classic")

    bundle = scenario.tmp / "delta-bundle"
    first = pack(scenario, bundle, [app2], migrate_baseline=[app1])
    assert_ok(first, "src")
    again = pack(scenario, bundle, [app2], migrate_baseline=[app1])
    assert_ok(again, "src")
    assert not again.changed("src")
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["source"]["baseline"] == [app1]
    (entry,) = manifest["archives"]
    assert entry["delta_of"] == "images/" + archive_name(app2) and "+delta" in entry["path"]
    assert entry["size"] < SMALL, "the media carry only the new layer"
    assert sorted(bundle_bytes(bundle)) == sorted(["SHA256SUMS", "manifest.json", entry["path"], entry["path"] + ".airgap.json"])

    # tgt-modern lacks the baseline: refused before anything is copied; tgt-classic gets the update.
    runs = [unpack(scenario, bundle, check=True), unpack(scenario, bundle), unpack(scenario, bundle, check=True),
            unpack(scenario, bundle)]
    for run in runs:
        assert_ok(run, "tgt-classic")
        assert run.failed("tgt-modern")
        assert "this host lacks the layers they leave out" in run.output and app1 in run.output
    assert [run.changed("tgt-classic") for run in runs] == [True, True, False, False]
    assert scenario.target_fingerprint("tgt-classic", app2) == scenario.target_fingerprint("src", app2)
    assert hosts["tgt-modern"].inspect(app2) is None
    assert fleet.staging_files("tgt-modern") == [] and fleet.staging_files("tgt-classic") == []


def test_two_packs_in_one_playbook_each_cut_against_their_own_baseline(scenario, hosts):
    """What the first pack registered (its thin cut) must not stand for the second's archives."""
    app1, app2 = versions(scenario, hosts)
    base = "%s-base:1" % scenario.repo
    first, second = scenario.tmp / "site-a", scenario.tmp / "site-b"
    run = scenario.play("pack", "src", [
        {"migrate_images": [app2], "migrate_bundle_dir": str(first), "migrate_baseline": [app1]},
        {"migrate_images": [app2], "migrate_bundle_dir": str(second), "migrate_baseline": [base]}])
    assert_ok(run, "src")
    (a_entry,) = json.loads((first / "manifest.json").read_text())["archives"]
    (b_entry,) = json.loads((second / "manifest.json").read_text())["archives"]
    full = "images/" + archive_name(app2)
    assert a_entry["delta_of"] == full and b_entry["delta_of"] == full
    # Both baselines hold the base layers below app:2's own layer: the same cut, made once from the full archive.
    assert a_entry["path"] == b_entry["path"] and a_entry["path"].count("+delta") == 1
    assert sorted(bundle_bytes(second)) == sorted(["SHA256SUMS", "manifest.json", b_entry["path"], b_entry["path"] + ".airgap.json"])


def test_tampered_delta_bundle_is_refused(scenario, hosts, fleet):
    app1, app2 = versions(scenario, hosts)
    bundle = scenario.tmp / "delta-bundle"
    assert_ok(pack(scenario, bundle, [app2], migrate_baseline=[app1]), "src")
    (thin,) = list((bundle / "images").glob("*+delta*.tar.zst"))
    data = bytearray(thin.read_bytes())
    data[len(data) // 2] ^= 0x01
    thin.write_bytes(bytes(data))
    assert_ok(scenario.relay([app1], hosts="tgt-classic"), "tgt-classic")
    run = unpack(scenario, bundle)
    assert run.rc != 0
    assert "the archive was altered or damaged" in run.output, run.output[-4000:]
    for host in TARGETS:
        assert hosts[host].inspect(app2) is None
        assert fleet.staging_files(host) == []


@pytest.mark.parametrize("setting", [False])
def test_delta_can_be_turned_off(scenario, hosts, setting):
    app1, app2 = versions(scenario, hosts)
    assert_ok(scenario.relay([app1], hosts="tgt-modern"), "tgt-modern")
    run = scenario.relay([app2], hosts="tgt-modern", migrate_delta=setting)
    assert_ok(run, "tgt-modern")
    report = run.reports["tgt-modern"]
    assert report["thin"] == [] and report["bytes_sent"] > BASE_BYTES // 2
