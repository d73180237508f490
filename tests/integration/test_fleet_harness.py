"""The simulated fleet (tests/harness/fleet.sh) is real: each host is an sshd of its own, with its
own Docker engine, its own staging directory, its own network namespace and address on a shaped
link; the unreachable address refuses at once, and the faults fleet.sh injects hold until cleared.

Transfers and probes here run in the hosts' network namespaces (nsenter, as root), not over
ssh: they see exactly what a host's programs see, and nothing of ssh's own traffic is counted."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import yaml
from fleet_helper import STAGING_ON_HOST, Fleet

SHAPED = "40mbit"  # the rate a test reshapes a link to: well below the default 100mbit
PORT = 5001  # the agents' port, in the namespace of the host that listens
SSH_PORT = 22
TCP_PAYLOAD = 1448 / 1500  # TCP payload per full-size IP packet (MSS with timestamps in an MTU of 1500)

# A small program run on the controller or in a host's namespace: `recv` waits for one connection
# and reports what it received and how fast, `send` sends bytes, `probe` tries TCP connections.
AGENT = r"""
import json, socket, sys, time
mode = sys.argv[1]
if mode == "recv":
    address, port, idle = sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind((address, port))
    server.listen(1)
    server.settimeout(20)
    print("listening", flush=True)
    conn, _ = server.accept()
    conn.settimeout(idle)
    received, head, first, last, end = 0, 0, None, None, "eof"
    try:
        while True:
            data = conn.recv(1 << 20)
            if not data:
                break
            last = time.monotonic()
            if first is None:
                first, head = last, len(data)  # the clock starts once the first data is in
            received += len(data)
    except socket.timeout:
        end = "stalled"
    print(json.dumps({"bytes": received, "head": head, "seconds": (last - first) if first else 0.0, "end": end}))
elif mode == "send":
    address, port, size, timeout = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
    sock = socket.create_connection((address, port), timeout=timeout)
    sent, error, chunk = 0, None, bytes(65536)
    try:
        while sent < size:
            sent += sock.send(chunk[: size - sent])
        sock.shutdown(socket.SHUT_WR)
        sock.settimeout(timeout)
        sock.recv(1)  # the receiver's close: everything arrived
    except OSError as exc:
        error = type(exc).__name__
    print(json.dumps({"sent": sent, "error": error}))
elif mode == "probe":
    timeout, results = float(sys.argv[2]), {}
    for target in sys.argv[3:]:
        host, port = target.rsplit(":", 1)
        start = time.monotonic()
        try:
            socket.create_connection((host, int(port)), timeout=timeout).close()
            outcome = "open"
        except ConnectionRefusedError:
            outcome = "refused"
        except socket.timeout:
            outcome = "timeout"
        except OSError as exc:
            outcome = exc.strerror or type(exc).__name__
        results[target] = {"outcome": outcome, "seconds": round(time.monotonic() - start, 3)}
    print(json.dumps(results))
