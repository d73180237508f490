"""container_archive on both engines: export idempotency, pause, import that keeps the container
runnable, deterministic image identity across engines, and bad inputs."""

from __future__ import annotations

import json
import subprocess
import uuid

import pytest
from ansible_runner_helper import changed

MODULE = "airgap.docker.container_archive"
CMD = ["/bin/sh", "-c", "echo $GREETING; pwd; cat /marker.txt; cat /added.txt 2>/dev/null || true"]


def export_task(engine, container, path, check=False, **extra):
    args = {"container": container, "path": str(path), "docker_host": engine.host}
    args.update(extra)
    return {MODULE: args, "check_mode": check, "diff": True}


def import_task(engine, path, image, check=False, **extra):
    args = {"state": "imported", "path": str(path), "image": image, "docker_host": engine.host}
    args.update(extra)
    return {MODULE: args, "check_mode": check, "diff": True}


def four(make):
    return [make(check) for check in (True, False, True, False)]


@pytest.fixture
def container(engine, unique):
    """A stopped container of an image with ENV, WORKDIR and CMD: it ran once, then got a file."""
    engine.build(unique + ":src", extra_lines=["ENV GREETING=hello-from-env", "WORKDIR /srv", "CMD %s" % json.dumps(CMD)])
    name = "c" + uuid.uuid4().hex[:10]
    container_id = engine.create_container(unique + ":src", name)
    engine.run_once(container_id)
    engine.put_file(container_id, "/added.txt", b"first\n")
    yield name
    engine.remove_container(container_id)


@pytest.fixture
def running(engine, unique):
    """A running container (its command sleeps)."""
    engine.build(unique + ":src", extra_lines=["ENV GREETING=hello-from-env", "WORKDIR /srv", "CMD %s" % json.dumps(CMD)])
    name = "r" + uuid.uuid4().hex[:10]
    container_id = engine.create_container(unique + ":src", name, command=["/bin/sleep", "3600"])
    engine.start(container_id)
    yield name
    engine.remove_container(container_id)


def test_export_stopped_container_is_idempotent(ansible, engine, container, workdir):
    path = workdir / "fs.tar.zst"
    results = ansible.run(*four(lambda c: export_task(engine, container, path, check=c)))
    assert changed(results) == [True, True, False, False]
    assert results[1]["container"]["name"] == container
    assert results[3]["stats"]["bytes_from_engine"] == 0, "a stopped, unchanged container must not be exported again"
    meta = json.loads((workdir / "fs.tar.zst.airgap.json").read_text())
    assert meta["layer"]["sha256"] == results[1]["archive"]["layer_sha256"]
    assert meta["config"]["Env"][-1] == "GREETING=hello-from-env" and meta["config"]["WorkingDir"] == "/srv"
    assert meta["container"]["id"] == engine.client.inspect_container(container)["Id"]


def test_container_that_ran_again_is_exported_again(ansible, engine, container, workdir):
    path = workdir / "fs.tar"
    first = ansible.run(export_task(engine, container, path))[0]
    engine.run_once(container)  # ran, but changed nothing
    same = ansible.run(export_task(engine, container, path, check=True), export_task(engine, container, path),
                       export_task(engine, container, path))
    assert changed(same) == [False, False, False]
    assert same[1]["stats"]["bytes_from_engine"] > 0 and same[2]["stats"]["bytes_from_engine"] == 0
    engine.run_once(container)
    engine.put_file(container, "/added.txt", b"second\n")
    results = ansible.run(export_task(engine, container, path, check=True), export_task(engine, container, path),
                          export_task(engine, container, path))
    assert changed(results) == [True, True, False]
    assert results[1]["archive"]["layer_sha256"] != first["archive"]["layer_sha256"]


