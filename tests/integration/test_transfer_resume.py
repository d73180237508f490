"""push_archive and fetch_archive resume on the shaped fleet (tests/harness/fleet.sh): a copy of a
64 MiB archive killed half-way (ansible-playbook and its workers, SIGKILL) is finished by the next run,
which moves only about the other half, measured on the host's own interface; a partial copy whose
first block is wrong is sent again whole. Each result's sha256 is checked here, not taken from the plugins.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest
import yaml
from ansible_calls import sha256_of
from fleet_helper import STAGING_ON_HOST

pytestmark = pytest.mark.fleet

TARGET = "tgt-classic"
SOURCE = "src"
SIZE = 64 << 20
AREA = "resume-test"  # inside each host's staging directory


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    """64 MiB of random bytes (nothing compresses them on the way) and their sha256."""
    path = tmp_path_factory.mktemp("archive") / "big.tar.zst"
    path.write_bytes(os.urandom(SIZE))
    return path, sha256_of(path)


@pytest.fixture
def area(fleet):
    """The test's directory in the target's and the source's staging directories, empty before and after."""
    made = []
    for host in (TARGET, SOURCE):
        directory = fleet.hosts[host]["staging"] / AREA
        subprocess.run(["rm", "-rf", str(directory)], check=True)
        directory.mkdir(parents=True)
        made.append(directory)
    yield
    for directory in made:
        subprocess.run(["rm", "-rf", str(directory)], check=True)


def counters(fleet, host):
    """(rx, tx) bytes of the host's own interface, read in its network namespace."""
    out = subprocess.run(["ip", "-n", fleet.namespace(host), "-j", "-s", "link", "show", "dev", "eth0"],
                         check=True, capture_output=True, text=True).stdout
    stats = json.loads(out)[0]["stats64"]
    return stats["rx"]["bytes"], stats["tx"]["bytes"]