"""


@pytest.fixture(scope="module")
def fleet():
    fleet = Fleet()
    for name in fleet.hosts:
        if fleet.ssh(name, "true").returncode != 0:
            pytest.fail("fleet host %s does not answer over ssh; run tests/harness/fleet.sh start" % name)
    return fleet


@pytest.fixture
def faults(fleet):
    """The fleet, and every fault and reshaping undone afterwards, whatever the test left."""
    yield fleet
    fleet.harness("fault", "clear")


def agent(fleet, where, *args):
    """The agent's argv on the controller or in a host's namespace."""
    argv = [sys.executable, "-c", AGENT, *[str(arg) for arg in args]]
    return argv if where == "controller" else fleet.in_namespace(where, argv)


def address(fleet, name):
    return fleet.controller_address if name == "controller" else fleet.address(name)


def transfer(fleet, sender, receiver, size, idle=3.0, send_timeout=10.0):
    """Send `size` bytes from `sender` to `receiver` (hosts or "controller") over the fleet's
    links; what the sender reports, and what the receiver got and in how long."""
    target = address(fleet, receiver)
    rx = subprocess.Popen(agent(fleet, receiver, "recv", target, PORT, idle), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert rx.stdout.readline().strip() == "listening", rx.stderr.read()
        tx = subprocess.run(agent(fleet, sender, "send", target, PORT, size, send_timeout), capture_output=True, text=True, timeout=60, check=False)
        out, err = rx.communicate(timeout=60)
    finally:
        if rx.poll() is None:
            rx.kill()
            rx.wait()
    assert tx.returncode == 0, tx.stderr
    assert rx.returncode == 0, err
    return json.loads(tx.stdout), json.loads(out)


def measured_rate(got):
    """Bits per second of payload, from the arrival of the first data to the last."""
    return (got["bytes"] - got["head"]) * 8 / got["seconds"]


def probe(fleet, where, targets, timeout=1.0):
    """What a TCP connection from `where` to each of `targets` (names) on port 22 comes to."""
    addresses = {"%s:%d" % (address(fleet, name), SSH_PORT): name for name in targets}
    run = subprocess.run(agent(fleet, where, "probe", timeout, *addresses), capture_output=True, text=True, timeout=60, check=False)
    assert run.returncode == 0, run.stderr
    return {addresses[target]: result["outcome"] for target, result in json.loads(run.stdout).items()}


def bits_per_second(rate):
    """100mbit, 100Mbit (tc's own notation), 1.5Gbit..."""
    match = re.fullmatch(r"([0-9.]+)([kmg]?)bit", rate.lower())
    assert match, rate
    return float(match[1]) * {"": 1, "k": 1e3, "m": 1e6, "g": 1e9}[match[2]]


def tc_rate(namespace, device):
    show = subprocess.run(["tc", "-n", namespace, "qdisc", "show", "dev", device], capture_output=True, text=True, check=True).stdout
    match = re.search(r"qdisc tbf .* rate (\S+)", show)
    assert match, show
    return bits_per_second(match[1])


def test_each_host_answers_over_ssh_in_a_namespace_of_its_own(fleet):
    namespaces = set()
    for name in fleet.hosts:
        result = fleet.ssh(name, "readlink /proc/self/ns/mnt")
        assert result.returncode == 0, result.stderr
        namespaces.add(result.stdout.strip())
    assert len(namespaces) == len(fleet.hosts)
    assert os.readlink("/proc/self/ns/mnt") not in namespaces


def test_each_host_has_a_network_namespace_address_and_route_of_its_own(fleet):
    namespaces = set()
    for name, host in fleet.hosts.items():
        result = fleet.ssh(name, "readlink /proc/self/ns/net; echo --; ip -4 -o addr show scope global; echo --;"
                                 " ip -4 route show table all; echo --; ls /sys/class/net")
        assert result.returncode == 0, result.stderr
        namespace, addresses, routes, interfaces = [part.strip().splitlines() for part in result.stdout.split("--\n")]
        namespaces.add(namespace[0])
        assert namespace == ["net:[%d]" % os.stat("/run/netns/%s" % host["namespace"]).st_ino], name
        assert [line.split()[1:4] for line in addresses] == [["eth0", "inet", "%s/24" % host["address"]]], result.stdout
        # The subnet, on the host's own link, and nothing else: no default route, no way out.
        assert [route.split()[:3] for route in routes if not route.startswith(("local ", "broadcast "))] == \
            [[fleet.settings["fleet_subnet"], "dev", "eth0"]], result.stdout
        assert interfaces == ["eth0", "lo"], result.stdout  # /sys shows the host's own interfaces
    assert len(namespaces) == len(fleet.hosts)
    assert os.readlink("/proc/self/ns/net") not in namespaces
    # The unreachable host has a namespace and address too.
    unreachable = subprocess.run(fleet.in_namespace("unreachable", ["ip", "-4", "-o", "addr", "show", "dev", "eth0"]),
                                 capture_output=True, text=True, check=True).stdout
    assert " %s/24 " % fleet.address("unreachable") in unreachable


def test_the_controller_reaches_the_subnet_through_its_own_link_only(fleet):
    controller = fleet.controller_address
    assert controller == "198.18.77.1"
    own = subprocess.run(["ip", "-4", "-o", "addr", "show", "dev", "airgap0"], capture_output=True, text=True, check=True).stdout
    assert " %s/24 " % controller in own
    for name, host in fleet.hosts.items():
        route = subprocess.run(["ip", "-4", "route", "get", host["address"]], capture_output=True, text=True, check=True).stdout
        assert " dev airgap0 " in route and " src %s " % controller in route, (name, route)
    routes = subprocess.run(["ip", "-4", "route", "show", "table", "all"], capture_output=True, text=True, check=True).stdout
    ours = [line for line in routes.splitlines() if "198.18.77." in line]
    assert ours and all(" dev airgap0 " in line for line in ours), ours
    # The bridge and the hosts' links are in the switch's namespace, not in the machine's.
    switch = subprocess.run(["ip", "-n", "airgap-switch", "-o", "link", "show"], capture_output=True, text=True, check=True).stdout
    ports = set(re.findall(r"^\d+: (\w+)[@:]", switch, re.M))
    assert {"br0", "port1", "port10"} | {"port%s" % host["address"].rsplit(".", 1)[1] for host in fleet.hosts.values()} <= ports
    root = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True, check=True).stdout
    assert not re.search(r"^\d+: port\d+[@:]", root, re.M)


