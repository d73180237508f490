"""The migrate role on the simulated fleet (tests/harness/fleet.sh), as the tests drive it: a scenario's
images and containers, the playbooks that move them, each run's recap and per-host reports.
"""

from __future__ import annotations

import json
import re
import subprocess
import uuid
from pathlib import Path

import yaml
from image_factory import test_repository

CALLBACKS = Path(__file__).resolve().parent / "callback_plugins"
TARGETS = ["tgt-classic", "tgt-modern", "tgt-containerd2"]
# Fan-out for the small test images: one seed, then the targets pass the archives on; full archives
# only (no delta), so that every target needs the same files whatever layers earlier tests left.
FANOUT = {"migrate_fanout_seeds": 1, "migrate_fanout_timeout": 3, "migrate_fanout_min_bytes": 0, "migrate_delta": False}
RECAP = re.compile(r"^(\S+)\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)


class Run:
    """One ansible-playbook run: its exit code, output, per-host recap and migrate_report facts."""

    def __init__(self, proc, reports):
        self.rc = proc.returncode
        self.output = proc.stdout + proc.stderr
        self.recap = {m.group(1): {"ok": int(m.group(2)), "changed": int(m.group(3)), "unreachable": int(m.group(4)),
                                   "failed": int(m.group(5))} for m in RECAP.finditer(proc.stdout)}
        self.reports = reports

    def changed(self, host):
        return self.recap[host]["changed"] > 0

    def failed(self, host):
        return self.recap[host]["failed"] > 0 or self.recap[host]["unreachable"] > 0


def inventory_groups(data):
    """The host tables of a parsed inventory file: `all`'s own, then each child group's."""
    return [data["all"].get("hosts") or {}] + [group.get("hosts") or {} for group in (data["all"].get("children") or {}).values()]


def update_hosts(inventory, variables_of):
    """Add variables to the hosts of an inventory file, as host_vars would: variables_of(name) -> dict."""
    data = yaml.safe_load(inventory.read_text())
    for hosts in inventory_groups(data):
        for name, hostvars in hosts.items():
            hostvars.update(variables_of(name))
    inventory.write_text(yaml.safe_dump(data, sort_keys=False, width=1000))


def inventory_hosts_of(inventory):
    """Every host an inventory file names, in any group."""
    return list(dict.fromkeys(name for hosts in inventory_groups(yaml.safe_load(inventory.read_text())) for name in hosts))


def archive_name(ref):
    """The file name the role gives an image's archive."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", ref) + ".tar.zst"


def pack_and_flip_a_byte(scenario, app, from_end=None):
    """A bundle of `app` whose archive then has one bit flipped, in the middle or `from_end` bytes before the end."""
    bundle = scenario.tmp / "bundle"
    assert_ok(pack(scenario, bundle, [app]), "src")
    archive = next((bundle / "images").glob("*.tar.zst"))
    data = bytearray(archive.read_bytes())
    data[len(data) // 2 if from_end is None else -from_end] ^= 0x01
    archive.write_bytes(bytes(data))
    return bundle


class Scenario:
    """Images and containers made for one test, the playbooks that move them, and the clean-up."""

    def __init__(self, ansible, fleet, hosts, tmp_path):
        self.ansible, self.fleet, self.hosts, self.tmp = ansible, fleet, hosts, tmp_path
        self.repo = test_repository("m")
        self.containers = []

    def image(self, tag, marker=None, **kwargs):
        ref = "%s:%s" % (self.repo, tag)
        self.hosts["src"].build(ref, marker or ref, **kwargs)
        return ref

    def container(self, name_suffix, image):
        name = "%s-%s" % (self.repo.split("/")[1], name_suffix)
        self.hosts["src"].create_container(image, name, command=["/bin/sh", "-c", "echo changed > /state.txt"])
        self.hosts["src"].run_once(name)
        self.containers.append(name)
        return name

    def play(self, entry, hosts, role_vars, inventory_hosts=None, check=False, extra_args=(), login=None, host_vars=None, serial=None):
        inventory = self.fleet.inventory(self.tmp / ("inventory-%s.yml" % uuid.uuid4().hex[:6]),
                                         include=inventory_hosts or (["src"] + TARGETS))
        if login:  # every host logs in as `login` and becomes root with sudo
            update_hosts(inventory, lambda name: {"ansible_user": login, "ansible_become": True, "ansible_become_method": "sudo"})
        if host_vars:
            update_hosts(inventory, lambda name: host_vars.get(name, {}))
        role = {"ansible.builtin.import_role": {"name": "airgap.docker.migrate", "tasks_from": entry}}
        report = self.tmp / ("reports-%s.json" % uuid.uuid4().hex[:6])
        # A list of role_vars plays the role once per item, in one playbook (as an operator's site.yml may).
        playbook = [dict({"name": "migrate", "hosts": hosts, "gather_facts": False, "vars": one, "tasks": [role]},
                         **({"serial": serial} if serial else {}))
                    for one in (role_vars if isinstance(role_vars, list) else [role_vars])]
        path = self.tmp / ("play-%s.yml" % uuid.uuid4().hex[:6])
        path.write_text(yaml.safe_dump(playbook, sort_keys=False))
        command = [str(self.ansible.bindir / "ansible-playbook"), "-i", str(inventory), str(path)] + (["--check"] if check else [])
        env = dict(self.ansible.env(), ANSIBLE_PIPELINING="True")  # what a fleet operator would set
        # Each host's migrate_report fact, as the playbook left it (callback_plugins/migrate_reports.py).
        env.update(ANSIBLE_CALLBACK_PLUGINS=str(CALLBACKS), ANSIBLE_CALLBACKS_ENABLED="migrate_reports", AIRGAP_TEST_REPORTS=str(report))
        proc = subprocess.run(command + list(extra_args), env=env, capture_output=True, text=True, cwd=str(self.tmp), check=False)
        reports = dict.fromkeys(inventory_hosts_of(inventory))  # None for a host that set no report, as hostvars had
        reports.update(json.loads(report.read_text()) if report.exists() else {})
        run = Run(proc, reports)
        assert "Traceback" not in run.output, run.output[-6000:]
        return run

    def relay(self, images, containers=(), hosts=None, check=False, login=None, serial=None, **extra):
        role_vars = {"migrate_source": "src", "migrate_images": images, "migrate_containers": list(containers),
                     "migrate_bundle_dir": str(self.tmp / "relay")}
        role_vars.update(extra)
        return self.play("main", hosts or ",".join(TARGETS), role_vars, check=check, login=login, serial=serial)

    def target_fingerprint(self, host, ref):
        info = self.hosts[host].inspect(ref)
        return None if info is None else (info["RootFS"]["Layers"], info["Config"].get("Cmd"))

    def cleanup(self):
        for name in self.containers:
            self.hosts["src"].remove_container(name)
        for factory in self.hosts.values():
            factory.remove(*[t for t in factory.tags() if t.startswith(self.repo)])
        for name in self.fleet.hosts:
            self.fleet.clear_staging(name)


def assert_ok(run, *hosts):
    for host in hosts:
        assert host in run.recap and not run.failed(host), run.output[-6000:]


def pack(scenario, bundle, images, containers=(), **extra):
    role_vars = {"migrate_images": images, "migrate_containers": list(containers), "migrate_bundle_dir": str(bundle)}
    role_vars.update(extra)
    return scenario.play("pack", "src", role_vars)


def unpack(scenario, bundle, check=False, **extra):
    role_vars = {"migrate_bundle_dir": str(bundle)}
    role_vars.update(extra)
    # The source is not even in the inventory: the disconnected side only has the bundle.
    return scenario.play("unpack", ",".join(TARGETS), role_vars, inventory_hosts=TARGETS, check=check)


def bundle_bytes(directory):
    return {p.relative_to(directory).as_posix(): p.read_bytes() for p in sorted(directory.rglob("*"))
            if p.is_file() and not p.name.startswith(".")}
