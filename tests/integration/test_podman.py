"""Podman hosts: the modules through Podman's Docker-compatible API, Docker <-> Podman both ways.

Podman stores names fully qualified (`localhost/app:1`, `docker.io/library/app:1`); the modules
show and write them as Docker does (`app:1`), so that an image named `app:1` on one side arrives as
`app:1` on the other, and a re-run on either side changes nothing.

The module tests run in the module session, on the harness's two Podman engines (rootful, and
rootless as the user airgap-podman) and on the session's Docker 20.10 (classic) and 26 (modern)
engines. The role's test runs in the fleet session, with a Podman engine of its own (fleet-podman)
as a fleet host's engine: the two sessions share no engine.
"""

from __future__ import annotations

import json
import os
import tarfile
import uuid

import docker
import pytest
from ansible_calls import assert_clean_failure, changed
from image_factory import ImageFactory, abandoned_test_tag
from image_factory import test_repository as repository_name
from migrate_scenario import assert_ok, pack

ENGINE_ROOT = os.environ.get("AIRGAP_ENGINES_ROOT", "/var/tmp/airgap-engines")
IMAGES = "airgap.docker.image_archive"
CONTAINERS = "airgap.docker.container_archive"
SOCKETS = {
    "podman": "unix://%s/run/podman.sock" % ENGINE_ROOT,
    "podman-rootless": "unix://%s/run/podman-rootless.sock" % ENGINE_ROOT,
    "docker-20.10": os.environ.get("AIRGAP_CLASSIC_HOST", "unix://%s/run/classic.sock" % ENGINE_ROOT),
    "docker-26": os.environ.get("AIRGAP_MODERN_HOST", "unix://%s/run/modern.sock" % ENGINE_ROOT),
}
FLEET_PODMAN = "unix://%s/run/fleet-podman.sock" % ENGINE_ROOT
DOCKERS = ("docker-20.10", "docker-26")


def familiar(tag):
    """A stored name as Docker prints it (the test's own reading, independent of the collection's)."""
    for prefix in ("localhost/", "docker.io/library/", "docker.io/"):
        if tag.startswith(prefix):
            return tag[len(prefix):]
    return tag


def all_tags(factory):
    return [t for image in factory.client.images() for t in image.get("RepoTags") or [] if t != "<none>:<none>"]


def factory(name, address, tmp_path_factory):
    client = docker.APIClient(base_url=address, version="auto", timeout=300)
    try:
        client.version()
    except Exception as exc:  # pragma: no cover - harness problem
        pytest.fail("The %s engine at %s is not running (%s); run tests/harness/bootstrap.sh." % (name, address, exc))
    made = ImageFactory(name, address, client, tmp_path_factory.mktemp("ctx-" + name))
    if "podman" in name:
        made.remove(*[t for t in all_tags(made) if abandoned_test_tag(familiar(t))])
    return made


@pytest.fixture(scope="module")
def engines(tmp_path_factory):
    return {name: factory(name, address, tmp_path_factory) for name, address in SOCKETS.items()}


@pytest.fixture
def podman(engines):
    return engines["podman"]


@pytest.fixture
def name(engines):
    """A fresh repository; its tags go from every engine afterwards (on Podman under each stored name)."""
    repo = repository_name("p")
    yield repo
    for factory in engines.values():
        factory.remove(*[t for t in all_tags(factory) if familiar(t).startswith((repo + ":", repo + "-"))])


def save(engine, path, images, check=False, **extra):
    return {IMAGES: dict({"path": str(path), "images": images, "docker_host": engine.host}, **extra), "check_mode": check, "diff": True}


def load(engine, path, check=False, **extra):
    return {IMAGES: dict({"path": str(path), "state": "loaded", "docker_host": engine.host}, **extra), "check_mode": check, "diff": True}


def four(make):
    return [make(check) for check in (True, False, True, False)]


def archive_names(path):
    """RepoTags of each image in an uncompressed image archive, and the repositories file's names."""
    with tarfile.open(path) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))
        try:
            repositories = json.load(tar.extractfile("repositories"))
        except KeyError:
            repositories = {}
    return [entry.get("RepoTags") for entry in manifest], sorted(repositories)


def output_of(factory, image):
    return factory.run_image(image, "run" + uuid.uuid4().hex[:8]).strip()