def test_every_link_is_shaped_on_both_ends(fleet):
    rate = bits_per_second(fleet.settings["fleet_rate"])
    for name, host in fleet.hosts.items():
        assert tc_rate(host["namespace"], "eth0") == rate, name  # the host's upload
        assert tc_rate("airgap-switch", "port%s" % host["address"].rsplit(".", 1)[1]) == rate, name  # its download
    assert tc_rate("airgap-switch", "port1") == rate
    controller = subprocess.run(["tc", "qdisc", "show", "dev", "airgap0"], capture_output=True, text=True, check=True).stdout
    assert bits_per_second(re.search(r"qdisc tbf .* rate (\S+)", controller)[1]) == rate


# sender, receiver, the host whose link is reshaped: the receiver's (its download, the switch's end)
# or the sender's (its upload, the host's end).
@pytest.mark.parametrize(("sender", "receiver", "reshaped"), [
    ("controller", "tgt-classic", "tgt-classic"),
    ("src", "tgt-classic", "tgt-classic"),
    ("src", "tgt-modern", "src"),
])
def test_a_transfer_runs_at_the_rate_of_its_slowest_link(faults, sender, receiver, reshaped):
    fleet = faults
    fleet.harness("shape", reshaped, SHAPED)
    sent, got = transfer(fleet, sender, receiver, 8_000_000)
    assert sent == {"sent": 8_000_000, "error": None}
    assert (got["bytes"], got["end"]) == (8_000_000, "eof")
    measured = measured_rate(got)
    # The payload rate: TCP, IP and Ethernet headers take about 4 % of what tbf lets through.
    assert 0.80 <= measured / bits_per_second(SHAPED) <= 1.05, "%.1f Mbit/s" % (measured / 1e6)
    fleet.harness("shape", reshaped)
    assert tc_rate(fleet.namespace(reshaped), "eth0") == bits_per_second(fleet.settings["fleet_rate"])


def test_a_transfer_at_the_configured_rate(fleet):
    rate = bits_per_second(fleet.settings["fleet_rate"])
    if rate > 400e6:
        pytest.skip("a link of %s measures this machine, not the shaping" % fleet.settings["fleet_rate"])
    _sent, got = transfer(fleet, "controller", "tgt-modern", 8_000_000)
    assert got["end"] == "eof"
    measured = measured_rate(got)
    assert 0.80 <= measured / rate <= 1.05, "%.1f Mbit/s" % (measured / 1e6)


