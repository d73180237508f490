"""Integration tests: the collection, installed as a user installs it, driven through real
ansible-playbook runs against the private Docker engines started by tests/harness/engines.sh.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import docker
import pytest
from ansible.plugins.loader import init_plugin_loader
from ansible.utils.collection_loader._collection_finder import _AnsibleCollectionFinder

sys.path.insert(0, str(Path(__file__).parent))

from ansible_calls import Ansible, write_inventory
from fleet_helper import Fleet
from image_factory import ImageFactory, abandoned_test_tag, test_repository
from migrate_scenario import Scenario

REPO = Path(__file__).resolve().parents[2]
ENGINE_ROOT = Path(os.environ.get("AIRGAP_ENGINES_ROOT", "/var/tmp/airgap-engines"))
ENGINES = {
    "classic": os.environ.get("AIRGAP_CLASSIC_HOST", "unix://%s/run/classic.sock" % ENGINE_ROOT),
    "modern": os.environ.get("AIRGAP_MODERN_HOST", "unix://%s/run/modern.sock" % ENGINE_ROOT),
    "containerd2": os.environ.get("AIRGAP_CONTAINERD2_HOST", "unix://%s/run/containerd2.sock" % ENGINE_ROOT),
}
# AIRGAP_TEST_ENGINES=classic,modern runs the engine matrix on those engines only (a contributor's
# quick run); unset, every engine is tested.
if os.environ.get("AIRGAP_TEST_ENGINES"):
    ENGINES = {name: ENGINES[name] for name in os.environ["AIRGAP_TEST_ENGINES"].split(",")}


@pytest.fixture(scope="session", autouse=True)
def verified_memo_directory(tmp_path_factory):
    """The modules' memo of verified archives (normally ~/.cache/airgap.docker) goes to a temporary
    directory, so that the tests write nothing into the home of whoever runs them."""
    path = tmp_path_factory.mktemp("airgap-cache")
    previous = os.environ.get("AIRGAP_DOCKER_CACHE")
    os.environ["AIRGAP_DOCKER_CACHE"] = str(path)
    yield path
    if previous is None:
        os.environ.pop("AIRGAP_DOCKER_CACHE", None)
    else:
        os.environ["AIRGAP_DOCKER_CACHE"] = previous


@pytest.fixture(scope="session")
def collections_path(tmp_path_factory):
    """Build the collection artifact and install it with ansible-galaxy, as a user would; the
    module calls of this session then resolve `airgap.docker` there, never in the checkout."""
    build_dir = tmp_path_factory.mktemp("build")
    install_dir = tmp_path_factory.mktemp("collections")
    bindir = Path(sys.executable).parent
    # Without pytest-ansible's view of the checkout, which would count as installed already.
    env = {key: value for key, value in os.environ.items() if not key.startswith("ANSIBLE_COLLECTIONS_PATH")}
    subprocess.run([str(bindir / "ansible-galaxy"), "collection", "build", "--output-path", str(build_dir), str(REPO)],
                   check=True, capture_output=True, env=env)
    artifact = next(build_dir.glob("airgap-docker-*.tar.gz"))
    subprocess.run([str(bindir / "ansible-galaxy"), "collection", "install", "--force", "-p", str(install_dir), str(artifact)],
                   check=True, capture_output=True, env=env)
    assert (install_dir / "ansible_collections/airgap/docker/plugins/modules/image_archive.py").exists()
    # pytest-ansible configured Ansible's collection finder when pytest started (with the
    # checkout, unless --ansible-unit-inject-only); this session's finder is the installed copy.
    _AnsibleCollectionFinder._remove()
    init_plugin_loader([str(install_dir)])
    return install_dir


@pytest.fixture(scope="session")
def inventory(tmp_path_factory):
    return write_inventory(tmp_path_factory.mktemp("inventory") / "engines.yml", ENGINES)


@pytest.fixture
def ansible(ansible_adhoc, inventory, collections_path):
    return Ansible(ansible_adhoc, inventory, ENGINES, collections_path)


def _client(name):
    client = docker.APIClient(base_url=ENGINES[name], version="auto", timeout=300)
    try:
        client.version()
    except Exception as exc:  # pragma: no cover - harness problem
        pytest.fail("The %s test engine at %s is not running (%s); run tests/harness/engines.sh start." % (name, ENGINES[name], exc))
    return client


def _remove_abandoned_test_images(factory):
    """Remove the test images of sessions that died, then the untagged images they leave behind. The
    containerd image store lists images in time proportional to their number, so leftovers slow every later test."""
    factory.remove(*[t for t in factory.tags() if abandoned_test_tag(t)])
    with contextlib.suppress(Exception):
        factory.client.prune_images(filters={"dangling": True})


@pytest.fixture(scope="session")
def factories(tmp_path_factory):
    made = {name: ImageFactory(name, ENGINES[name], _client(name), tmp_path_factory.mktemp("ctx-" + name)) for name in ENGINES}
    for factory in made.values():
        _remove_abandoned_test_images(factory)
    return made


@pytest.fixture(params=sorted(ENGINES))
def engine(request, factories):
    """Each test using this runs once per engine (classic and containerd image store)."""
    return factories[request.param]


@pytest.fixture
def other_engine(engine, factories):
    return next(f for name, f in factories.items() if name != engine.name)


@pytest.fixture
def one_engine(factories):
    """One engine (classic, else the first tested), for a test whose module calls are decided before
    any engine answers (options, paths and permissions, the archive's own bytes, state=absent): on
    the other engines they would run the very same code. The engine holds the test's images, and
    shows that nothing reached it."""
    return factories["classic"] if "classic" in factories else factories[sorted(factories)[0]]


@pytest.fixture
def unique(factories):
    """A fresh repository name so that tests never see each other's tags; its images go afterwards."""
    name = test_repository()
    yield name
    for factory in factories.values():
        factory.remove(*factory.tags_of(name))


@pytest.fixture
def workdir(tmp_path):
    path = tmp_path / "archives"
    path.mkdir()
    yield path
    shutil.rmtree(path, ignore_errors=True)


# The simulated fleet, for the migrate role's tests -------------------------------------------


@pytest.fixture(scope="module")
def fleet():
    return Fleet()


@pytest.fixture(scope="module")
def hosts(fleet, tmp_path_factory):
    """An ImageFactory on each fleet host's engine, reached from the controller's namespace."""
    factories = {}
    for name, host in fleet.hosts.items():
        client = docker.APIClient(base_url=host["docker_host"], version="auto", timeout=300)
        factories[name] = ImageFactory(name, host["docker_host"], client, tmp_path_factory.mktemp("ctx-" + name))
    return factories


@pytest.fixture
def scenario(ansible, fleet, hosts, tmp_path):
    scene = Scenario(ansible, fleet, hosts, tmp_path)
    for name in fleet.hosts:
        fleet.clear_staging(name)
    yield scene
    scene.cleanup()


# Two sessions at once (tests/harness/integration.sh) ---------------------------------------

FLEET_FIXTURES = {"fleet", "hosts", "scenario"}


def store_engines(engines):
    """One engine of each image store among those tested: classic, and the newest containerd one."""
    chosen = [name for name in ("classic",) if name in engines]
    containerd = [name for name in ("containerd2", "modern") if name in engines]
    return chosen + containerd[:1]


def _engine_param(item):
    """The engine a parametrised test runs on (its `engine` or `engine_name`), or None."""
    params = getattr(getattr(item, "callspec", None), "params", {})
    return params.get("engine", params.get("engine_name"))


def pytest_collection_modifyitems(config, items):
    """Mark the tests that use the simulated fleet: `-m fleet` and `-m "not fleet"` then split the
    suite into two sessions that share no engine (the fleet's targets have engines of their own).

    A test marked per_store runs on one engine of each image store (store_engines), not on every
    engine: it tests the collection's own handling of files and sidecars, where the engine only
    saves, exports, loads or imports a well-formed archive, as the engine tests show on each one."""
    per_store = store_engines(ENGINES)
    skipped = [item for item in items if item.get_closest_marker("per_store") and _engine_param(item) not in per_store + [None]]
    if skipped:
        config.hook.pytest_deselected(items=skipped)
        gone = {id(item) for item in skipped}
        items[:] = [item for item in items if id(item) not in gone]
    for item in items:
        uses = set(getattr(item, "fixturenames", ()))
        if uses & FLEET_FIXTURES:
            item.add_marker(pytest.mark.fleet)
        if item.get_closest_marker("fleet") and uses & {"engine", "other_engine", "one_engine", "factories", "unique"}:
            raise pytest.UsageError("%s uses the fleet and the module tests' engines: the two sessions would share them." % item.nodeid)
