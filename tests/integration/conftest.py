"""Integration tests: the collection, installed as a user installs it, driven through real
ansible-playbook runs against the private Docker engines started by tests/harness/engines.sh.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import docker
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from ansible_runner_helper import Ansible
from fleet_helper import Fleet
from image_factory import ImageFactory
from migrate_scenario import Scenario

REPO = Path(__file__).resolve().parents[2]
ENGINE_ROOT = Path(os.environ.get("AIRGAP_ENGINES_ROOT", "/var/tmp/airgap-engines"))
TEST_REPO_PREFIX = "airgap-test/"
ENGINES = {
    "classic": os.environ.get("AIRGAP_CLASSIC_HOST", "unix://%s/run/classic.sock" % ENGINE_ROOT),
    "modern": os.environ.get("AIRGAP_MODERN_HOST", "unix://%s/run/modern.sock" % ENGINE_ROOT),
}


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
    """Build the collection artifact and install it with ansible-galaxy, as a user would."""
    build_dir = tmp_path_factory.mktemp("build")
    install_dir = tmp_path_factory.mktemp("collections")
    bindir = Path(sys.executable).parent
    subprocess.run([str(bindir / "ansible-galaxy"), "collection", "build", "--output-path", str(build_dir), str(REPO)],
                   check=True, capture_output=True)
    artifact = next(build_dir.glob("airgap-docker-*.tar.gz"))
    subprocess.run([str(bindir / "ansible-galaxy"), "collection", "install", "-p", str(install_dir), str(artifact)],
                   check=True, capture_output=True)
    assert (install_dir / "ansible_collections/airgap/docker/plugins/modules/image_archive.py").exists()
    return install_dir


@pytest.fixture(scope="session")
def ansible(collections_path, tmp_path_factory):
    return Ansible(collections_path, tmp_path_factory.mktemp("plays"))


def _client(name):
    client = docker.APIClient(base_url=ENGINES[name], version="auto", timeout=300)
    try:
        client.version()
    except Exception as exc:  # pragma: no cover - harness problem
        pytest.fail("The %s test engine at %s is not running (%s); run tests/harness/engines.sh start." % (name, ENGINES[name], exc))
    return client


def _remove_test_images(factory, prefix):
    """Remove test images by tag prefix, then the untagged images they leave behind. The containerd
    image store lists images in time proportional to their number, so leftovers slow every later test."""
    factory.remove(*[t for t in factory.tags() if t.startswith(prefix)])
    with contextlib.suppress(Exception):
        factory.client.prune_images(filters={"dangling": True})


@pytest.fixture(scope="session")
def factories(tmp_path_factory):
    made = {name: ImageFactory(name, ENGINES[name], _client(name), tmp_path_factory.mktemp("ctx-" + name)) for name in ENGINES}
    for factory in made.values():
        _remove_test_images(factory, TEST_REPO_PREFIX)
    return made


@pytest.fixture(params=sorted(ENGINES))
def engine(request, factories):
    """Each test using this runs once per engine (classic and containerd image store)."""
    return factories[request.param]


@pytest.fixture
def other_engine(engine, factories):
    return next(f for name, f in factories.items() if name != engine.name)


@pytest.fixture
def unique(factories):
    """A fresh repository name so that tests never see each other's tags; its images go afterwards."""
    name = "%st%s" % (TEST_REPO_PREFIX, uuid.uuid4().hex[:10])
    yield name
    for factory in factories.values():
        factory.remove(*[t for t in factory.tags() if t.startswith(name + ":")])


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