def test_fault_down_cuts_a_host_off_from_everyone_until_it_is_up(faults):
    fleet = faults
    fleet.harness("fault", "down", "tgt-containerd2")
    # A timeout, or "No route to host" once the controller's ARP request for it went unanswered.
    seen = probe(fleet, "controller", ["tgt-containerd2", "tgt-classic"])
    assert seen["tgt-containerd2"] != "open" and seen["tgt-classic"] == "open", seen
    assert probe(fleet, "src", ["tgt-containerd2"])["tgt-containerd2"] != "open"
    assert probe(fleet, "src", ["tgt-classic"]) == {"tgt-classic": "open"}
    fleet.harness("fault", "up", "tgt-containerd2")
    assert probe(fleet, "controller", ["tgt-containerd2"], timeout=5) == {"tgt-containerd2": "open"}
    assert probe(fleet, "src", ["tgt-containerd2"], timeout=5) == {"tgt-containerd2": "open"}
    # And `fault clear` undoes it as well.
    fleet.harness("fault", "down", "tgt-containerd2")
    assert probe(fleet, "controller", ["tgt-containerd2"])["tgt-containerd2"] != "open"
    fleet.harness("fault", "clear", "tgt-containerd2")
    assert fleet.ssh("tgt-containerd2", "true", timeout=30).returncode == 0


def test_fault_block_separates_two_hosts_and_no_one_else(faults):
    fleet = faults
    fleet.harness("fault", "block", "src", "tgt-classic")
    assert probe(fleet, "src", ["tgt-classic", "tgt-modern"]) == {"tgt-classic": "timeout", "tgt-modern": "open"}
    assert probe(fleet, "tgt-classic", ["src", "tgt-modern"]) == {"src": "timeout", "tgt-modern": "open"}
    assert probe(fleet, "controller", ["src", "tgt-classic"]) == {"src": "open", "tgt-classic": "open"}
    fleet.harness("fault", "unblock", "tgt-classic", "src")  # either order
    assert probe(fleet, "src", ["tgt-classic"]) == {"tgt-classic": "open"}
    assert probe(fleet, "tgt-classic", ["src"]) == {"src": "open"}
    # The controller can be blocked from a host (the rules go into the host's namespace).
    fleet.harness("fault", "block", "controller", "tgt-modern")
    assert probe(fleet, "controller", ["tgt-modern", "src"]) == {"tgt-modern": "timeout", "src": "open"}
    assert probe(fleet, "src", ["tgt-modern"]) == {"tgt-modern": "open"}
    fleet.harness("fault", "block", "src", "tgt-classic")
    fleet.harness("fault", "clear")
    assert probe(fleet, "controller", ["tgt-modern"]) == {"tgt-modern": "open"}
    assert probe(fleet, "src", ["tgt-classic"]) == {"tgt-classic": "open"}


def test_fault_cut_after_drops_the_rest_of_a_transfer_to_a_peer(faults):
    fleet = faults
    limit = 1_000_000
    fleet.harness("fault", "cut-after", "src", str(limit), "tgt-classic")
    sent, got = transfer(fleet, "src", "tgt-classic", 4_000_000, idle=1.5, send_timeout=2)
    # The receiver gets the payload of `limit` bytes of packets (less their headers, and less what
    # tbf's queue dropped and TCP sent again, which counts too), then nothing.
    assert got["end"] == "stalled"
    assert 0.9 * limit * TCP_PAYLOAD <= got["bytes"] <= limit, got
    assert sent["error"] == "TimeoutError", sent
    # Only to that peer: src still sends to others, and answers the controller.
    _sent, other = transfer(fleet, "src", "tgt-modern", 2_000_000)
    assert (other["bytes"], other["end"]) == (2_000_000, "eof")
    assert fleet.ssh("src", "true").returncode == 0
    fleet.harness("fault", "clear", "src")
    _sent, again = transfer(fleet, "src", "tgt-classic", 4_000_000)
    assert (again["bytes"], again["end"]) == (4_000_000, "eof")