def test_export_running_container_with_pause(ansible, engine, running, workdir):
    path = workdir / "live.tar.zst"  # zstd: check mode hashes through the compressor without writing
    results = ansible.run(export_task(engine, running, path, pause=True), export_task(engine, running, path, pause=True, check=True),
                          export_task(engine, running, path, pause=True))
    assert changed(results) == [True, False, False]
    state = engine.container_state(running)
    assert state["Running"] and not state["Paused"], state
    engine.exec(running, ["/bin/sh", "-c", "echo live > /added.txt"])
    results = ansible.run(export_task(engine, running, path, pause=True, check=True), export_task(engine, running, path, pause=True))
    assert changed(results) == [True, True]
    state = engine.container_state(running)
    assert state["Running"] and not state["Paused"], state


@pytest.fixture
def tiny_mount(tmp_path):
    mount_point = tmp_path / "tiny"
    mount_point.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount_point)], check=True)
    yield mount_point
    subprocess.run(["umount", str(mount_point)], check=False)


def test_failed_export_still_unpauses(ansible, engine, running, tiny_mount):
    # The export fails while the container is paused (the archive cannot fit).
    path = tiny_mount / "live.tar"
    result = ansible.run(export_task(engine, running, path, pause=True))[0]
    assert_clean_failure(result, "free space")
    state = engine.container_state(running)
    assert state["Running"] and not state["Paused"], state
    assert list(tiny_mount.iterdir()) == []


def test_import_keeps_the_container_runnable_and_is_idempotent(ansible, engine, container, unique, workdir):
    path = workdir / "fs.tar.zst"
    ansible.run(export_task(engine, container, path))
    image = unique + ":imported"
    results = ansible.run(*four(lambda c: import_task(engine, path, image, check=c)))
    assert changed(results) == [True, True, False, False]
    assert results[3]["stats"]["bytes_to_engine"] == 0 and results[3]["stats"]["archive_bytes_read"] == 0
    assert results[1]["image"]["id"] == engine.inspect(image)["Id"]
    output = engine.run_image(image, "run" + uuid.uuid4().hex[:8])
    assert output.split() == ["hello-from-env", "/srv", unique + ":src", "first"]
    config = engine.inspect(image)["Config"]
    assert config["Cmd"] == CMD and config["WorkingDir"] == "/srv"


def test_import_is_deterministic_across_engines(ansible, engine, other_engine, container, unique, workdir):
    path = workdir / "fs.tar"
    ansible.run(export_task(engine, container, path))
    image = unique + ":same"
    here, there = ansible.run(import_task(engine, path, image), import_task(other_engine, path, image))
    assert here["changed"] and there["changed"], (here, there)
    assert here["image"]["config_digest"] == there["image"]["config_digest"]
    assert here["image"]["manifest_digest"] == there["image"]["manifest_digest"]
    by_engine = {engine.name: (here, engine), other_engine.name: (there, other_engine)}
    assert by_engine["classic"][1].inspect(image)["Id"] == by_engine["classic"][0]["image"]["config_digest"]
    assert by_engine["modern"][1].inspect(image)["Id"] == by_engine["modern"][0]["image"]["manifest_digest"]
    # Removing and importing again gives the very same image.
    other_engine.remove(image)
    again = ansible.run(import_task(other_engine, path, image))[0]
    assert again["changed"] and again["image"]["id"] == there["image"]["id"]


def test_changes_apply_after_the_restored_config(ansible, engine, container, unique, workdir):
    path = workdir / "fs.tar"
    ansible.run(export_task(engine, container, path))
    image = unique + ":changed"
    changes = ["ENV GREETING=changed", "WORKDIR sub", 'LABEL team="air gap"', "EXPOSE 8080"]
    results = ansible.run(import_task(engine, path, image, changes=changes), import_task(engine, path, image, changes=changes),
                          import_task(engine, path, image))
    assert changed(results) == [True, False, True], "a different configuration is a different image"
    first = results[0]["image"]
    assert first["config"]["WorkingDir"] == "/srv/sub" and "GREETING=changed" in first["config"]["Env"]
    assert engine.inspect(image)["Id"] == results[2]["image"]["id"] != first["id"]


