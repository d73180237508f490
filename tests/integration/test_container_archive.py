"""container_archive on both engines: export idempotency, pause, import that keeps the container
runnable, deterministic image identity across engines, the snapshot record inside the archive
(a sidecar never decides what reaches the engine), and bad inputs."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import uuid
from pathlib import Path

import docker
import pytest
from ansible_calls import assert_clean_failure, changed, sha256_of
from image_factory import test_repository as repository_name

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


class EngineSnapshot:
    """What a test's import must not change. Other tests add and remove images on the same engines
    at the same time, so only this test's tags and images holding its layers are compared."""

    def __init__(self, engine, unique, layers=()):
        self.engine, self.unique, self.layers = engine, unique, set(layers)
        self.ids, self.tags = self._state()

    def _state(self):
        for attempt in range(3):
            try:
                images = self.engine.client.images(all=True)
                break
            except docker.errors.NotFound:
                # The containerd store fails a listing while another test removes an image.
                if attempt == 2:
                    raise
        tags = {tag: image["Id"] for image in images for tag in image.get("RepoTags") or [] if tag.startswith(self.unique + ":")}
        return {image["Id"] for image in images}, tags

    def assert_unchanged(self):
        ids, tags = self._state()
        assert tags == self.tags, "a tag of this test moved or appeared: %s -> %s" % (self.tags, tags)
        for image_id in ids - self.ids:
            layers = set(((self.engine.inspect(image_id) or {}).get("RootFS") or {}).get("Layers") or [])
            assert not layers & self.layers, "an image holding this test's layer appeared: %s" % image_id


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


@pytest.fixture(scope="module")
def exported_once(factories, tmp_path_factory):
    """The archives that exported_archive copies: a container like `container`'s on one engine,
    exported through the module once per compression; its image and container go afterwards."""
    store = {"dir": tmp_path_factory.mktemp("exported-once"), "repo": repository_name("x"), "container": None, "layers": {}}
    yield store
    engine = store.get("engine")
    if engine is not None:
        engine.remove_container(store["container"])
        engine.remove(store["repo"] + ":src")


def exported_archive(ansible, one_engine, exported_once, workdir, name):
    """(path, layer digest): a copy at workdir/name, with its sidecar, of an export of a stopped
    container on one_engine, compressed as name's suffix says. A test damages its own copy."""
    store = exported_once
    if store["container"] is None:
        image = store["repo"] + ":src"
        one_engine.build(image, extra_lines=["ENV GREETING=hello-from-env", "WORKDIR /srv", "CMD %s" % json.dumps(CMD)])
        store["engine"], store["container"] = one_engine, one_engine.create_container(image, "x" + uuid.uuid4().hex[:10])
        one_engine.run_once(store["container"])
        one_engine.put_file(store["container"], "/added.txt", b"first\n")
    suffix = "".join(Path(name).suffixes)
    source = store["dir"] / ("fs" + suffix)
    if suffix not in store["layers"]:
        result = ansible.run(export_task(one_engine, store["container"], source))[0]
        assert result["changed"] and not result.get("failed"), result
        store["layers"][suffix] = result["archive"]["layer_sha256"]
    path = workdir / name
    shutil.copyfile(source, path)
    shutil.copyfile(str(source) + ".airgap.json", str(path) + ".airgap.json")
    return path, store["layers"][suffix]


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
    # The classic store names an image by its config digest, the containerd store by its manifest digest.
    for result, factory in ((here, engine), (there, other_engine)):
        expected = result["image"]["config_digest" if factory.name == "classic" else "manifest_digest"]
        assert factory.inspect(image)["Id"] == expected, factory.name
    # Removing and importing again gives the very same image.
    other_engine.remove(image)
    again = ansible.run(import_task(other_engine, path, image))[0]
    assert again["changed"] and again["image"]["id"] == there["image"]["id"]


@pytest.mark.per_store
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