def test_fault_cut_after_without_a_peer_cuts_everything_the_host_sends(faults):
    fleet = faults
    limit = 500_000
    fleet.harness("fault", "cut-after", "tgt-containerd2", str(limit))
    _sent, got = transfer(fleet, "tgt-containerd2", "controller", 2_000_000, idle=1.5, send_timeout=2)
    assert got["end"] == "stalled"
    assert 0.9 * limit * TCP_PAYLOAD <= got["bytes"] <= limit, got
    assert probe(fleet, "src", ["tgt-containerd2"]) == {"tgt-containerd2": "timeout"}  # its SYN-ACK goes nowhere
    fleet.harness("fault", "clear", "tgt-containerd2")
    assert fleet.ssh("tgt-containerd2", "true", timeout=30).returncode == 0


@pytest.mark.parametrize("host", ["src", "tgt-classic", "tgt-modern", "tgt-containerd2"])
def test_the_default_docker_socket_is_the_hosts_own_engine(fleet, host):
    data_root = str(fleet.engines_root / "stores" / fleet.hosts[host]["engine"])
    cli = fleet.ssh(host, "docker -H unix:///var/run/docker.sock info --format '{{.DockerRootDir}}'")
    assert (cli.returncode, cli.stdout.strip()) == (0, data_root), cli.stderr
    # The Python that Ansible runs modules with finds it with no DOCKER_HOST at all.
    python = fleet.engines_root / "managed-venv/bin/python"
    sdk = fleet.ssh(host, [str(python), "-c", "import docker; print(docker.from_env().info()['DockerRootDir'])"])
    assert (sdk.returncode, sdk.stdout.strip()) == (0, data_root), sdk.stderr


@pytest.mark.skipif(os.environ.get("AIRGAP_ENGINES_LOOP") == "0", reason="the stores are a plain directory")
def test_the_engines_stores_are_on_a_journaled_file_system_of_their_own(fleet):
    # Without a journal, ext4 skips inodes freed in the last minute: loads after a removal crawl.
    stores = fleet.engines_root / "stores"
    mount = subprocess.run(["findmnt", "-n", "-o", "SOURCE,FSTYPE,OPTIONS", "--mountpoint", str(stores)],
                           capture_output=True, text=True, check=False)
    assert mount.returncode == 0, "%s is not a mount point" % stores
    device, fstype, options = mount.stdout.split()
    assert (device.startswith("/dev/loop"), fstype) == (True, "ext4"), mount.stdout
    assert "discard" in options.split(","), options
    header = subprocess.run(["dumpe2fs", "-h", device], capture_output=True, text=True, check=True).stdout
    features = next(line for line in header.splitlines() if line.startswith("Filesystem features:"))
    assert "has_journal" in features.split(), features
    backing = subprocess.run(["losetup", "-n", "-O", "BACK-FILE,DIO", device], capture_output=True, text=True, check=True)
    assert backing.stdout.split() == [str(fleet.engines_root / "stores.img"), "1"], backing.stdout


def test_staging_directory_is_private_to_each_host(fleet):
    name = "fleet-harness-%s" % uuid.uuid4().hex[:8]
    written = fleet.ssh("tgt-classic", "mkdir %s/%s && echo hello > %s/%s/probe" % (STAGING_ON_HOST, name, STAGING_ON_HOST, name))
    try:
        assert written.returncode == 0, written.stderr
        assert "%s/probe" % name in fleet.staging_files("tgt-classic")
        for other in ("src", "tgt-modern"):
            assert not any(path.startswith(name) for path in fleet.staging_files(other))
            assert fleet.ssh(other, "test -e %s/%s" % (STAGING_ON_HOST, name)).returncode == 1
        assert not (Path(STAGING_ON_HOST) / name).exists()
    finally:
        fleet.ssh("tgt-classic", "rm -rf %s/%s" % (STAGING_ON_HOST, name))
    assert not any(path.startswith(name) for path in fleet.staging_files("tgt-classic"))