@pytest.mark.parametrize("target_name", DOCKERS)
def test_podman_to_docker_keeps_the_names_as_written(ansible, engines, podman, name, workdir, target_name):
    target = engines[target_name]
    # Built through the compatible API (stored as docker.io/...), tagged as Podman's own tools do (localhost/...).
    podman.build(name + ":1", marker="from-podman")
    podman.cli("tag", name + ":1", "localhost/%s-cli:2" % name)
    assert sorted(t for t in all_tags(podman) if name in t) == sorted(["docker.io/%s:1" % name, "localhost/%s-cli:2" % name])
    path = workdir / "podman.tar"
    results = ansible.run(*four(lambda c: save(podman, path, [name + ":1", name + "-cli:2"], check=c)))
    assert changed(results) == [True, True, False, False], results
    assert results[1]["sidecar"]["engine"]["engine"] == "podman"
    assert sorted(results[1]["images"][0]["tags"]) == [name + "-cli:2", name + ":1"]
    tags, repositories = archive_names(path)
    assert sorted(tags[0]) == [name + "-cli:2", name + ":1"]
    assert repositories == [name, name + "-cli"]

    results = ansible.run(*four(lambda c: load(target, path, check=c)))
    assert changed(results) == [True, True, False, False], results
    built = podman.inspect(name + ":1")
    for tag in (name + ":1", name + "-cli:2"):
        arrived = target.inspect(tag)
        assert arrived["RootFS"]["Layers"] == built["RootFS"]["Layers"], tag
        # Podman, like Docker's classic store, names an image by its config digest (the containerd store by its manifest's).
        assert arrived["Id"] == built["Id"] or target_name == "docker-26", tag
    assert output_of(target, name + "-cli:2") == "from-podman"


def test_docker_to_podman_and_podman_to_rootless_podman(ansible, engines, podman, name, workdir):
    source, rootless = engines["docker-26"], engines["podman-rootless"]
    source.build(name + ":1", marker="from-docker", extra_lines=["ENV GREETING=hello"])
    from_docker = workdir / "docker.tar.zst"
    assert changed(ansible.run(save(source, from_docker, [name + ":1"]))) == [True]

    results = ansible.run(*four(lambda c: load(podman, from_docker, check=c)))
    assert changed(results) == [True, True, False, False], results
    # Docker 26's archive has an OCI index too, which would make Podman keep docker.io/...; it gets the Docker view.
    assert [t for t in all_tags(podman) if name in t] == ["localhost/%s:1" % name], "Podman keeps a registry-less name under localhost/"
    assert output_of(podman, name + ":1") == "from-docker"
    layers = source.inspect(name + ":1")["RootFS"]["Layers"]

    # Podman -> Podman: saved on the rootful engine (idempotently), loaded by the rootless one.
    from_podman = workdir / "podman.tar"
    results = ansible.run(*four(lambda c: save(podman, from_podman, [name + ":1"], check=c)))
    assert changed(results) == [True, True, False, False], results
    assert archive_names(from_podman) == ([[name + ":1"]], [name])
    results = ansible.run(*four(lambda c: load(rootless, from_podman, check=c)))
    assert changed(results) == [True, True, False, False], results
    assert rootless.inspect(name + ":1")["RootFS"]["Layers"] == layers
    assert output_of(rootless, name + ":1") == "from-docker"


def test_a_moved_tag_on_podman_moves_and_then_stays(ansible, engines, podman, name, workdir):
    """`name:1` built on Podman through the compatible API is `docker.io/name:1`; a load of another
    `name:1` puts it where Podman's lookup looks first (`localhost/`), and a load of a third moves
    that tag again. Re-runs leave them."""
    podman.build(name + ":1", marker="built-on-podman")
    archives = {}
    for engine_name, marker in (("docker-26", "second"), ("docker-20.10", "third")):
        engines[engine_name].build(name + ":1", marker=marker)
        archives[marker] = workdir / ("%s.tar" % marker)
        assert changed(ansible.run(save(engines[engine_name], archives[marker], [name + ":1"]))) == [True]
    for marker in ("second", "third"):
        results = ansible.run(*four(lambda c, marker=marker: load(podman, archives[marker], check=c)))
        assert changed(results) == [True, True, False, False], results
        assert output_of(podman, name + ":1") == marker
        assert results[3]["images"][0]["id"] == podman.inspect(name + ":1")["Id"]
    assert sorted(t for t in all_tags(podman) if name in t) == ["docker.io/%s:1" % name, "localhost/%s:1" % name]
    assert output_of(podman, "docker.io/%s:1" % name) == "built-on-podman", "the other name is left alone"


def test_thin_archive_into_podman_that_holds_the_base(ansible, engines, podman, name, workdir):
    source = engines["docker-26"]
    base, app = name + "-base:1", name + ":2"
    source.build(base, random_bytes=256 * 1024)
    source.build_on(base, app, ["RUN echo update-2 > /update.txt", 'CMD ["cat", "/update.txt"]'])
    source.send_to(podman, base)
    held = ansible.run({"airgap.docker.image_info": {"inventory": True, "docker_host": podman.host}})[0]["inventory"]["layers"]
    assert set(source.inspect(base)["RootFS"]["Layers"]) <= set(held)
    thin = workdir / "app-thin.tar.zst"
    saved = ansible.run(save(source, thin, [app], exclude_layers=held))[0]
    assert saved["changed"] and saved["images"][0]["omitted_layers"] == len(source.inspect(base)["RootFS"]["Layers"]), saved
    results = ansible.run(*four(lambda c: load(podman, thin, check=c)))
    assert changed(results) == [True, True, False, False], results
    assert podman.inspect(app)["RootFS"]["Layers"] == source.inspect(app)["RootFS"]["Layers"]
    assert output_of(podman, app) == "update-2"


