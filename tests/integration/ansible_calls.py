"""How the integration tests drive Ansible.

Modules are called through pytest-ansible's `ansible_adhoc` fixture, in this process: one ad hoc
task per call against the test inventory (the engines, with `docker_host` in their host vars),
the module itself running as Ansible runs it (AnsiballZ, in a forked worker). Playbooks (the
role's) are played with `ansible-playbook`, as an operator plays them.
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

import yaml
from pytest_ansible.module_dispatcher.v213 import ModuleDispatcherV213

# Task keywords a test may give a module call; everything else in the task is the module and its args.
TASK_KEYWORDS = ("check_mode", "diff", "environment", "become", "become_user", "become_method", "become_flags", "vars")


class TaskDispatcher(ModuleDispatcherV213):
    """pytest-ansible's dispatcher, with task keywords (check mode, diff, environment) on the
    task it runs, and the action in its string form (the mapping form is deprecated in 2.19)."""

    def _build_play_ds(self, complex_args):
        play = super()._build_play_ds(complex_args)
        task = play["tasks"][0]
        action = task.pop("action")
        task.update(action=action["module"], args=action["args"], **(self.options.get("task_keywords") or {}))
        return play


def write_inventory(path, engines):
    """The test inventory: localhost, and one local host per engine whose `docker_host` is that engine."""
    local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable, "ansible_pipelining": True}
    hosts = {"localhost": dict(local)}
    hosts.update({name: dict(local, docker_host=host) for name, host in engines.items()})
    Path(path).write_text(yaml.safe_dump({"all": {"hosts": hosts, "children": {"engines": {"hosts": dict.fromkeys(engines)}}}}))
    return path


class Ansible:
    """Module calls (`run`) and the settings `ansible-playbook` runs with (`env`, `bindir`)."""

    def __init__(self, adhoc, inventory, engines, collections_path):
        self.manager = adhoc(inventory=str(inventory), host_pattern="localhost")
        self.manager._dispatcher = TaskDispatcher  # what pytest-ansible would use, plus task keywords
        self.host_of_engine = {address: name for name, address in engines.items()}
        self.collections_path = Path(collections_path)
        self.bindir = Path(sys.executable).parent

    def env(self):
        """The environment of an `ansible-playbook` run: this session's installed collection, no colour."""
        env = dict(os.environ)
        env.update(
            ANSIBLE_COLLECTIONS_PATH=str(self.collections_path),
            ANSIBLE_LOCALHOST_WARNING="false",
            ANSIBLE_INVENTORY_UNPARSED_WARNING="false",
            ANSIBLE_NOCOLOR="1",
            ANSIBLE_RETRY_FILES_ENABLED="false",
            ANSIBLE_PYTHON_INTERPRETER=sys.executable,
        )
        return env

    def run(self, *tasks, extra_env=None):
        """Call each task's module in turn; return their results in order.

        A task is a dict: the module's FQCN as key with its args, plus optional task keywords
        (TASK_KEYWORDS: `check_mode`, `diff`, `become`...). A task runs on the inventory host of the engine its `docker_host` names
        (localhost otherwise). Failures do not stop the calls; each result says whether it failed.
        """
        return [self.call(task, extra_env) for task in tasks]

    def call(self, task, extra_env=None):
        keywords = {key: task[key] for key in TASK_KEYWORDS if key in task}
        if extra_env:
            keywords["environment"] = dict(keywords.get("environment") or {}, **extra_env)
        ((module, args),) = [(key, value) for key, value in task.items() if key not in TASK_KEYWORDS]
        host = self.host_of_engine.get((args or {}).get("docker_host"), "localhost")
        self.manager.options["task_keywords"] = keywords
        outcome = getattr(self.manager[host], module)(**(args or {}))
        result = dict(outcome.contacted[host])
        assert "MODULE FAILURE" not in str(result.get("msg", "")), result
        assert "Traceback" not in str(result.get("msg", "")), result
        return result


def changed(results):
    """Each result's `changed`; none may have failed (a failure would read as `changed: false`)."""
    failures = [r.get("msg") for r in results if r.get("failed")]
    assert not failures, failures
    return [r.get("changed") for r in results]


def assert_clean_failure(result, *fragments):
    """The task failed with one sentence (no traceback) that holds every fragment."""
    assert result.get("failed"), result
    message = result["msg"]
    assert "\n" not in message.strip() and "Traceback" not in message, message
    for fragment in fragments:
        assert fragment in message, message


def sha256_of(path):
    """The sha256 of a file, read in pieces (archives may be large)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