def test_the_unreachable_address_refuses_connections_at_once(fleet):
    started = time.monotonic()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((fleet.address("unreachable"), SSH_PORT), timeout=5).close()
    assert time.monotonic() - started < 0.5
    started = time.monotonic()
    assert fleet.ssh("unreachable", "true").returncode == 255
    assert time.monotonic() - started < 3
    assert probe(fleet, "src", ["unreachable"]) == {"unreachable": "refused"}


def test_ansible_reaches_the_fleet_through_the_inventory(fleet, tmp_path):
    inventory = fleet.inventory(tmp_path / "inventory.yml", include=["src", "tgt-modern", "unreachable"])
    results = tmp_path / "results.json"
    playbook = tmp_path / "play.yml"
    playbook.write_text(yaml.safe_dump([
        {"hosts": "all", "gather_facts": False, "ignore_unreachable": True,
         "tasks": [{"ansible.builtin.stat": {"path": "/var/run/docker.sock"}, "register": "sock"}]},
        {"hosts": "localhost", "gather_facts": False,
         "tasks": [{"ansible.builtin.copy": {"dest": str(results),
                                             "content": "{{ dict(groups.all | zip(groups.all | map('extract', hostvars, 'sock'))) | to_json }}"}}]},
    ]))
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_LOCALHOST_WARNING="false")
    playbook_cmd = Path(sys.executable).parent / "ansible-playbook"
    run = subprocess.run([str(playbook_cmd), "-i", str(inventory), str(playbook)], env=env, capture_output=True, text=True, timeout=120, check=False)
    assert results.exists(), run.stdout[-3000:] + run.stderr[-3000:]
    hosts = json.loads(results.read_text())
    assert sorted(hosts) == ["src", "tgt-modern", "unreachable"]
    assert hosts["unreachable"]["unreachable"] is True
    for name in ("src", "tgt-modern"):
        assert hosts[name]["stat"]["issock"] is True, hosts[name]


def sshd_pids(fleet):
    return {name: (fleet.root / name / "sshd.pid").read_text().strip() for name in fleet.hosts}


def test_start_again_changes_nothing(fleet):
    before = sshd_pids(fleet), {name: os.stat("/run/netns/%s" % host["namespace"]).st_ino for name, host in fleet.hosts.items()}
    started = time.monotonic()
    run = fleet.harness("start")
    elapsed = time.monotonic() - started
    after = sshd_pids(fleet), {name: os.stat("/run/netns/%s" % host["namespace"]).st_ino for name, host in fleet.hosts.items()}
    assert after == before, run.stderr
    for name in fleet.hosts:
        assert "%s already running" % name in run.stderr
    assert "starting" not in run.stderr.replace("engines: ", "")
    assert elapsed < 20, run.stderr


def test_start_restores_a_link_torn_down(fleet):
    namespace = fleet.namespace("tgt-containerd2")
    pid = sshd_pids(fleet)["tgt-containerd2"]
    subprocess.run(["ip", "-n", namespace, "link", "del", "eth0"], check=True)
    assert probe(fleet, "controller", ["tgt-containerd2"])["tgt-containerd2"] != "open"
    run = fleet.harness("start")
    assert fleet.ssh("tgt-containerd2", "true").returncode == 0
    # The same sshd: its listening socket outlives its address, which comes back with the link.
    assert sshd_pids(fleet)["tgt-containerd2"] == pid, run.stderr
    assert tc_rate(namespace, "eth0") == bits_per_second(fleet.settings["fleet_rate"])
