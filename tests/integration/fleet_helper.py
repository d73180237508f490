"""The simulated fleet of tests/harness/fleet.sh, seen from the tests: its hosts, an inventory
for ansible-playbook, ssh to a host, each host's private staging directory, commands run in a
host's network namespace, and fleet.sh's shaping and fault commands.

fleet.sh is the one place where the hosts are defined; this reads them from its inventory.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from pathlib import Path

import yaml

FLEET_SH = Path(__file__).resolve().parents[1] / "harness" / "fleet.sh"
GROUP = "fleet"
STAGING_ON_HOST = "/var/tmp/airgap.docker"  # each host's own staging directory, as the host sees it
UNREACHABLE = "unreachable"


class Fleet:
    def __init__(self):
        self.engines_root = Path(os.environ.get("AIRGAP_ENGINES_ROOT", "/var/tmp/airgap-engines"))
        self.root = self.engines_root / "fleet"
        self.key = self.root / "id_ed25519"
        self._inventory = yaml.safe_load(subprocess.run([str(FLEET_SH), "inventory"], check=True, capture_output=True, text=True).stdout)
        self._vars = dict(self._inventory["all"]["hosts"])
        self._vars.update(self._inventory["all"]["children"][GROUP]["hosts"])
        # The fleet's own settings: fleet_subnet, fleet_controller_address, fleet_rate, fleet_delay.
        self.settings = dict(self._inventory["all"].get("vars") or {})
        self.controller_address = self.settings.get("fleet_controller_address")
        self.hosts = {
            name: {
                "address": hostvars["ansible_host"],
                "engine": hostvars["fleet_engine"],
                "docker_host": "unix://%s/run/%s.sock" % (self.engines_root, hostvars["fleet_engine"]),
                "staging": self.root / name / "staging",
                "namespace": hostvars.get("fleet_namespace"),
            }
            for name, hostvars in self._inventory["all"]["children"][GROUP]["hosts"].items()
        }

    def address(self, host):
        """The address of any inventory host, the unreachable one included."""
        return self._vars[host]["ansible_host"]

    def inventory(self, path, include=None, extra_vars=None):
        """Write the inventory of `fleet.sh inventory` to `path`, only the hosts in `include` if
        given (the unreachable host only if named there), `extra_vars` as vars of all hosts."""
        names = list(self.hosts) if include is None else list(include)
        unknown = sorted(set(names) - set(self._vars))
        if unknown:
            raise KeyError("not fleet hosts: %s" % ", ".join(unknown))
        group = {name: self._vars[name] for name in self.hosts if name in names}
        inventory = {"all": {"hosts": {}, "children": {GROUP: {"hosts": group}}}}
        if UNREACHABLE in names:
            inventory["all"]["hosts"][UNREACHABLE] = self._vars[UNREACHABLE]
        if extra_vars:
            inventory["all"]["vars"] = dict(extra_vars)
        path = Path(path)
        path.write_text(yaml.safe_dump(inventory, sort_keys=False, default_flow_style=False, width=1000))
        return path

    def ssh_args(self, host, command):
        """The argv of an ssh to the host running `command` (a shell string, or a list to be quoted)."""
        if not isinstance(command, str):
            command = shlex.join(command)
        hostvars = self._vars[host]
        return ["ssh", "-i", str(self.key), "-p", str(hostvars["ansible_port"]),
                "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes",
                "-o", "IdentitiesOnly=yes", "-o", "ConnectTimeout=5", "-o", "LogLevel=ERROR",
                "%s@%s" % (hostvars["ansible_user"], hostvars["ansible_host"]), command]

    def ssh(self, host, command, timeout=120):
        """Run `command` (a shell string, or a list to be quoted) on the host over real ssh."""
        return subprocess.run(self.ssh_args(host, command), capture_output=True, text=True, stdin=subprocess.DEVNULL,
                              timeout=timeout, check=False)

    def namespace(self, host):
        """The network namespace of any inventory host, the unreachable one included."""
        return self._vars[host]["fleet_namespace"]

    def in_namespace(self, host, argv):
        """`argv` as a command that runs in the host's network namespace (the machine's files,
        the host's network: its address, its shaped link, its fault rules). Needs root."""
        return ["nsenter", "--net=/run/netns/%s" % self.namespace(host), *argv]

    def harness(self, *args, timeout=300):
        """Run `fleet.sh *args` (shape, fault, status, start), failing on a non-zero exit."""
        run = subprocess.run([str(FLEET_SH), *args], capture_output=True, text=True, timeout=timeout, check=False)
        if run.returncode != 0:
            raise RuntimeError("fleet.sh %s exited %d:\n%s%s" % (" ".join(args), run.returncode, run.stdout, run.stderr))
        return run

    def staging_files(self, host):
        """Relative paths of every file under the host's staging directory, sorted."""
        staging = self.hosts[host]["staging"]
        found = []
        for directory, _dirs, files in os.walk(staging):
            found.extend((Path(directory) / name).relative_to(staging).as_posix() for name in files)
        return sorted(found)

    def clear_staging(self, host):
        """Remove everything inside the host's staging directory, keeping the directory."""
        for entry in self.hosts[host]["staging"].iterdir():
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
