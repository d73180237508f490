"""The migrate role on the simulated fleet (tests/harness/fleet.sh): real sshd per host on its
own loopback address, its own engine (source: classic 20.10; targets: classic 20.10 and
containerd-store 26) and its own staging directory, driven by ansible-playbook over SSH.
"""

from __future__ import annotations

import hashlib
import json
import os
import pwd
import re
import shutil
import subprocess

import pytest
from migrate_scenario import FANOUT, TARGETS, archive_name, assert_ok, bundle_bytes, pack, pack_and_flip_a_byte, unpack


def test_relay_to_both_engines_check_run_check_run(scenario, hosts, fleet):
    """With fan-out: the controller sends each archive once, the targets pass them on, and the check
    run predicts exactly the transfers the real run makes."""
    app = scenario.image("1", random_bytes=64 * 1024)
    web = scenario.container("web", app)
    snapshot = scenario.repo + "-web:snap"
    containers = [{"name": web, "image": snapshot}]

    runs = [scenario.relay([app], containers, check=True, **FANOUT), scenario.relay([app], containers, **FANOUT),
            scenario.relay([app], containers, check=True, **FANOUT), scenario.relay([app], containers, **FANOUT)]
    for run in runs:
        assert_ok(run, *TARGETS)
    for host in TARGETS:
        assert [run.changed(host) for run in runs] == [True, True, False, False], host

    # The check run moved nothing; the real one delivered both archives to every engine.
    assert runs[0].reports.get("tgt-classic", {}).get("check_mode") is True, runs[0].output[-5000:]
    source = scenario.target_fingerprint("src", app)
    for host in TARGETS:
        assert scenario.target_fingerprint(host, app) == source
        # The snapshot keeps the container's files and its command.
        assert hosts[host].run_image(snapshot, "%s-check-%s" % (web, host), ["cat", "/state.txt"]) == "changed\n"
        assert hosts[host].inspect(snapshot)["Config"]["Cmd"] == ["/bin/sh", "-c", "echo changed > /state.txt"]
        report = runs[1].reports[host]
        assert sorted(report["images"]) == sorted([app, snapshot])
        assert report["bytes_sent"] + report["bytes_from_peers"] >= report["bytes_total"] > 0
        # Cleaned up after the verified load; the re-runs copied nothing at all.
        assert fleet.staging_files(host) == []
        assert runs[3].reports[host]["archives"] == [] and runs[3].reports[host]["bytes_sent"] == 0
    assert "up to date, nothing sent" in runs[3].output

    # In the check run's plan and in the real run: each archive left the controller once, every other
    # copy came from a target that held it a round earlier or relayed it in the same round (coming
    # before its receiver in the play's order), and both took as many rounds.
    rounds = []
    for run in runs[:2]:
        transfers = {host: [(s["path"], s["source"], s["round"]) for s in run.reports[host]["sources"]] for host in TARGETS}
        received = {(path, host): at for host in TARGETS for path, _source, at in transfers[host]}
        assert sorted(received) == sorted((path, host) for path in {p for p, _h in received} for host in TARGETS), transfers
        seeded = sorted(path for host in TARGETS for path, sender, _at in transfers[host] if sender == "controller")
        assert seeded == sorted({path for path, _host in received}), transfers
        for host in TARGETS:
            for path, sender, at in transfers[host]:
                assert sender == "controller" or received[(path, sender)] < at or (
                    received[(path, sender)] == at and TARGETS.index(sender) < TARGETS.index(host)), (host, path, sender)
        rounds.append(max(received.values()))
        relayed = [(host, path) for host in TARGETS for path, sender, at in transfers[host]
                   if sender != "controller" and received[(path, sender)] == at]
        assert relayed, transfers  # a host passed an archive on while it still received it
    assert rounds[0] == rounds[1], rounds
    # One copy of each archive (and its sidecar, a few KiB) left the controller, whatever the number of targets.
    done = runs[1].reports
    one_copy, egress = done["tgt-classic"]["bytes_total"], sum(done[h]["bytes_sent"] for h in TARGETS)
    assert one_copy <= egress < one_copy + 64 * 1024, (one_copy, egress)
    assert "hosts passed on" in runs[1].output and "would send" in runs[0].output