def test_container_from_podman_imports_on_both_dockers(ansible, engines, podman, name, workdir):
    command = ["/bin/sh", "-c", "echo $GREETING; pwd; cat /added.txt"]
    podman.build(name + ":src", extra_lines=["ENV GREETING=hello-from-podman", "WORKDIR /srv", "CMD %s" % json.dumps(command)])
    container = podman.create_container(name + ":src", "c" + uuid.uuid4().hex[:10])
    try:
        podman.put_file(container, "/added.txt", b"added-on-podman\n")
        path = workdir / "fs.tar.zst"
        export = {CONTAINERS: {"container": container, "path": str(path), "docker_host": podman.host}}
        results = ansible.run(*four(lambda c: dict(export, check_mode=c)))
        assert changed(results) == [True, True, False, False], results
        digests = set()
        for target in [engines[n] for n in DOCKERS] + [podman]:
            image = name + ":imported"
            task = {CONTAINERS: {"state": "imported", "path": str(path), "image": image, "docker_host": target.host}}
            results = ansible.run(*four(lambda c, task=task: dict(task, check_mode=c)))
            assert changed(results) == [True, True, False, False], (target.name, results)
            digests.add(results[1]["image"]["config_digest"])
            assert output_of(target, image).split() == ["hello-from-podman", "/srv", "added-on-podman"], target.name
        assert len(digests) == 1, "the import is the same image on Docker and Podman"
    finally:
        podman.remove_container(container)


def test_platform_on_podman_is_refused_in_one_sentence(ansible, podman, name, workdir):
    podman.build(name + ":1")
    path = workdir / "p.tar"
    result = ansible.run(save(podman, path, [name + ":1"], platform="linux/amd64"))[0]
    assert_clean_failure(result, "platform", "Podman", "API 1.41")
    assert not path.exists() and not list(workdir.iterdir())


def test_pause_on_rootless_podman_is_refused_and_the_container_keeps_running(ansible, engines, name, workdir):
    rootless = engines["podman-rootless"]
    rootless.build(name + ":src")
    container = rootless.create_container(name + ":src", "r" + uuid.uuid4().hex[:10], command=["/bin/sleep", "3600"])
    try:
        rootless.start(container)
        path = workdir / "fs.tar"
        result = ansible.run({CONTAINERS: {"container": container, "path": str(path), "pause": True, "docker_host": rootless.host}})[0]
        assert_clean_failure(result, "refused pausing container", "rootless")
        assert rootless.container_state(container)["Status"] == "running"
        assert not list(workdir.iterdir()), "nothing written"
    finally:
        rootless.remove_container(container)


@pytest.fixture
def fleet_podman(scenario, tmp_path_factory):
    """The fleet session's Podman engine, as tgt-modern's engine (its migrate_docker_host); the
    scenario's images go from it afterwards."""
    podman = factory("fleet-podman", FLEET_PODMAN, tmp_path_factory)
    yield podman, "tgt-modern", {"tgt-modern": {"migrate_docker_host": podman.host}}
    podman.remove(*[t for t in all_tags(podman) if familiar(t).startswith(scenario.repo)])


@pytest.mark.fleet
def test_the_role_relays_to_and_unpacks_on_a_podman_host(scenario, fleet_podman):
    podman, host, host_vars = fleet_podman
    app = scenario.image("1", marker="relayed")
    web = scenario.container("web", app)
    snapshot = scenario.repo + "-web:snap"
    relay = {"migrate_source": "src", "migrate_images": [app], "migrate_containers": [{"name": web, "image": snapshot}],
             "migrate_bundle_dir": str(scenario.tmp / "relay")}
    runs = [scenario.play("main", host, relay, inventory_hosts=["src", host], check=c, host_vars=host_vars) for c in (True, False, True, False)]
    for run in runs:
        assert_ok(run, host)
    assert [run.changed(host) for run in runs] == [True, True, False, False]
    assert podman.inspect(app)["RootFS"]["Layers"] == scenario.hosts["src"].inspect(app)["RootFS"]["Layers"]
    assert output_of(podman, app) == "relayed"
    assert runs[1].reports[host]["images"] and sorted(runs[1].reports[host]["images"]) == sorted([app, snapshot])
    assert scenario.hosts[host].inspect(app) is None, "the host's Docker engine got nothing"

    # A bundle, unpacked on the Podman host alone (the source is not in the inventory).
    later = scenario.image("2", marker="unpacked")
    bundle = scenario.tmp / "bundle"
    assert_ok(pack(scenario, bundle, [later]), "src")
    unpacks = [scenario.play("unpack", host, {"migrate_bundle_dir": str(bundle)}, inventory_hosts=[host], check=c, host_vars=host_vars)
               for c in (True, False, True, False)]
    for run in unpacks:
        assert_ok(run, host)
    assert [run.changed(host) for run in unpacks] == [True, True, False, False]
    assert output_of(podman, later) == "unpacked"