def test_plain_docker_export_archive_is_accepted(ansible, engine, container, unique, workdir):
    path = workdir / "plain.tar"
    engine.cli("export", "-o", str(path), container)
    image = unique + ":plain"
    changes = ['CMD ["/bin/cat", "/added.txt"]']
    results = ansible.run(*four(lambda c: import_task(engine, path, image, changes=changes, check=c)))
    assert changed(results) == [True, True, False, False]
    assert engine.run_image(image, "plain" + uuid.uuid4().hex[:8]).strip() == "first"
    assert engine.inspect(image)["Config"].get("Env") in (None, [])


def test_absent(ansible, engine, container, workdir):
    path = workdir / "gone.tar"
    ansible.run(export_task(engine, container, path))
    absent = {MODULE: {"path": str(path), "state": "absent"}}
    results = ansible.run(dict(absent, check_mode=True), absent, absent)
    assert changed(results) == [True, True, False]
    assert list(workdir.iterdir()) == []


def assert_clean_failure(result, *fragments):
    assert result.get("failed"), result
    assert "Traceback" not in result["msg"] and "\n" not in result["msg"].strip(), result["msg"]
    for fragment in fragments:
        assert fragment in result["msg"], result["msg"]


def test_missing_container(ansible, engine, workdir):
    result = ansible.run(export_task(engine, "no-such-container", workdir / "x.tar"))[0]
    assert_clean_failure(result, "No container no-such-container", engine.host)
    assert list(workdir.iterdir()) == []


@pytest.mark.parametrize("name", ["cut.tar", "cut.tar.zst"])
@pytest.mark.parametrize("with_sidecar", [True, False])
def test_truncated_archive(ansible, engine, container, unique, workdir, name, with_sidecar):
    path = workdir / name
    ansible.run(export_task(engine, container, path))
    if not with_sidecar:
        (workdir / (name + ".airgap.json")).unlink()
    with open(path, "r+b") as handle:
        handle.truncate(path.stat().st_size // 2)
    before = engine.image_ids()
    result = ansible.run(import_task(engine, path, unique + ":cut"))[0]
    assert_clean_failure(result, "truncated")
    assert engine.image_ids() == before


def test_flipped_byte_is_refused(ansible, engine, container, unique, workdir):
    path = workdir / "flip.tar"
    ansible.run(export_task(engine, container, path))
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    before = engine.image_ids()
    result = ansible.run(import_task(engine, path, unique + ":flip"))[0]
    assert_clean_failure(result, "nothing was imported")
    assert engine.image_ids() == before


@pytest.mark.parametrize("bad,fragment", [
    ("FROM busybox", "FROM is not an instruction"),
    ("EXPOSE http", "not a port"),
    ("HEALTHCHECK --interval=soon CMD true", "not a duration"),
    ("ENV", "needs an argument"),
])
def test_bad_changes(ansible, engine, container, unique, workdir, bad, fragment):
    path = workdir / "fs.tar"
    ansible.run(export_task(engine, container, path))
    before = engine.image_ids()
    result = ansible.run(import_task(engine, path, unique + ":bad", changes=["USER nobody", bad]))[0]
    assert_clean_failure(result, "changes[1]", fragment)
    assert engine.image_ids() == before


@pytest.mark.parametrize("content", [None, b"", b"not a tar at all" * 64])
def test_missing_or_corrupt_archive(ansible, engine, unique, workdir, content):
    path = workdir / "bad.tar"
    if content is not None:
        path.write_bytes(content)
    before = engine.image_ids()
    result = ansible.run(import_task(engine, path, unique + ":bad"))[0]
    expected = {None: "does not exist", b"": "empty"}.get(content, "not a tar archive")
    assert_clean_failure(result, str(path), expected)
    assert engine.image_ids() == before