def test_target_that_has_the_images_gets_nothing(scenario, fleet, hosts):
    app = scenario.image("1")
    first = scenario.relay([app], hosts="tgt-classic", migrate_cleanup=False)
    assert_ok(first, "tgt-classic")
    scenario.fleet.clear_staging("tgt-classic")

    # Without fan-out, even where it would pay off: the controller copies to each host that lacks something.
    both = scenario.relay([app], migrate_cleanup=False, migrate_fanout=False, migrate_fanout_min_bytes=0)
    assert_ok(both, *TARGETS)
    assert all(both.reports[h]["sources"] == [] for h in TARGETS) and "hosts passed on" not in both.output
    assert both.reports["tgt-classic"]["bytes_sent"] == 0 and both.reports["tgt-classic"]["archives"] == []
    assert fleet.staging_files("tgt-classic") == []
    assert both.reports["tgt-modern"]["bytes_sent"] > 0
    # The full archive, or a thin one when the engine already holds the image's bottom layers.
    staged = [f for f in fleet.staging_files("tgt-modern") if f.endswith(".tar.zst")]
    assert len(staged) == 1 and re.fullmatch(r"incoming/images/%s(\+delta\d+)?\.tar\.zst" % re.escape(archive_name(app)[:-8]), staged[0]), staged


def test_unreachable_target_fails_alone(scenario, fleet):
    app = scenario.image("1")
    inventory_hosts = ["src", "unreachable"] + TARGETS
    run = scenario.play("main", ",".join(["unreachable"] + TARGETS),
                        {"migrate_source": "src", "migrate_images": [app], "migrate_bundle_dir": str(scenario.tmp / "relay")},
                        inventory_hosts=inventory_hosts)
    assert run.rc != 0
    assert run.recap["unreachable"]["unreachable"] == 1
    assert_ok(run, *TARGETS)
    for host in TARGETS:
        assert scenario.target_fingerprint(host, app) is not None
    assert "unreachable: FAILED or unreachable" in run.output


def test_pack_is_reproducible_and_unpacks_without_the_source(scenario, hosts, fleet):
    """For media that take files of 2 MiB at most: the tool's archive (random content, over 3 MiB)
    travels as parts, the others whole; every host joins the parts and loads the whole archive."""
    app, tool = scenario.image("1"), scenario.image("2", random_bytes=3 * 1024 * 1024)
    web = scenario.container("web", app)
    containers = [{"name": web, "image": scenario.repo + "-web:snap"}]
    bundle = scenario.tmp / "bundle"

    # A fixed level: an adaptive one may differ from one save to the next, and the bundle is packed twice from scratch.
    first = pack(scenario, bundle, [app, tool], containers, migrate_split_size="2M", migrate_compression_level=3)
    assert_ok(first, "src")
    assert first.changed("src")
    assert subprocess.run(["sha256sum", "--quiet", "-c", "SHA256SUMS"], cwd=str(bundle), capture_output=True, check=False).returncode == 0
    assert_held_as_parts(bundle, "images/" + archive_name(tool), 2 << 20)
    assert (bundle / "images" / archive_name(app)).exists()  # under the limit: whole
    again = pack(scenario, bundle, [app, tool], containers, migrate_split_size="2M", migrate_compression_level=3)
    assert_ok(again, "src")
    assert not again.changed("src")
    assert again.reports["src"]["bytes_fetched"] == 0

    # A second bundle from scratch (archives saved again on the source) is byte-identical, parts included.
    scenario.fleet.clear_staging("src")
    other = scenario.tmp / "bundle-again"
    assert_ok(pack(scenario, other, [app, tool], containers, migrate_split_size="2M", migrate_compression_level=3), "src")
    assert bundle_bytes(other) == bundle_bytes(bundle)

    # The bundle travels: the controller's copy is all the disconnected side has.
    media = scenario.tmp / "media"
    shutil.copytree(bundle, media)
    shutil.rmtree(bundle)
    shutil.rmtree(other)
    runs = [unpack(scenario, media, check=True), unpack(scenario, media), unpack(scenario, media, check=True), unpack(scenario, media)]
    for run in runs:
        assert_ok(run, *TARGETS)
    for host in TARGETS:
        assert [run.changed(host) for run in runs] == [True, True, False, False]
        assert scenario.target_fingerprint(host, tool) == scenario.target_fingerprint("src", tool)
        assert hosts[host].inspect(scenario.repo + "-web:snap") is not None
        assert fleet.staging_files(host) == []  # no part, joined file or partial copy left behind


