"""The benchmark's engine helper (bench/run.py): a cold load must find none of the image's layers,
so earlier untagged builds of the benchmark's image are removed first."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "bench"))

docker = pytest.importorskip("docker")
run = pytest.importorskip("run")


class FakeClient:
    def __init__(self, images, refuse=()):
        self.images_by_id = {image["Id"]: image for image in images}
        self.refuse, self.removed = set(refuse), []

    def images(self, filters):
        assert filters == {"dangling": True}
        return [{"Id": i} for i in self.images_by_id if i != "sha256:bench"]

    def inspect_image(self, image_id):
        return self.images_by_id[image_id]

    def remove_image(self, image_id):
        if image_id in self.refuse:
            raise docker.errors.APIError("image is being used by a stopped container")
        self.removed.append(image_id)


def image(image_id, *layers):
    return {"Id": image_id, "RootFS": {"Layers": list(layers)}}


def engine_with(client):
    engine = run.Engine.__new__(run.Engine)
    engine.name, engine.host, engine.client = "classic", "unix:///nowhere.sock", client
    return engine


def test_only_untagged_images_that_share_a_layer_are_removed():
    bench = image("sha256:bench", "sha256:l1", "sha256:l2")
    client = FakeClient([bench, image("sha256:old-build", "sha256:l1", "sha256:l2"), image("sha256:other", "sha256:x")])
    engine_with(client).remove_untagged_copies(bench)
    assert client.removed == ["sha256:old-build"]


def test_a_copy_that_cannot_be_removed_stops_the_benchmark():
    bench = image("sha256:bench", "sha256:l1")
    client = FakeClient([bench, image("sha256:old-build", "sha256:l1")], refuse={"sha256:old-build"})
    with pytest.raises(RuntimeError, match="keeps layers of the benchmark's image"):
        engine_with(client).remove_untagged_copies(bench)