class Play:
    """One task of the collection on one fleet host through ansible-playbook, its result written to a file."""

    def __init__(self, ansible, fleet, tmp_path, host, module, args):
        self.tmp, self.host = tmp_path, host
        inventory = fleet.inventory(tmp_path / ("inventory-%s.yml" % uuid.uuid4().hex[:6]), include=[host])
        self.report = tmp_path / ("result-%s.json" % uuid.uuid4().hex[:6])
        playbook = [
            {"hosts": host, "gather_facts": False, "tasks": [{module: args, "register": "moved"}]},
            {"hosts": "localhost", "gather_facts": False, "connection": "local",
             "tasks": [{"ansible.builtin.copy": {"content": "{{ hostvars['%s'].moved | to_json }}" % host, "dest": str(self.report)}}]},
        ]
        path = tmp_path / ("play-%s.yml" % uuid.uuid4().hex[:6])
        path.write_text(yaml.safe_dump(playbook, sort_keys=False))
        self.command = [str(ansible.bindir / "ansible-playbook"), "-i", str(inventory), str(path)]
        self.env = dict(ansible.env(), ANSIBLE_PIPELINING="True")

    def run(self, *extra):
        proc = subprocess.run(self.command + list(extra), env=self.env, capture_output=True, text=True, check=False)
        assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
        return json.loads(self.report.read_text()), proc.stdout

    def run_killed_when(self, grown):
        """Start the play and, once grown() is true, kill it with SIGKILL: ansible-playbook and every process
        below it. Killing its process group is not enough: each worker calls setsid(), and an orphaned
        worker goes on to finish its task (an ssh ControlPersist master, daemonized, lives on, as it would)."""
        proc = subprocess.Popen(self.command, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 60
        try:
            while not grown():
                assert proc.poll() is None, "the play ended before it could be interrupted"
                assert time.monotonic() < deadline, "the copy did not get half-way in 60 s"
                time.sleep(0.02)
        finally:
            for pid in [proc.pid, *descendants(proc.pid)]:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            proc.wait()


def descendants(pid):
    """Every process below `pid`, from each process's parent in /proc/PID/stat."""
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open("/proc/%s/stat" % entry) as handle:
                    parents[int(entry)] = int(handle.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
    found, todo = [], [pid]
    while todo:
        parent = todo.pop()
        children = [child for child, its_parent in parents.items() if its_parent == parent]
        found.extend(children)
        todo.extend(children)
    return found


def partials(directory, pattern):
    return sorted(Path(directory).glob(pattern))


def bigger_than_half(directory, pattern):
    def grown():
        found = partials(directory, pattern)
        return bool(found) and found[0].stat().st_size > SIZE // 2
    return grown


def make_bundle(tmp_path, archive):
    images = tmp_path / "bundle" / "images"
    images.mkdir(parents=True)
    os.link(archive[0], images / "big.tar.zst")
    (images / "big.tar.zst.airgap.json").write_text('{"schema": 1}\n')
    return tmp_path / "bundle"


def push_play(ansible, fleet, tmp_path, bundle, archive):
    return Play(ansible, fleet, tmp_path, TARGET, "airgap.docker.push_archive",
                {"bundle": str(bundle), "path": "images/big.tar.zst", "dest": "%s/%s/big.tar.zst" % (STAGING_ON_HOST, AREA),
                 "sha256": archive[1], "size": SIZE})


def test_a_push_killed_half_way_moves_only_the_rest_next_time(ansible, fleet, area, archive, tmp_path):
    bundle = make_bundle(tmp_path, archive)
    staged = fleet.hosts[TARGET]["staging"] / AREA
    play = push_play(ansible, fleet, tmp_path, bundle, archive)
    play.run_killed_when(bigger_than_half(staged, "big.tar.zst.*.partial"))
    (partial,) = partials(staged, "big.tar.zst.*.partial")
    left = partial.stat().st_size
    assert SIZE // 2 < left < SIZE and not (staged / "big.tar.zst").exists()

    before = counters(fleet, TARGET)[0]
    result, output = play.run("-v")
    received = counters(fleet, TARGET)[0] - before
    assert sha256_of(staged / "big.tar.zst") == archive[1]
    assert partials(staged, "*.partial") == []
    rest = SIZE - result["resumed_from"]
    # What the host's interface received: the rest, plus TCP, IP, ssh and Ansible's own commands.
    print("push: %d bytes left by the killed run, %d kept, %d sent, %d received by %s (%.1f%% of the archive)"
          % (left, result["resumed_from"], result["bytes"], received, TARGET, 100.0 * received / SIZE))
    assert rest <= SIZE // 2
    assert rest <= received <= rest * 1.1 + (1 << 20)
    assert 0.3 * SIZE < received < 0.6 * SIZE
    # At -v: the start, lines with the rate and time left, the end.
    lines = [line for line in output.splitlines() if "push_archive images/big.tar.zst:" in line]
    assert any("to move of 64.0 MiB" in line for line in lines), output[-3000:]
    assert any(line.endswith(" left") and "MiB/s" in line for line in lines), output[-3000:]
    assert any("done, " in line for line in lines), output[-3000:]


def test_a_push_onto_a_partial_copy_whose_first_block_differs_starts_again(ansible, fleet, area, archive, tmp_path):
    bundle = make_bundle(tmp_path, archive)
    staged = fleet.hosts[TARGET]["staging"] / AREA
    host_part = hashlib.sha256(TARGET.encode()).hexdigest()[:8]
    damaged = bytearray(archive[0].read_bytes()[:40 << 20])
    damaged[4096] ^= 0x01
    (staged / ("big.tar.zst.%s-%s.partial" % (archive[1][:16], host_part))).write_bytes(bytes(damaged))

    before = counters(fleet, TARGET)[0]
    result, _output = push_play(ansible, fleet, tmp_path, bundle, archive).run()
    received = counters(fleet, TARGET)[0] - before
    print("push onto a damaged partial: %d kept, %d received by %s" % (result["resumed_from"], received, TARGET))
    assert result["resumed_from"] == 0 and result["bytes"] > SIZE
    assert received > SIZE
    assert sha256_of(staged / "big.tar.zst") == archive[1]
    assert partials(staged, "*.partial") == []


def test_a_fetch_killed_half_way_moves_only_the_rest_next_time(ansible, fleet, area, archive, tmp_path):
    on_source = fleet.hosts[SOURCE]["staging"] / AREA / "big.tar.zst"
    shutil.copyfile(archive[0], on_source)
    bundle = tmp_path / "bundle"
    play = Play(ansible, fleet, tmp_path, SOURCE, "airgap.docker.fetch_archive",
                {"src": "%s/%s/big.tar.zst" % (STAGING_ON_HOST, AREA), "bundle": str(bundle), "path": "images/big.tar.zst",
                 "sha256": archive[1], "size": SIZE})
    images = bundle / "images"
    play.run_killed_when(lambda: images.is_dir() and bigger_than_half(images, "big.tar.zst.*.partial")())
    (partial,) = partials(images, "big.tar.zst.*.partial")
    left = partial.stat().st_size
    assert not (images / "big.tar.zst").exists()

    before = counters(fleet, SOURCE)[1]
    result, _output = play.run()
    sent = counters(fleet, SOURCE)[1] - before
    print("fetch: %d bytes left by the killed run, %d kept, %d fetched, %d sent by %s (%.1f%% of the archive)"
          % (left, result["resumed_from"], result["bytes"], sent, SOURCE, 100.0 * sent / SIZE))
    assert sha256_of(images / "big.tar.zst") == archive[1]
    assert partials(images, "*.partial") == []
    rest = SIZE - result["resumed_from"]
    assert result["bytes"] == rest and rest <= SIZE // 2
    assert rest <= sent <= rest * 1.1 + (1 << 20)
    assert 0.3 * SIZE < sent < 0.6 * SIZE


def test_a_fetch_onto_a_partial_copy_whose_first_block_differs_starts_again(ansible, fleet, area, archive, tmp_path):
    shutil.copyfile(archive[0], fleet.hosts[SOURCE]["staging"] / AREA / "big.tar.zst")
    images = tmp_path / "bundle" / "images"
    images.mkdir(parents=True)
    damaged = bytearray(archive[0].read_bytes()[:40 << 20])
    damaged[0] ^= 0x01
    (images / ("big.tar.zst.%s.partial" % archive[1][:16])).write_bytes(bytes(damaged))

    before = counters(fleet, SOURCE)[1]
    result, _output = Play(ansible, fleet, tmp_path, SOURCE, "airgap.docker.fetch_archive",
                           {"src": "%s/%s/big.tar.zst" % (STAGING_ON_HOST, AREA), "bundle": str(tmp_path / "bundle"),
                            "path": "images/big.tar.zst", "sha256": archive[1], "size": SIZE}).run()
    sent = counters(fleet, SOURCE)[1] - before
    print("fetch onto a damaged partial: %d kept, %d sent by %s" % (result["resumed_from"], sent, SOURCE))
    assert result["resumed_from"] == 0 and result["bytes"] == SIZE and sent > SIZE
    assert sha256_of(images / "big.tar.zst") == archive[1]
    assert partials(images, "*.partial") == []
