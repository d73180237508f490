"""The simulated fleet (tests/harness/fleet.sh) is real: each host is an sshd of its own, with
its own Docker engine and its own staging directory, and the unreachable address refuses."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import yaml
from fleet_helper import STAGING_ON_HOST, Fleet


@pytest.fixture(scope="module")
def fleet():
    fleet = Fleet()
    for name in fleet.hosts:
        if fleet.ssh(name, "true").returncode != 0:
            pytest.fail("fleet host %s does not answer over ssh; run tests/harness/fleet.sh start" % name)
    return fleet


def test_each_host_answers_over_ssh_in_a_namespace_of_its_own(fleet):
    namespaces = set()
    for name in fleet.hosts:
        result = fleet.ssh(name, "readlink /proc/self/ns/mnt")
        assert result.returncode == 0, result.stderr
        namespaces.add(result.stdout.strip())
    assert len(namespaces) == len(fleet.hosts)
    assert os.readlink("/proc/self/ns/mnt") not in namespaces


@pytest.mark.parametrize("host", ["src", "tgt-classic", "tgt-modern", "tgt-containerd2"])
def test_the_default_docker_socket_is_the_hosts_own_engine(fleet, host):
    data_root = str(fleet.engines_root / fleet.hosts[host]["engine"] / "data")
    cli = fleet.ssh(host, "docker -H unix:///var/run/docker.sock info --format '{{.DockerRootDir}}'")
    assert (cli.returncode, cli.stdout.strip()) == (0, data_root), cli.stderr
    # The Python that Ansible runs modules with finds it with no DOCKER_HOST at all.
    python = fleet.engines_root / "managed-venv/bin/python"
    sdk = fleet.ssh(host, [str(python), "-c", "import docker; print(docker.from_env().info()['DockerRootDir'])"])
    assert (sdk.returncode, sdk.stdout.strip()) == (0, data_root), sdk.stderr


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


def test_the_unreachable_address_refuses_connections(fleet):
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((fleet.address("unreachable"), 2222), timeout=5).close()
    assert fleet.ssh("unreachable", "true").returncode == 255


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