# The snapshot record travels inside the archive; the sidecar is only a claim -------------------


def sidecar_of(path):
    return path.parent / (path.name + ".airgap.json")


def edit_sidecar(path, edit):
    """Change the sidecar only (as someone with write access to the directory could), keeping its
    archive byte for byte."""
    side = sidecar_of(path)
    meta = json.loads(side.read_text())
    edit(meta)
    side.write_text(json.dumps(meta))


def fresh_memo(tmp_path):
    """Settings for a run on which this host knows nothing of the archive (another user, a new cache)."""
    directory = tmp_path / ("cache-" + uuid.uuid4().hex[:8])
    directory.mkdir(mode=0o700)
    return {"AIRGAP_DOCKER_CACHE": str(directory)}


def test_the_record_is_invisible_to_tar_and_docker_import(ansible, engine, container, unique, workdir):
    path = workdir / "fs.tar"
    exported = ansible.run(export_task(engine, container, path))[0]
    listed = subprocess.run(["tar", "-tf", str(path)], check=True, capture_output=True, text=True)
    names = listed.stdout.split()
    assert "added.txt" in names and not any("airgap-snapshot" in name for name in names)
    assert listed.stderr == ""
    # What docker import sees: the plain export (the record after its end is never read).
    image = unique + ":cli"
    engine.cli("import", str(path), image)
    root = engine.run_image(image, "cli" + uuid.uuid4().hex[:8], command=["/bin/ls", "-a", "/"]).split()
    assert "added.txt" in root and not any("airgap" in name for name in root)
    # The layer (the image's diff ID) is every byte before the record's header.
    data = path.read_bytes()
    header = data.rindex(b".airgap-snapshot.json")
    assert header % 512 == 0 and data[header - 1024:header] == bytes(1024)
    assert "sha256:" + hashlib.sha256(data[:header]).hexdigest() == exported["archive"]["layer_sha256"]
    record = json.loads(data[header + 512:].rstrip(b"\0"))
    assert record["config"]["Cmd"] == CMD and record["container"]["name"] == container


@pytest.mark.per_store
@pytest.mark.parametrize("memo", ["remembered", "forgotten"])
def test_a_sidecar_cannot_set_entrypoint_or_user(ansible, engine, container, unique, workdir, tmp_path, memo):
    path = workdir / "fs.tar.zst"
    layer = ansible.run(export_task(engine, container, path))[0]["archive"]["layer_sha256"]
    checksum = sha256_of(path)

    def evil(meta):
        meta["config"]["Entrypoint"] = ["/bin/echo", "owned"]
        meta["config"]["User"] = "nobody"

    edit_sidecar(path, evil)
    assert sha256_of(path) == checksum
    image = unique + ":edited"
    env = fresh_memo(tmp_path) if memo == "forgotten" else None
    before = EngineSnapshot(engine, unique, [layer])
    results = ansible.run(import_task(engine, path, image, check=True, checksum=checksum),
                          import_task(engine, path, image, checksum=checksum), extra_env=env)
    if memo == "forgotten":
        # Nothing this host verified: the archive is read, and contradicts the sidecar.
        for result in results:
            assert_clean_failure(result, "does not describe the archive", "another configuration", "nothing was imported")
        before.assert_unchanged()
        return
    # This host wrote the archive: the sidecar is not even consulted.
    assert changed(results) == [True, True]
    config = engine.inspect(image)["Config"]
    assert not config.get("Entrypoint") and not config.get("User"), config
    assert config["Cmd"] == CMD
    again = ansible.run(import_task(engine, path, image, checksum=checksum))[0]
    assert not again["changed"] and again["stats"]["archive_bytes_read"] == 0


