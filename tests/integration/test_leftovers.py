"""Leftovers and concurrent runs, through ansible-playbook: a save killed half-way leaves a partial
file that the next run on the same path removes (a live writer's is kept: the lock says which), two
runs that write one bundle directory take turns or fail saying why, and a relay's default cache
belongs to one source, not to every source of that inventory name.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import yaml
from migrate_scenario import assert_ok

SAVE = "airgap.docker.image_archive"


def digest(path):
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def partials(directory, name):
    return sorted(p.name for p in Path(directory).iterdir() if p.name.startswith("." + name + ".") and p.name.endswith(".partial"))


def children_of(pid):
    """Every process descending from pid (read from /proc, so that only this test's processes are found)."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parents[int(entry.name)] = int(fields[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def cmdline(pid):
    try:
        return Path("/proc/%d/cmdline" % pid).read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
    except OSError:
        return ""


def start_playbook(ansible, tasks, play_dir):
    playbook = play_dir / ("play-%s.yml" % uuid.uuid4().hex[:8])
    playbook.write_text(yaml.safe_dump([{"hosts": "localhost", "gather_facts": False, "tasks": tasks}], sort_keys=False))
    command = [str(ansible.bindir / "ansible-playbook"), "-i", "localhost,", "-c", "local", str(playbook)]
    # Without pipelining the module runs from a file whose name (AnsiballZ_<module>.py) finds its process.
    env = dict(ansible.env(), ANSIBLE_PIPELINING="False")
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def kill_module_when_partial_grows(play, workdir, name, module="image_archive", least=1 << 20, timeout=240):
    """SIGKILL the module process of `play` once its partial file holds `least` bytes; the partial's name."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        grown = [n for n in partials(workdir, name) if (workdir / n).stat().st_size >= least]
        if grown:
            victims = [pid for pid in children_of(play.pid) if "AnsiballZ_%s" % module in cmdline(pid)]
            assert victims, "the module's process was not found"
            for pid in victims:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            return grown[0]
        assert play.poll() is None, "the save ended before it could be interrupted:\n%s" % play.stdout.read()[-3000:]
        time.sleep(0.02)
    raise AssertionError("no partial file of %s grew in %d s" % (name, timeout))


@pytest.mark.per_store
def test_a_killed_save_is_cleaned_up_by_the_next_run_and_the_old_archive_survives(ansible, engine, unique, workdir, tmp_path):
    path = workdir / "app.tar.gz"
    old_ref, new_ref = unique + ":old", unique + ":new"
    engine.build(old_ref)
    first = ansible.run({SAVE: {"path": str(path), "images": [old_ref], "docker_host": engine.host}})[0]
    assert first["changed"] and not first.get("failed"), first
    old_sha = digest(path)
    assert old_sha == first["archive"]["sha256"]

    # Random data compressed at the slowest level: a save that takes seconds, to be killed half-way.
    engine.build(new_ref, marker="new", random_bytes=96 << 20)
    task = {SAVE: {"path": str(path), "images": [new_ref], "docker_host": engine.host, "compression": "gzip",
                   "compression_level": 9}}
    play = start_playbook(ansible, [task], tmp_path)
    try:
        leftover = kill_module_when_partial_grows(play, workdir, path.name)
        output = play.communicate(timeout=120)[0]
    finally:
        if play.poll() is None:
            play.kill()
            play.wait()
    assert play.returncode != 0, output[-3000:]
    assert partials(workdir, path.name) == [leftover], "the killed save leaves its partial file (the kernel cannot remove it)"
    assert digest(path) == old_sha, "the previous archive is untouched by the killed save"
    sidecar = json.loads((workdir / (path.name + ".airgap.json")).read_text())
    assert sidecar["archive"]["sha256"] == old_sha

    again = ansible.run(task)[0]
    assert again["changed"] and not again.get("failed"), again
    assert partials(workdir, path.name) == [], "the next run on the path removes the dead writer's partial file"
    assert digest(path) == again["archive"]["sha256"] == json.loads((workdir / (path.name + ".airgap.json")).read_text())["archive"]["sha256"]
    assert [i["tags"] for i in again["images"]] == [[new_ref]]
    check = ansible.run({SAVE: {"path": str(path), "images": [new_ref], "docker_host": engine.host, "compression": "gzip"}})[0]
    assert not check["changed"] and not check.get("failed"), check


@pytest.mark.per_store
def test_a_running_saves_partial_file_is_kept_by_a_concurrent_save(ansible, engine, unique, workdir, tmp_path):
    path = workdir / "app.tar.gz"
    big, small = unique + ":big", unique + ":small"
    engine.build(big, marker="big", random_bytes=32 << 20)
    engine.build(small)
    slow = start_playbook(ansible, [{SAVE: {"path": str(path), "images": [big], "docker_host": engine.host,
                                            "compression": "gzip", "compression_level": 9}}], tmp_path)
    writers = []
    try:
        deadline = time.monotonic() + 240
        while not [n for n in partials(workdir, path.name) if (workdir / n).stat().st_size > 0]:
            assert time.monotonic() < deadline and slow.poll() is None
            time.sleep(0.02)
        # The slow writer is stopped, not raced: it holds its partial file's lock while the quick save runs.
        writers = [pid for pid in children_of(slow.pid) if "AnsiballZ_image_archive" in cmdline(pid)]
        assert writers, "the slow save's module process was not found"
        for pid in writers:
            os.kill(pid, signal.SIGSTOP)
        (live,) = partials(workdir, path.name)
        quick = ansible.run({SAVE: {"path": str(path), "images": [small], "docker_host": engine.host}})[0]
        assert quick["changed"] and not quick.get("failed"), quick
        assert live in partials(workdir, path.name), "a live writer's partial file is never removed"
    finally:
        for pid in writers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
        try:
            output = slow.communicate(timeout=600)[0]
        finally:
            if slow.poll() is None:
                slow.kill()
                slow.wait()
    assert slow.returncode == 0, output[-3000:]
    assert partials(workdir, path.name) == []


# One bundle directory, two writers -----------------------------------------------------------------


@contextlib.contextmanager
def held(directory, release_after=None):
    """Hold a bundle directory's lock from another process, as another run writing it would (not
    from this one: the module calls' workers are forked from it and would inherit the lock)."""
    holder = subprocess.Popen([sys.executable, "-c", _HOLD_LOCK, str(directory), str(release_after or 3600)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked", "the lock holder did not take the lock"
        yield
        if release_after:
            holder.wait(timeout=release_after + 60)
    finally:
        if holder.poll() is None:
            holder.kill()
        holder.wait()


_HOLD_LOCK = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDONLY | os.O_DIRECTORY)
fcntl.flock(fd, fcntl.LOCK_EX)
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
"""


def image_sidecar(data):
    return {"schema": 1, "kind": "images",
            "archive": {"size": len(data), "sha256": hashlib.sha256(data).hexdigest(), "compression": "none", "layout": "oci"},
            "images": [{"config_digest": "sha256:" + "cd" * 32, "tags": ["app:1"], "diff_ids": ["sha256:" + "1a" * 32]}],
            "engine": {}, "request": {"images": ["app:1"]}}


@pytest.fixture
def bundle_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("AIRGAP_DOCKER_CACHE", str(tmp_path / "memo"))
    directory = tmp_path / "bundle"
    (directory / "images").mkdir(parents=True)
    (directory / "images" / "a.tar").write_bytes(b"archive a")
    return directory


def write_manifest(directory, timeout, name="a.tar"):
    data = (directory / "images" / name).read_bytes()
    return {"airgap.docker.bundle": {"path": str(directory), "state": "present", "lock_timeout": timeout,
                                     "archives": [{"path": "images/" + name, "sidecar": image_sidecar(data)}]}}


def snapshot(directory):
    return {p.relative_to(directory).as_posix(): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def test_a_second_bundle_writer_fails_clearly_after_the_timeout_and_changes_nothing(ansible, bundle_dir):
    assert not ansible.run(write_manifest(bundle_dir, 5))[0].get("failed")
    (bundle_dir / "images" / "b.tar").write_bytes(b"archive b")
    before = snapshot(bundle_dir)
    with held(bundle_dir):
        started = time.monotonic()
        (result,) = ansible.run(write_manifest(bundle_dir, 2, "b.tar"))
        waited = time.monotonic() - started
    assert result.get("failed") and "\n" not in result["msg"], result
    assert result["msg"].startswith("Another run is using the bundle %s" % bundle_dir), result["msg"]
    assert "after 2 second(s); nothing was changed" in result["msg"]
    assert waited >= 2
    assert snapshot(bundle_dir) == before


def test_a_second_bundle_writer_waits_for_the_first(ansible, bundle_dir):
    with held(bundle_dir, release_after=4):
        started = time.monotonic()
        (result,) = ansible.run(write_manifest(bundle_dir, 120))
        waited = time.monotonic() - started
    assert result["changed"] and not result.get("failed"), result
    assert waited >= 4
    assert [e["path"] for e in json.loads((bundle_dir / "manifest.json").read_text())["archives"]] == ["images/a.tar"]


def test_a_fetch_into_a_bundle_another_run_writes_waits_or_fails_clearly(ansible, bundle_dir, tmp_path):
    source = tmp_path / "source.tar"
    source.write_bytes(b"x" * 4096)
    fetch = {"airgap.docker.fetch_archive": {"src": str(source), "bundle": str(bundle_dir), "path": "images/c.tar",
                                             "sha256": hashlib.sha256(source.read_bytes()).hexdigest(), "size": 4096,
                                             "lock_timeout": 1}}
    with held(bundle_dir):
        (refused,) = ansible.run(fetch)
    assert refused.get("failed") and "Another run is using the bundle" in refused["msg"], refused
    assert not (bundle_dir / "images" / "c.tar").exists() and not partials(bundle_dir / "images", "c.tar")
    fetch["airgap.docker.fetch_archive"]["lock_timeout"] = 120
    with held(bundle_dir, release_after=3):
        (copied,) = ansible.run(fetch)
    assert copied["changed"] and not copied.get("failed"), copied
    assert (bundle_dir / "images" / "c.tar").read_bytes() == source.read_bytes()
    assert oct(os.stat(bundle_dir / "images" / "c.tar").st_mode & 0o777) == "0o600"


def test_a_killed_fetch_is_cleaned_up_by_the_next_one(ansible, bundle_dir, tmp_path):
    source = tmp_path / "source.tar"
    source.write_bytes(b"y" * 4096)
    leftover = bundle_dir / "images" / ".c.tar.k1lled0x.partial"  # what a fetch killed half-way leaves
    leftover.write_bytes(b"y" * 1000)
    (copied,) = ansible.run({"airgap.docker.fetch_archive": {
        "src": str(source), "bundle": str(bundle_dir), "path": "images/c.tar",
        "sha256": hashlib.sha256(source.read_bytes()).hexdigest(), "size": 4096}})
    assert copied["changed"] and not copied.get("failed"), copied
    assert not leftover.exists() and partials(bundle_dir / "images", "c.tar") == []


# The relay's default cache: one per source ----------------------------------------------------------


def default_relay_dirs(ansible, tmp_path, variants):
    """The relay cache directory the role's variables give for each variant of the source's inventory
    entry (its host variables), read with the role's own defaults and vars files."""
    role = ansible.collections_path / "ansible_collections" / "airgap" / "docker" / "roles" / "migrate"
    found = []
    for index, source_vars in enumerate(variants):
        inventory = tmp_path / ("inventory-%d.yml" % index)
        inventory.write_text(yaml.safe_dump({"all": {"hosts": {
            "build": dict(source_vars), "dest": {"ansible_connection": "local"}}}}))
        out = tmp_path / ("dir-%d.txt" % index)
        play = [{"hosts": "dest", "gather_facts": False,
                 "tasks": [{"ansible.builtin.include_vars": str(role / "defaults" / "main.yml")},
                           {"ansible.builtin.include_vars": str(role / "vars" / "main.yml")},
                           {"ansible.builtin.copy": {"content": "{{ __migrate_bundle }}", "dest": str(out), "mode": "0600"}}]}]
        playbook = tmp_path / ("play-%d.yml" % index)
        playbook.write_text(yaml.safe_dump(play, sort_keys=False))
        # Extra variables: above the role's defaults, which include_vars reads.
        extra = json.dumps({"__migrate_mode": "relay", "migrate_source": "build", "migrate_images": ["app:1"]})
        proc = subprocess.run([str(ansible.bindir / "ansible-playbook"), "-i", str(inventory), "-e", extra, str(playbook)],
                              env=ansible.env(), capture_output=True, text=True, check=False)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        found.append(out.read_text())
    return found


def test_the_default_relay_cache_belongs_to_one_source(ansible, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    base = {"ansible_host": "10.0.0.5", "ansible_port": 22}
    variants = [base, dict(base), dict(base, ansible_host="10.9.9.9"), dict(base, ansible_port=2222),
                dict(base, migrate_docker_host="tcp://10.0.0.5:2376"), {}]
    dirs = default_relay_dirs(ansible, tmp_path, variants)
    for directory in dirs:
        assert re.fullmatch(re.escape(str(tmp_path / "xdg" / "airgap.docker" / "relay")) + r"/build-[0-9a-f]{16}", directory), dirs
    assert dirs[0] == dirs[1], "the same source always gets the same directory"
    assert len(set(dirs[1:])) == len(dirs) - 1, "another address, port or engine is another source"


def test_two_sources_of_one_name_do_not_share_a_relay_cache(scenario, hosts, fleet, tmp_path, monkeypatch):
    """The case of the issue: one inventory's relay made another's re-run report changed."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    mine = scenario.image("mine")
    theirs = "%s:theirs" % scenario.repo
    hosts["tgt-classic"].build(theirs, marker="theirs")
    role_vars = {"migrate_source": "src", "migrate_images": [mine]}
    assert_ok(scenario.play("main", "tgt-classic,tgt-modern", role_vars), "tgt-classic", "tgt-modern")
    # Another inventory, whose host `src` is another machine: here the one tgt-classic runs on.
    other = scenario.play("main", "tgt-modern", dict(role_vars, migrate_images=[theirs]), inventory_hosts=["src", "tgt-modern"],
                          host_vars={"src": {"ansible_host": fleet.address("tgt-classic")}})
    assert_ok(other, "tgt-modern")
    assert hosts["tgt-modern"].inspect(theirs) is not None
    again = scenario.play("main", "tgt-classic,tgt-modern", role_vars)
    assert_ok(again, "tgt-classic", "tgt-modern")
    assert not again.changed("tgt-classic") and not again.changed("tgt-modern"), again.output[-5000:]
    relay = tmp_path / "xdg" / "airgap.docker" / "relay"
    caches = sorted(p.name for p in relay.iterdir())
    assert len(caches) == 2 and all(re.fullmatch(r"src-[0-9a-f]{16}", name) for name in caches), caches
    for name in caches:
        assert oct(os.stat(relay / name).st_mode & 0o777) == "0o700"