def assert_held_as_parts(bundle, path, split):
    """The manifest lists the archive's parts, of `split` bytes but the last, and `cat` of them has its sha256."""
    entry = next(e for e in json.loads((bundle / "manifest.json").read_text())["archives"] if e["path"] == path)
    parts = sorted(bundle.glob(path + ".part*"))
    assert [p.relative_to(bundle).as_posix() for p in parts] == [p["path"] for p in entry["parts"]]
    assert len(parts) == -(-entry["size"] // split) >= 2 and not (bundle / path).exists()
    assert all(p.stat().st_size == split for p in parts[:-1]) and parts[-1].stat().st_size <= split
    joined = hashlib.sha256(b"".join(p.read_bytes() for p in parts)).hexdigest()
    assert joined == entry["sha256"]


def test_pack_removes_archives_it_no_longer_lists(scenario):
    app, tool = scenario.image("1"), scenario.image("2")
    bundle = scenario.tmp / "bundle"
    assert_ok(pack(scenario, bundle, [app, tool]), "src")
    assert_ok(pack(scenario, bundle, [app]), "src")
    files = sorted(bundle_bytes(bundle))
    assert files == sorted(["SHA256SUMS", "manifest.json", "images/" + archive_name(app), "images/%s.airgap.json" % archive_name(app)])


def test_tampered_archive_is_refused_and_nothing_is_loaded(scenario, fleet, hosts):
    app = scenario.image("1", random_bytes=16 * 1024)
    run = unpack(scenario, pack_and_flip_a_byte(scenario, app))
    assert run.rc != 0
    assert "the archive was altered or damaged" in run.output
    for host in TARGETS:  # the bundle check stops every host before anything is copied
        assert hosts[host].inspect(app) is None
        assert fleet.staging_files(host) == []


def test_checksum_mismatch_on_the_target_is_refused(scenario, fleet, hosts):
    """Without the controller's check (migrate_verify false), the load's own check refuses it."""
    app = scenario.image("1", random_bytes=16 * 1024)
    run = unpack(scenario, pack_and_flip_a_byte(scenario, app, from_end=100), migrate_verify=False)
    assert run.rc != 0
    for host in TARGETS:
        assert run.failed(host)
        assert hosts[host].inspect(app) is None
        assert fleet.staging_files(host) == []  # the refused copy does not stay behind
    assert "nothing was loaded" in run.output.lower(), run.output[-3000:]


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    directory = tmp_path_factory.mktemp("keys")
    for name in ("release", "stranger"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(directory / name)], check=True)
    allowed = directory / "allowed_signers"
    allowed.write_text('release@example.com namespaces="airgap.docker-bundle" %s\n' % (directory / "release.pub").read_text().strip())
    return {"release": directory / "release", "stranger": directory / "stranger", "allowed": allowed}


def test_signed_bundle_is_accepted_and_unsigned_or_foreign_refused(scenario, keys, hosts, fleet):
    app = scenario.image("1")
    signed, unsigned, foreign = (scenario.tmp / n for n in ("signed", "unsigned", "foreign"))
    assert_ok(pack(scenario, signed, [app], migrate_signing_key=str(keys["release"])), "src")
    assert (signed / "manifest.json.sig").exists()
    assert_ok(pack(scenario, unsigned, [app]), "src")
    assert_ok(pack(scenario, foreign, [app], migrate_signing_key=str(keys["stranger"])), "src")

    for bundle, message in ((unsigned, "is not signed"), (foreign, "does not list")):
        run = unpack(scenario, bundle, migrate_allowed_signers=str(keys["allowed"]))
        assert run.rc != 0 and message in run.output, run.output[-4000:]
        for host in TARGETS:
            assert hosts[host].inspect(app) is None
            assert fleet.staging_files(host) == []

    run = unpack(scenario, signed, migrate_allowed_signers=str(keys["allowed"]))
    assert_ok(run, *TARGETS)
    assert run.reports["tgt-classic"]["signer"] == "release@example.com"
    for host in TARGETS:
        assert hosts[host].inspect(app) is not None


def test_relay_as_an_unprivileged_user_with_become(scenario, fleet):
    """Modules run as root through sudo; archives travel as the login user, streamed, never slurped."""
    app = scenario.image("1", random_bytes=32 * 1024)
    runs = [scenario.relay([app], login="airgap-op"), scenario.relay([app], login="airgap-op")]
    for run in runs:
        assert_ok(run, *TARGETS)
    assert [run.changed("tgt-modern") for run in runs] == [True, False]
    for host in TARGETS:
        assert scenario.target_fingerprint(host, app) == scenario.target_fingerprint("src", app)
        assert fleet.staging_files(host) == []
    operator = pwd.getpwnam("airgap-op").pw_uid
    staged = [fleet.hosts["src"]["staging"] / f for f in fleet.staging_files("src")]
    assert staged and all(os.stat(p).st_uid == operator and os.stat(p).st_mode & 0o077 == 0 for p in staged)


