"""Runs tasks through ansible-playbook and returns each task's registered result."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import yaml


class Ansible:
    def __init__(self, collections_path, play_dir):
        self.collections_path = Path(collections_path)
        self.play_dir = Path(play_dir)
        self.bindir = Path(sys.executable).parent

    def env(self):
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
        """Run the tasks in one play on localhost; return their results in order.

        A task is a dict: the module's FQCN as key with its args, plus optional `check_mode`
        and `diff`. Failures do not stop the play; each result says whether it failed.
        """
        token = uuid.uuid4().hex
        play_dir = self.play_dir
        results_file = play_dir / ("results-%s.json" % token)
        play_tasks = []
        for index, task in enumerate(tasks):
            task = dict(task)
            task.setdefault("ignore_errors", True)
            task["register"] = "r%d" % index
            play_tasks.append(task)
        collect = "{{ [%s] | to_json }}" % ", ".join("r%d" % i for i in range(len(tasks)))
        play_tasks.append({"ansible.builtin.copy": {"content": collect, "dest": str(results_file), "mode": "0644"},
                           "check_mode": False, "diff": False})
        play = [{"hosts": "localhost", "gather_facts": False, "tasks": play_tasks}]
        playbook = play_dir / ("play-%s.yml" % token)
        playbook.write_text(yaml.safe_dump(play, sort_keys=False))
        env = self.env()
        env.update(extra_env or {})
        command = [str(self.bindir / "ansible-playbook"), "-i", "localhost,", "-c", "local", str(playbook)]
        proc = subprocess.run(command, env=env, capture_output=True, text=True, cwd=str(play_dir), check=False)
        if not results_file.exists() or not results_file.read_text():
            raise AssertionError("ansible-playbook did not finish (rc %d):\n%s\n%s" % (proc.returncode, proc.stdout[-4000:], proc.stderr[-4000:]))
        results = json.loads(results_file.read_text())
        for result in results:
            assert "MODULE FAILURE" not in result.get("msg", ""), result
            assert "Traceback" not in result.get("msg", ""), result
        return results


def changed(results):
    return [r.get("changed") for r in results]


def assert_clean_failure(result, *fragments):
    """The task failed with one sentence (no traceback) that holds every fragment."""
    assert result.get("failed"), result
    message = result["msg"]
    assert "\n" not in message.strip() and "Traceback" not in message, message
    for fragment in fragments:
        assert fragment in message, message
