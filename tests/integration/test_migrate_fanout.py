"""The migrate role's fan-out on the shaped fleet (tests/harness/fleet.sh): the controller seeds,
the hosts pass archives on to each other over their own links, and every fault a peer can have
(unreachable, a link that drops mid-transfer, a tampered copy) ends with the receiver served by
another source and nothing left behind.
"""

from __future__ import annotations

import subprocess
import threading
import time

import pytest
from fleet_helper import FLEET_SH
from migrate_scenario import FANOUT, TARGETS, archive_name, assert_ok

# One seed (FANOUT): the controller sends to the first receiver in the play's order (TARGETS), and
# round 1 relays the archive along the others: tgt-classic > tgt-modern > tgt-containerd2. The
# check/run/check/run of a fan-out is test_migrate_role's test_relay_to_both_engines_check_run_check_run.
SEED = "tgt-classic"
RELAYING = "tgt-modern"  # receives from the seed and passes on to tgt-containerd2, in round 1


def fault(*args):
    subprocess.run([str(FLEET_SH), "fault", *args], check=True, capture_output=True, text=True, timeout=60)


@pytest.fixture
def faults():
    yield fault
    fault("clear")


def sources(run, host):
    return [(s["source"], s["round"], tuple(s["replacing"])) for s in run.reports[host]["sources"]]


def assert_nothing_left(fleet):
    """No share running or listening, no pid file or partial file, on any host of the fleet (the
    source keeps the archives it saved, as it always does)."""
    for host in fleet.hosts:
        staged = fleet.staging_files(host)
        if host in TARGETS:
            assert staged == [], (host, staged)
        assert not [f for f in staged if f.endswith((".partial", ".airgap-share.json"))], (host, staged)
        listening = fleet.ssh(host, "ss -Htln").stdout.split("\n")
        others = [line for line in listening if line.strip() and not line.split()[3].endswith((":22", ":2222"))]
        assert others == [], (host, others)


def test_hosts_that_cannot_reach_the_seed_get_the_archive_from_the_controller(scenario, fleet, faults):
    app = scenario.image("1", random_bytes=64 * 1024)
    for other in TARGETS:
        if other != SEED:
            faults("block", SEED, other)
    run = scenario.relay([app], **FANOUT)
    assert_ok(run, *TARGETS)
    for host in TARGETS:
        assert scenario.target_fingerprint(host, app) is not None
    for host in TARGETS:
        if host != SEED:
            # Tried the seed (the only holder) once, then the controller replaced it. In a relay the
            # last host was also failed by the one before it, which could not pass on what it never got.
            expected = (SEED, RELAYING) if host == "tgt-containerd2" else (SEED,)
            assert sources(run, host) == [("controller", None, expected)], sources(run, host)
            assert "from controller replacing %s" % SEED in run.output
    assert_nothing_left(fleet)


def test_a_link_that_drops_mid_transfer_leaves_nothing_and_the_receiver_is_served_again(scenario, fleet, hosts, faults):
    app = scenario.image("1", random_bytes=2 * 1024 * 1024)
    first_receiver = RELAYING  # its link from the seed drops, and with it the relay to tgt-containerd2
    faults("cut-after", SEED, str(300 * 1024), first_receiver)
    # As an unprivileged login that becomes root: the shares and fetches run through sudo.
    run = scenario.relay([app], login="airgap-op", **FANOUT)
    assert_ok(run, *TARGETS)
    for host in TARGETS:
        assert scenario.target_fingerprint(host, app) is not None
    got = sources(run, first_receiver)
    assert len(got) == 1 and got[0][0] != SEED, got
    assert "stopped sending images/%s" % archive_name(app) in run.output
    assert_nothing_left(fleet)


def test_a_peer_serving_a_tampered_copy_is_refused_and_the_receivers_recover(scenario, fleet, hosts):
    """The seed's staged copy is altered on its disk once it arrived: the hosts it passes it on to
    refuse it and get it from the controller; the seed itself refuses to load it and fails alone."""
    app = scenario.image("1", random_bytes=512 * 1024)
    staged = fleet.hosts[SEED]["staging"] / "incoming" / "images" / archive_name(app)
    stop = threading.Event()

    def tamper_once_it_arrives():
        while not stop.is_set():
            if staged.exists():
                with open(staged, "r+b") as handle:
                    handle.seek(staged.stat().st_size // 2)
                    byte = handle.read(1)
                    handle.seek(-1, 1)
                    handle.write(bytes([byte[0] ^ 0x01]))
                return
            time.sleep(0.02)

    worker = threading.Thread(target=tamper_once_it_arrives, daemon=True)
    worker.start()
    try:
        run = scenario.relay([app], **FANOUT)
    finally:
        stop.set()
        worker.join()
    assert run.failed(SEED) and scenario.target_fingerprint(SEED, app) is None
    others = [h for h in TARGETS if h != SEED]
    assert_ok(run, *others)
    for host in others:
        assert scenario.target_fingerprint(host, app) == scenario.target_fingerprint("src", app)
        assert any(s[0] == "controller" and SEED in s[2] for s in sources(run, host)) or \
            all(s[0] not in ("controller", SEED) for s in sources(run, host)), sources(run, host)
    assert "the copy was refused" in run.output
    assert_nothing_left(fleet)


def test_each_serial_batch_fans_out_among_its_own_hosts(scenario):
    """serial: 2 makes two batches, tgt-classic and tgt-containerd2 (the play's order), then tgt-modern.
    Without the relay: the holders pass the archive on once they hold it (the doubling rounds)."""
    app = scenario.image("1", random_bytes=64 * 1024)
    run = scenario.relay([app], hosts="tgt-classic,tgt-containerd2,tgt-modern", serial=2, **dict(FANOUT, migrate_fanout_relay=False))
    assert_ok(run, *TARGETS)
    assert sources(run, SEED) == [("controller", 0, ())]
    assert sources(run, "tgt-containerd2") == [(SEED, 1, ())]
    # Alone in its batch, nobody to pass it on to: the controller copies it, as without fan-out.
    assert run.reports["tgt-modern"]["sources"] == [] and run.reports["tgt-modern"]["bytes_sent"] > 0
    for host in TARGETS:
        assert scenario.target_fingerprint(host, app) == scenario.target_fingerprint("src", app)
