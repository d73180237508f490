"""state=saved on both engines: idempotency, tags, IDs, compression, existing docker save archives."""

from __future__ import annotations

import json
import tarfile

import pytest
import zstandard
from ansible_calls import changed

MODULE = "airgap.docker.image_archive"


def save_task(engine, path, images, check=False, **extra):
    args = {"path": str(path), "images": images, "docker_host": engine.host}
    args.update(extra)
    return {MODULE: args, "check_mode": check, "diff": True}


def four_steps(engine, path, images, **extra):
    return [save_task(engine, path, images, check=check, **extra) for check in (True, False, True, False)]


# The module compresses the plain tar the engine sends, whatever the compression (the engine never
# sees it): each engine saves, and each compression is written, once.
@pytest.mark.parametrize("engine_name, suffix, kind", [("classic", ".tar", "none"), ("modern", ".tar.gz", "gzip"),
                                                       ("containerd2", ".tar.zst", "zstd")])
def test_save_is_idempotent(ansible, factories, unique, workdir, engine_name, suffix, kind):
    if engine_name not in factories:
        pytest.skip("the %s engine is not tested in this run (AIRGAP_TEST_ENGINES)" % engine_name)
    engine = factories[engine_name]
    engine.build(unique + ":1")
    path = workdir / ("images" + suffix)
    first_check = ansible.run(save_task(engine, path, [unique + ":1"], check=True))
    assert first_check[0]["changed"] and not path.exists(), "check mode must not write"
    results = ansible.run(*four_steps(engine, path, [unique + ":1"]))
    assert changed(results) == [True, True, False, False]
    assert [r["actions"] for r in results] == [["saved"], ["saved"], ["skipped"], ["skipped"]]
    saved = results[1]
    assert saved["archive"]["compression"] == kind
    assert saved["archive"]["size"] == path.stat().st_size
    assert saved["images"][0]["tags"] == [unique + ":1"]
    assert saved["images"][0]["id"] == engine.inspect(unique + ":1")["Id"]
    assert saved["diff"]["after"]["images"] == {unique + ":1": saved["images"][0]["id"]}
    assert results[3]["stats"]["archive_bytes_read"] == 0, "an up-to-date check must not read the archive"
    assert results[3]["stats"]["bytes_from_engine"] == 0
    assert 0 <= saved["stats"]["engine_wait_seconds"] <= saved["stats"]["seconds"]
    assert "engine_wait_seconds" not in results[3]["stats"], "a kept archive asks the engine for nothing"
    meta = json.loads((workdir / (path.name + ".airgap.json")).read_text())
    assert meta["archive"]["sha256"] == saved["archive"]["sha256"]
    assert meta["engine"]["storage"] == ("classic" if engine.name == "classic" else "containerd")
    assert meta["images"][0]["diff_ids"] == engine.inspect(unique + ":1")["RootFS"]["Layers"]
    assert not list(workdir.glob(".*partial")), "no temporary file may stay behind"


def test_multi_tag_and_id_only_saves_are_idempotent(ansible, engine, unique, workdir):
    image_id = engine.build(unique + ":a")
    engine.tag(image_id, unique + ":b")
    other_id = engine.build(unique + ":other", marker="other")
    path = workdir / "multi.tar"
    request = [unique + ":a", unique + ":b", other_id[len("sha256:"):][:12]]
    results = ansible.run(*four_steps(engine, path, request))
    assert changed(results) == [True, True, False, False]
    by_id = {i["id"]: i["tags"] for i in results[1]["images"]}
    assert by_id == {image_id: sorted([unique + ":a", unique + ":b"]), other_id: []}
    with tarfile.open(path) as archive:
        manifest = json.load(archive.extractfile("manifest.json"))
    assert sorted(t for entry in manifest for t in entry.get("RepoTags") or []) == sorted([unique + ":a", unique + ":b"])


def test_default_tag_is_latest_and_names_are_normalised(ansible, engine, unique, workdir):
    engine.build(unique + ":latest")
    path = workdir / "latest.tar"
    results = ansible.run(save_task(engine, path, [unique]), save_task(engine, path, ["docker.io/" + unique + ":latest"]))
    assert changed(results) == [True, False]
    assert results[0]["images"][0]["tags"] == [unique + ":latest"]