BAD_SETTINGS = {
    "nothing to move": ("main", {"migrate_source": "src", "migrate_images": []}, "Nothing to move"),
    "unknown source": ("main", {"migrate_source": "nowhere", "migrate_images": ["x:1"]}, "not a host of the inventory"),
    "one name twice": ("main", {"migrate_source": "src", "migrate_images": ["a/b:1", "a_b:1"]}, "same file name"),
    "missing image": ("main", {"migrate_source": "src", "migrate_images": ["airgap-test/never-built:1"]},
                      "not found in the engine: airgap-test/never-built:1"),
    "pack on two hosts": ("pack", {"migrate_images": ["x:1"], "migrate_bundle_dir": "/nonexistent"}, "runs in a play on the one source host"),
    "pack without bundle": ("pack", {"migrate_images": ["x:1"]}, "needs migrate_bundle_dir"),
    "unpack without bundle": ("unpack", {}, "needs migrate_bundle_dir"),
    "unpack of no bundle": ("unpack", {"migrate_bundle_dir": "/"}, "is not a bundle"),
    "bad compression": ("main", {"migrate_source": "src", "migrate_images": ["x:1"], "migrate_compression": "xz"}, "migrate_compression"),
}


@pytest.mark.parametrize("case", sorted(BAD_SETTINGS))
def test_bad_settings_fail_cleanly_before_anything_moves(scenario, fleet, hosts, case):
    entry, role_vars, message = BAD_SETTINGS[case]
    before = {host: hosts[host].tags() for host in TARGETS}
    play_hosts = "src,tgt-classic" if case == "pack on two hosts" else ("src" if entry == "pack" else ",".join(TARGETS))
    run = scenario.play(entry, play_hosts, role_vars)
    assert run.rc != 0
    assert message in run.output, run.output[-3000:]
    assert "Traceback" not in run.output and "MODULE FAILURE" not in run.output
    for host in TARGETS:
        assert hosts[host].tags() == before[host]
        assert fleet.staging_files(host) == []


def test_pack_check_mode_writes_and_removes_nothing(scenario):
    app = scenario.image("1")
    bundle = scenario.tmp / "bundle"
    assert_ok(pack(scenario, bundle, [app]), "src")
    before = bundle_bytes(bundle)
    newer = scenario.image("1", marker="rebuilt")  # same tag, new image: the archive would be saved again
    assert newer == app
    run = scenario.play("pack", "src", {"migrate_images": [app], "migrate_bundle_dir": str(bundle)}, check=True, extra_args=["-v"])
    assert_ok(run, "src")
    assert run.changed("src")
    assert re.search(r'"removed": \[\]', run.output), run.output[-3000:]  # the archive being re-saved is not "removed"
    assert bundle_bytes(bundle) == before


def test_source_that_is_also_a_destination_keeps_its_archives(scenario, fleet):
    app = scenario.image("1")
    web = scenario.container("web", app)
    containers = [{"name": web, "image": scenario.repo + "-web:snap"}]
    runs = [scenario.relay([app], containers, hosts="src,tgt-classic") for attempt in ("first", "second")]
    for run in runs:
        assert_ok(run, "src", "tgt-classic")
    assert [run.changed("src") for run in runs] == [True, False]
    assert [run.changed("tgt-classic") for run in runs] == [True, False]
    assert sorted(f for f in fleet.staging_files("src") if not f.endswith(".json")) == sorted(
        ["images/" + archive_name(app), "containers/" + archive_name(web)])


def test_engine_settings_per_host(scenario, fleet, hosts):
    """Each host's own migrate_docker_host is used, the source's too; a host whose engine cannot be
    reached fails alone, with a sentence naming the engine."""
    app = scenario.image("1")
    root = fleet.engines_root / "run"
    host_vars = {"src": {"migrate_docker_host": fleet.hosts["src"]["docker_host"]},
                 "tgt-classic": {"migrate_docker_host": fleet.hosts["tgt-classic"]["docker_host"]},
                 "tgt-modern": {"migrate_docker_host": "unix://%s/no-such-engine.sock" % root}}
    run = scenario.play("main", ",".join(TARGETS), {"migrate_source": "src", "migrate_images": [app],
                                                    "migrate_bundle_dir": str(scenario.tmp / "relay")}, host_vars=host_vars)
    assert run.rc != 0
    assert_ok(run, "tgt-classic")
    assert run.failed("tgt-modern")
    assert "no-such-engine.sock" in run.output
    assert scenario.target_fingerprint("tgt-classic", app) == scenario.target_fingerprint("src", app)
    assert hosts["tgt-modern"].inspect(app) is None
    assert "tgt-modern: FAILED or unreachable" in run.output
