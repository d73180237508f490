"""state=loaded on both engines and across them: idempotency, identity, re-tagging."""

from __future__ import annotations

import pytest
from ansible_calls import changed

MODULE = "airgap.docker.image_archive"


def load_task(engine, path, check=False, **extra):
    args = {"path": str(path), "state": "loaded", "docker_host": engine.host}
    args.update(extra)
    return {MODULE: args, "check_mode": check, "diff": True}


def save(ansible, engine, path, images):
    result = ansible.run({MODULE: {"path": str(path), "images": images, "docker_host": engine.host}})[0]
    assert result["changed"] and not result.get("failed"), result
    return result


def same_content(a, b):
    """Layers, creation time and runtime config: what `really the same image` means."""
    keys = ("Cmd", "Env", "WorkingDir", "Entrypoint")
    return (a["RootFS"]["Layers"] == b["RootFS"]["Layers"] and a["Created"] == b["Created"]
            and all((a["Config"] or {}).get(k) == (b["Config"] or {}).get(k) for k in keys))


# Every engine loads in both directions. The compression is undone by the module, which sends the
# engine the same plain tar whatever it is (archive_stream.stream_into_engine): each compression is
# loaded once per direction, on another engine each time, rather than on every engine.
LOAD_CASES = [("classic", "same", ".tar"), ("modern", "same", ".tar.gz"), ("containerd2", "same", ".tar.zst"),
              ("classic", "cross", ".tar.zst"), ("modern", "cross", ".tar"), ("containerd2", "cross", ".tar.gz")]


@pytest.mark.parametrize("engine_name, direction, suffix", LOAD_CASES)
def test_load_is_idempotent(ansible, factories, unique, workdir, engine_name, direction, suffix):
    if engine_name not in factories:
        pytest.skip("the %s engine is not tested in this run (AIRGAP_TEST_ENGINES)" % engine_name)
    source = factories[engine_name]
    # The cross target is conftest's other_engine of the source.
    target = source if direction == "same" else next(f for name, f in factories.items() if name != engine_name)
    source.build(unique + ":1", extra_lines=["ENV GREETING=hello", "WORKDIR /srv"])
    path = workdir / ("img" + suffix)
    save(ansible, source, path, [unique + ":1"])
    source_view = source.inspect(unique + ":1")
    if direction == "same":
        source.remove(unique + ":1")
    assert target.inspect(unique + ":1") is None
    results = ansible.run(*[load_task(target, path, check=c) for c in (True, False, True, False)])
    lost = [r["msg"] for r in results if r.get("failed") and "content digest" in r["msg"] and "not found" in r["msg"]]
    if lost and target.name == "modern":
        # Docker 26's containerd store can drop a layer blob shared with images removed just before,
        # while a load is using it (its garbage collector races the load); that engine bug, only.
        pytest.xfail("Docker 26 lost a shared layer blob during the load: %s" % lost[0])
    assert changed(results) == [True, True, False, False]
    assert results[0]["actions"] == ["loaded"]
    loaded = target.inspect(unique + ":1")
    assert same_content(loaded, source_view)
    assert results[1]["stats"]["bytes_to_engine"] > 0
    assert results[3]["stats"]["bytes_to_engine"] == 0
    assert results[3]["stats"]["archive_bytes_read"] == 0, "a warm load must not read the archive"
    assert results[1]["diff"]["before"]["tags"] == {unique + ":1": None}
    assert results[3]["images"][0]["id"] == loaded["Id"]


def test_legacy_archive_into_containerd_store(ansible, factories, unique, workdir):
    classic, modern = factories["classic"], factories["modern"]
    classic.build(unique + ":1")
    path = workdir / "legacy.tar"
    result = save(ansible, classic, path, [unique + ":1"])
    assert result["archive"]["layout"] == "legacy"
    results = ansible.run(*[load_task(modern, path, check=c) for c in (True, False, True, False)])
    assert changed(results) == [True, True, False, False]
    loaded = modern.inspect(unique + ":1")
    # The containerd store synthesizes a manifest: another ID, the same image.
    assert loaded["Id"] != classic.inspect(unique + ":1")["Id"]
    assert same_content(loaded, classic.inspect(unique + ":1"))
    assert results[3]["images"][0]["fingerprint"] == results[1]["images"][0]["fingerprint"]


def test_oci_archive_into_classic_store(ansible, factories, unique, workdir):
    classic, modern = factories["classic"], factories["modern"]
    modern.build(unique + ":1")
    path = workdir / "oci.tar.zst"
    result = save(ansible, modern, path, [unique + ":1"])
    assert result["archive"]["layout"] == "oci"
    results = ansible.run(*[load_task(classic, path, check=c) for c in (True, False, True, False)])
    assert changed(results) == [True, True, False, False]
    assert classic.inspect(unique + ":1")["Id"] == results[1]["images"][0]["config_digest"]


def test_tag_pointing_elsewhere_is_repointed_without_streaming(ansible, engine, unique, workdir):
    image_id = engine.build(unique + ":1")
    other_id = engine.build(unique + ":other", marker="other")
    path = workdir / "retag.tar"
    save(ansible, engine, path, [unique + ":1"])
    engine.tag(other_id, unique + ":1")
    results = ansible.run(*[load_task(engine, path, check=c) for c in (True, False, True, False)])
    assert changed(results) == [True, True, False, False]
    assert results[1]["actions"] == ["retagged"]
    assert results[1]["stats"]["bytes_to_engine"] == 0
    assert results[1]["diff"]["before"]["tags"][unique + ":1"] == other_id
    assert engine.inspect(unique + ":1")["Id"] == image_id


def test_multi_image_archive_loads_every_tag(ansible, engine, other_engine, unique, workdir):
    image_id = engine.build(unique + ":a")
    engine.tag(image_id, unique + ":b")
    engine.build(unique + ":c", marker="c")
    path = workdir / "multi.tar.zst"
    save(ansible, engine, path, [unique + ":a", unique + ":b", unique + ":c"])
    results = ansible.run(*[load_task(other_engine, path, check=c) for c in (True, False, True, False)])
    assert changed(results) == [True, True, False, False]
    a, b = other_engine.inspect(unique + ":a"), other_engine.inspect(unique + ":b")
    assert a["Id"] == b["Id"] and other_engine.inspect(unique + ":c") is not None


def test_images_option_checks_the_archive_first(ansible, engine, other_engine, unique, workdir):
    engine.build(unique + ":1")
    path = workdir / "check.tar"
    save(ansible, engine, path, [unique + ":1"])
    before = other_engine.image_ids()
    result = ansible.run(load_task(other_engine, path, images=[unique + ":2"]))[0]
    assert result["failed"] and "Not in the archive: %s:2" % unique in result["msg"]
    assert other_engine.image_ids() == before
    ok = ansible.run(load_task(other_engine, path, images=[unique]))  # :latest is not in it either
    assert ok[0]["failed"]
    ok = ansible.run(load_task(other_engine, path, images=[unique + ":1"]))
    assert ok[0]["changed"] and not ok[0].get("failed")