@pytest.mark.per_store
def test_changed_image_compression_or_force_resaves(ansible, engine, unique, workdir):
    engine.build(unique + ":1")
    path = workdir / "img.tar"
    assert changed(ansible.run(save_task(engine, path, [unique + ":1"]))) == [True]
    engine.build(unique + ":1", marker="rebuilt")  # the tag now names another image
    results = ansible.run(save_task(engine, path, [unique + ":1"], check=True), save_task(engine, path, [unique + ":1"]),
                          save_task(engine, path, [unique + ":1"], compression="gzip"),
                          save_task(engine, path, [unique + ":1"], compression="gzip"),
                          save_task(engine, path, [unique + ":1"], compression="gzip", force=True))
    assert changed(results) == [True, True, True, False, True]
    assert "not the image in the archive" in results[0]["msg"]
    assert "compressed with none" in results[2]["msg"]
    assert results[4]["msg"].endswith("force is set")


@pytest.mark.per_store
def test_zstd_records_its_levels_and_a_given_level_gives_the_same_bytes(ansible, engine, unique, workdir):
    """Without compression_level the level adapts to the stream, and the archive records what
    each level compressed; with one, the archive is one frame at that level, the same each time."""
    engine.build(unique + ":1")
    adaptive, fixed, again = workdir / "a.tar.zst", workdir / "b.tar.zst", workdir / "c.tar.zst"
    results = ansible.run(save_task(engine, adaptive, [unique + ":1"]), save_task(engine, adaptive, [unique + ":1"]),
                          save_task(engine, fixed, [unique + ":1"], compression_level=7),
                          save_task(engine, again, [unique + ":1"], compression_level=7))
    assert changed(results) == [True, False, True, True]
    meta = json.loads((workdir / "a.tar.zst.airgap.json").read_text())["archive"]
    levels = results[0]["archive"]["compression_levels"]
    assert results[0]["archive"]["compression_adaptive"] is True and meta["compression_adaptive"] is True
    assert meta["compression_levels"] == levels and sum(levels.values()) == meta["tar_size"]
    assert set(levels) <= {"1", "2", "3", "4", "5", "6"}
    # Kept at O(1), the archive still says how it was compressed.
    assert results[1]["archive"]["compression_levels"] == levels and results[1]["stats"]["archive_bytes_read"] == 0
    tar_size = json.loads((workdir / "b.tar.zst.airgap.json").read_text())["archive"]["tar_size"]
    assert results[2]["archive"]["compression_levels"] == {"7": tar_size} and results[2]["archive"]["compression_adaptive"] is False
    assert results[2]["archive"]["sha256"] == results[3]["archive"]["sha256"] and fixed.read_bytes() == again.read_bytes()
    # Any zstd reader takes the whole stream, frames of several levels included.
    with open(adaptive, "rb") as handle, zstandard.ZstdDecompressor().stream_reader(handle, read_across_frames=True) as reader:
        assert sum(len(block) for block in iter(lambda: reader.read(1 << 20), b"")) == meta["tar_size"]


def test_archive_written_by_docker_save_is_recognised(ansible, engine, unique, workdir):
    engine.build(unique + ":1")
    path = workdir / "from-cli.tar"
    engine.cli("save", "-o", str(path), unique + ":1")
    before = path.read_bytes()
    results = ansible.run(save_task(engine, path, [unique + ":1"], check=True), save_task(engine, path, [unique + ":1"]))
    assert changed(results) == [False, False]
    assert path.read_bytes() == before
    assert results[1]["archive"]["layout"] == ("legacy" if engine.name == "classic" else "oci")


@pytest.mark.per_store
def test_file_attributes_are_applied_and_idempotent(ansible, engine, unique, workdir):
    engine.build(unique + ":1")
    path = workdir / "mode.tar"
    results = ansible.run(save_task(engine, path, [unique + ":1"], mode="0640"),
                          save_task(engine, path, [unique + ":1"], mode="0600", check=True),
                          save_task(engine, path, [unique + ":1"], mode="0600"),
                          save_task(engine, path, [unique + ":1"], mode="0600"))
    assert changed(results) == [True, True, True, False]
    assert results[2]["actions"] == ["attributes"]
    assert oct(path.stat().st_mode & 0o777) == "0o600"


def test_absent_removes_archive_and_sidecar(ansible, one_engine, unique, workdir):
    # state=absent never contacts an engine: one engine makes the archive.
    one_engine.build(unique + ":1")
    path = workdir / "gone.tar"
    ansible.run(save_task(one_engine, path, [unique + ":1"]))
    absent = {MODULE: {"path": str(path), "state": "absent"}}
    results = ansible.run(dict(absent, check_mode=True), absent, dict(absent, check_mode=True), absent)
    assert changed(results) == [True, True, False, False]
    assert not path.exists() and not (workdir / "gone.tar.airgap.json").exists()