@pytest.mark.per_store
def test_a_sidecar_claiming_another_layer_imports_nothing(ansible, engine, container, unique, workdir, tmp_path):
    first, second = workdir / "first.tar", workdir / "second.tar"
    ansible.run(export_task(engine, container, first))
    engine.run_once(container)
    engine.put_file(container, "/added.txt", b"second\n")
    layer = ansible.run(export_task(engine, container, second))[0]["archive"]["layer_sha256"]
    image = unique + ":first"
    assert ansible.run(import_task(engine, first, image))[0]["changed"]
    claim = json.loads(sidecar_of(first).read_text())

    def borrowed(meta):
        # The second archive's sidecar, describing the first archive's content (an image the engine holds).
        for key in ("layer", "snapshot", "config", "created", "platform"):
            meta[key] = claim[key]

    edit_sidecar(second, borrowed)
    env = fresh_memo(tmp_path)
    target = unique + ":second"
    before = EngineSnapshot(engine, unique, [layer])
    results = ansible.run(import_task(engine, second, target, check=True), import_task(engine, second, target),
                          import_task(engine, second, image), extra_env=env)
    for result in results:
        assert_clean_failure(result, "does not describe the archive", "its layer is", "nothing was imported")
    before.assert_unchanged()
    # The same with a layer digest no image has: the import streams, and stops before the end.
    edit_sidecar(second, lambda meta: meta["layer"].update(sha256="sha256:" + "0" * 64))
    result = ansible.run(import_task(engine, second, target), extra_env=env)[0]
    assert_clean_failure(result, "does not describe the archive", "nothing was imported")
    before.assert_unchanged()
    # Where this host remembers what it wrote, the sidecar is ignored, and a re-run costs nothing.
    results = ansible.run(import_task(engine, second, target), import_task(engine, second, target))
    assert changed(results) == [True, False]
    assert results[1]["stats"]["archive_bytes_read"] == 0
    assert engine.run_image(target, "second" + uuid.uuid4().hex[:8]).split()[-1] == "second"


@pytest.mark.per_store
def test_an_archive_this_host_does_not_know_is_read_once_then_remembered(ansible, engine, container, unique, workdir, tmp_path):
    path = workdir / "fs.tar.gz"
    ansible.run(export_task(engine, container, path))
    env = fresh_memo(tmp_path)
    image = unique + ":cold"
    results = ansible.run(*four(lambda c: import_task(engine, path, image, check=c)), extra_env=env)
    assert changed(results) == [True, True, False, False]
    read = [r["stats"]["archive_bytes_read"] for r in results]
    assert read[0] == path.stat().st_size, "check mode decides on the archive itself, read once"
    assert read[1] == path.stat().st_size and read[2:] == [0, 0]
    # Export side: a stopped container whose archive this host does not know is exported and
    # compared, the archive read to confirm its sidecar, and kept; after that, O(1) again.
    env = fresh_memo(tmp_path)
    results = ansible.run(export_task(engine, container, path, check=True), export_task(engine, container, path),
                          export_task(engine, container, path), extra_env=env)
    assert changed(results) == [False, False, False]
    assert results[1]["stats"]["bytes_from_engine"] > 0 and results[1]["stats"]["archive_bytes_read"] > 0
    assert results[2]["stats"]["bytes_from_engine"] == 0 and results[2]["stats"]["archive_bytes_read"] == 0


@pytest.mark.per_store
def test_export_does_not_trust_an_edited_sidecar(ansible, engine, container, workdir, tmp_path):
    path = workdir / "fs.tar"
    first = ansible.run(export_task(engine, container, path))[0]
    truth = json.loads(sidecar_of(path).read_text())
    edit_sidecar(path, lambda meta: meta["layer"].update(sha256="sha256:" + "0" * 64))
    # This host remembers what it wrote: the archive is current, and the sidecar is put back.
    result = ansible.run(export_task(engine, container, path))[0]
    assert not result["changed"] and result["stats"]["bytes_from_engine"] == 0
    assert result["sidecar"]["layer"] == truth["layer"] == json.loads(sidecar_of(path).read_text())["layer"]
    # A host that does not remember it exports again rather than believe the sidecar.
    edit_sidecar(path, lambda meta: meta["layer"].update(sha256="sha256:" + "0" * 64))
    results = ansible.run(export_task(engine, container, path, check=True), export_task(engine, container, path),
                          extra_env=fresh_memo(tmp_path))
    assert changed(results) == [True, True]
    assert results[1]["archive"]["layer_sha256"] == first["archive"]["layer_sha256"]
    assert json.loads(sidecar_of(path).read_text())["layer"] == truth["layer"]


# Refused, or done, before any engine is contacted (state=absent, the archive's own bytes, the
# changes option): on one engine, with copies of one export.


def test_absent(ansible, one_engine, exported_once, workdir):
    path, _layer = exported_archive(ansible, one_engine, exported_once, workdir, "gone.tar")
    absent = {MODULE: {"path": str(path), "state": "absent"}}
    results = ansible.run(dict(absent, check_mode=True), absent, absent)
    assert changed(results) == [True, True, False]
    assert list(workdir.iterdir()) == []


def test_missing_container(ansible, engine, workdir):
    result = ansible.run(export_task(engine, "no-such-container", workdir / "x.tar"))[0]
    assert_clean_failure(result, "No container no-such-container", engine.host)
    assert list(workdir.iterdir()) == []


@pytest.mark.parametrize("name", ["cut.tar", "cut.tar.zst"])
@pytest.mark.parametrize("with_sidecar", [True, False])
def test_truncated_archive(ansible, one_engine, exported_once, unique, workdir, name, with_sidecar):
    path, layer = exported_archive(ansible, one_engine, exported_once, workdir, name)
    if not with_sidecar:
        (workdir / (name + ".airgap.json")).unlink()
    with open(path, "r+b") as handle:
        handle.truncate(path.stat().st_size // 2)
    before = EngineSnapshot(one_engine, unique, [layer])
    result = ansible.run(import_task(one_engine, path, unique + ":cut"))[0]
    assert_clean_failure(result, "truncated")
    before.assert_unchanged()


@pytest.mark.per_store
def test_flipped_byte_is_refused(ansible, engine, container, unique, workdir):
    path = workdir / "flip.tar"
    layer = ansible.run(export_task(engine, container, path))[0]["archive"]["layer_sha256"]
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    before = EngineSnapshot(engine, unique, [layer])
    result = ansible.run(import_task(engine, path, unique + ":flip"))[0]
    assert_clean_failure(result)
    # The sidecar's layer digest no longer matches; or, when the byte fell in a header, the tar is corrupt.
    assert "nothing was imported" in result["msg"].lower(), result["msg"]
    before.assert_unchanged()


@pytest.mark.parametrize("bad,fragment", [
    ("FROM busybox", "FROM is not an instruction"),
    ("EXPOSE http", "not a port"),
    ("HEALTHCHECK --interval=soon CMD true", "not a duration"),
    ("ENV", "needs an argument"),
])
def test_bad_changes(ansible, one_engine, exported_once, unique, workdir, bad, fragment):
    path, layer = exported_archive(ansible, one_engine, exported_once, workdir, "fs.tar")
    before = EngineSnapshot(one_engine, unique, [layer])
    result = ansible.run(import_task(one_engine, path, unique + ":bad", changes=["USER nobody", bad]))[0]
    assert_clean_failure(result, "changes[1]", fragment)
    before.assert_unchanged()


@pytest.mark.parametrize("content", [None, b"", b"not a tar at all" * 64])
def test_missing_or_corrupt_archive(ansible, one_engine, unique, workdir, content):
    path = workdir / "bad.tar"
    if content is not None:
        path.write_bytes(content)
    before = EngineSnapshot(one_engine, unique)
    result = ansible.run(import_task(one_engine, path, unique + ":bad"))[0]
    expected = {None: "does not exist", b"": "empty"}.get(content, "not a tar archive")
    assert_clean_failure(result, str(path), expected)
    before.assert_unchanged()
