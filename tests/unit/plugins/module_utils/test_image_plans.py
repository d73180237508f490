# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import calendar
import copy
import time

import pytest
from archive_factory import ImageSpec, layer_tar, legacy_archive, oci_archive, parse

from ansible_collections.airgap.docker.plugins.module_utils.errors import ImageNotFound
from ansible_collections.airgap.docker.plugins.module_utils.identity import (
    fingerprint_from_inspect,
)
from ansible_collections.airgap.docker.plugins.module_utils.image_plans import (
    EngineLookup,
    LoadStep,
    WantedImage,
    archive_summary,
    check_requested_in_archive,
    engine_tags,
    load_steps,
    request_is_tag,
    save_decision,
    wanted_from_archive,
    wanted_images,
)


class FakeEngine:
    """inspect(ref) and list_images() over a fixed table, recording every call."""

    def __init__(self, refs=None, listing=None):
        self.refs = dict(refs or {})
        self.listing = list(listing or [])
        self.inspect_calls = []
        self.list_calls = 0

    def add(self, info, *refs):
        for ref in (info["Id"],) + refs:
            self.refs[ref] = info
        self.listing.append({"Id": info["Id"], "Created": _unix(info.get("Created"))})
        return info

    def inspect(self, ref):
        self.inspect_calls.append(ref)
        info = self.refs.get(ref)
        return copy.deepcopy(info) if info is not None else None

    def list_images(self):
        self.list_calls += 1
        return copy.deepcopy(self.listing)


def _unix(created):
    if not created:
        return 0
    return calendar.timegm(time.strptime(created[:19], "%Y-%m-%dT%H:%M:%S"))  # ignores any offset


def busybox_spec():
    return ImageSpec(tags=["busybox:latest", "busybox:1.36"])


def app_spec():
    return ImageSpec(tags=["app:1"], layers=[layer_tar({"app": b"binary"})], runtime={"Cmd": ["app"]},
                     created="2024-05-05T05:05:05.5+02:00")


# engine_tags / request_is_tag ---------------------------------------------------------------


def test_engine_tags():
    info = {"RepoTags": ["docker.io/library/busybox:1", "busybox:latest", "<none>:<none>", "ghcr.io/o/a:v", "registry:5000/x"]}
    assert engine_tags(info) == ["busybox:1", "busybox:latest", "ghcr.io/o/a:v"]
    assert engine_tags({"RepoTags": None}) == []
    assert engine_tags({}) == []


def test_request_is_tag():
    info = {"RepoTags": ["busybox:latest", "busybox:1.36"]}
    assert request_is_tag("busybox", info) == "busybox:latest"
    assert request_is_tag("docker.io/library/busybox:1.36", info) == "busybox:1.36"
    assert request_is_tag("busybox:1.35", info) is None
    assert request_is_tag("sha256:" + "a" * 64, info) is None
    assert request_is_tag("0123456789ab", info) is None
    assert request_is_tag("BusyBox", info) is None  # invalid names are no tag, not an error


# wanted_images ------------------------------------------------------------------------------


def test_two_tags_of_one_image_are_one_entry():
    engine = FakeEngine()
    spec = busybox_spec()
    info = engine.add(spec.inspect(), "busybox:latest", "busybox:1.36")
    wanted = wanted_images(["busybox:1.36", "busybox:latest"], engine.inspect)
    assert len(wanted) == 1
    want = wanted[0]
    assert isinstance(want, WantedImage)
    assert want.id == info["Id"]
    assert want.tags == ["busybox:1.36", "busybox:latest"]
    assert want.requested_as == ["busybox:1.36", "busybox:latest"]
    assert want.fingerprint == fingerprint_from_inspect(info)
    assert want.size == spec.layers_size


def test_same_tag_requested_twice_counts_once():
    engine = FakeEngine()
    engine.add(busybox_spec().inspect(), "busybox:latest", "busybox", "docker.io/library/busybox:latest")
    wanted = wanted_images(["busybox", "busybox:latest", "docker.io/library/busybox:latest"], engine.inspect)
    assert len(wanted) == 1
    assert wanted[0].tags == ["busybox:latest"]
    assert len(wanted[0].requested_as) == 3


def test_only_requested_tags_are_carried():
    engine = FakeEngine()
    engine.add(busybox_spec().inspect(), "busybox:1.36")
    wanted = wanted_images(["busybox:1.36"], engine.inspect)
    assert wanted[0].tags == ["busybox:1.36"]  # not busybox:latest, which was not asked for


def test_id_only_request_has_no_tags():
    engine = FakeEngine()
    info = engine.add(busybox_spec().inspect())
    short = info["Id"][7:19]
    engine.refs[short] = info
    for request in (info["Id"], short):
        wanted = wanted_images([request], engine.inspect)
        assert [(w.id, w.tags, w.requested_as) for w in wanted] == [(info["Id"], [], [request])]


def test_id_and_tag_of_one_image():
    engine = FakeEngine()
    info = engine.add(busybox_spec().inspect(), "busybox:latest")
    wanted = wanted_images([info["Id"], "busybox:latest"], engine.inspect)
    assert len(wanted) == 1
    assert wanted[0].tags == ["busybox:latest"]


def test_bare_full_id_is_retried_with_prefix():
    engine = FakeEngine()
    info = engine.add(busybox_spec().inspect())
    bare = info["Id"][7:]
    wanted = wanted_images([bare], engine.inspect)
    assert wanted[0].id == info["Id"]
    assert engine.inspect_calls == [bare, info["Id"]]


def test_short_id_is_not_retried():
    engine = FakeEngine()
    with pytest.raises(ImageNotFound):
        wanted_images(["0123456789ab"], engine.inspect)
    assert engine.inspect_calls == ["0123456789ab"]


def test_missing_images_are_named_together():
    engine = FakeEngine()
    engine.add(busybox_spec().inspect(), "busybox:latest")
    with pytest.raises(ImageNotFound) as info:
        wanted_images(["nginx:1", "busybox:latest", "redis:7"], engine.inspect)
    assert info.value.msg == "Images not found in the engine: nginx:1, redis:7."
    assert len(engine.inspect_calls) == 3  # all were looked up


def test_one_missing_image_is_singular():
    with pytest.raises(ImageNotFound) as info:
        wanted_images(["nginx:1"], FakeEngine().inspect)
    assert info.value.msg == "Image not found in the engine: nginx:1."


def test_wanted_images_sorted_by_tags_then_id():
    engine = FakeEngine()
    busybox = engine.add(busybox_spec().inspect(), "busybox:latest")
    app = engine.add(app_spec().inspect(), "app:1")
    untagged = engine.add(ImageSpec(runtime={"Cmd": ["u"]}).inspect(repo_tags=[]))
    wanted = wanted_images(["busybox:latest", untagged["Id"], "app:1"], engine.inspect)
    assert [w.id for w in wanted] == [untagged["Id"], app["Id"], busybox["Id"]]


def test_wanted_size_defaults_to_zero():
    engine = FakeEngine()
    engine.add(dict(busybox_spec().inspect(), Size=None), "busybox:latest")
    assert wanted_images(["busybox:latest"], engine.inspect)[0].size == 0


# save_decision ------------------------------------------------------------------------------


def want(tags, image_id="sha256:" + "1" * 64, fingerprint="sha256:" + "f" * 64):
    return WantedImage(image_id, fingerprint, tags=sorted(tags))


def record(tags, fingerprint="sha256:" + "f" * 64, **extra):
    return dict({"tags": tags, "fingerprint": fingerprint, "config_digest": "sha256:" + "c" * 64}, **extra)


def test_save_when_archive_missing():
    assert save_decision([want(["a:1"])], None, None, "gzip") == (False, "the archive does not exist")


def test_save_when_compression_differs():
    up_to_date, reason = save_decision([want(["a:1"])], [record(["a:1"])], "gzip", "zstd")
    assert not up_to_date
    assert reason == "the archive is compressed with gzip, zstd was requested"


def test_save_when_compression_unknown():
    up_to_date, reason = save_decision([want(["a:1"])], [record(["a:1"])], None, "none")
    assert not up_to_date and "none was requested" in reason


@pytest.mark.parametrize("recorded_platform, platform, same", [
    (None, None, True), ("", None, True), (None, "", True),
    ("linux/amd64", "linux/amd64", True),
    (None, "linux/arm64", False), ("linux/arm64", None, False), ("linux/arm64", "linux/amd64", False),
])
def test_save_platform(recorded_platform, platform, same):
    up_to_date, reason = save_decision([want(["a:1"])], [record(["a:1"])], "gzip", "gzip", recorded_platform, platform)
    assert up_to_date is same
    if not same:
        assert reason == "the archive was saved for platform %s, %s was requested" % (recorded_platform or "default", platform or "default")


def test_save_up_to_date_by_fingerprint():
    assert save_decision([want(["b:1", "a:1"])], [record(["a:1", "b:1"])], "gzip", "gzip") == (
        True, "the archive already holds exactly the requested images")


@pytest.mark.parametrize("key", ["engine_id", "config_digest", "manifest_digest", "index_digest"])
def test_save_up_to_date_by_id(key):
    wanted = want(["a:1"], image_id="sha256:" + "9" * 64, fingerprint="sha256:" + "0" * 64)
    recorded = record(["a:1"], fingerprint="sha256:" + "d" * 64, **{key: "sha256:" + "9" * 64})
    assert save_decision([wanted], [recorded], "none", "none")[0] is True


def test_save_different_engine_id_same_fingerprint_is_same_image():
    wanted = want(["a:1"], image_id="sha256:" + "9" * 64)
    recorded = record(["a:1"], engine_id="sha256:" + "8" * 64)
    assert save_decision([wanted], [recorded], "none", "none")[0] is True


def test_save_when_image_changed():
    up_to_date, reason = save_decision([want(["a:1", "a:latest"])], [record(["a:1", "a:latest"], fingerprint="sha256:" + "e" * 64)],
                                       "gzip", "gzip")
    assert not up_to_date
    assert reason == "a:1, a:latest in the engine is not the image in the archive"


def test_save_when_untagged_image_changed():
    image_id = "sha256:" + "1" * 64
    up_to_date, reason = save_decision([want([], image_id=image_id)], [record([], fingerprint="sha256:" + "e" * 64)], "gzip", "gzip")
    assert not up_to_date
    assert reason == "%s in the engine is not the image in the archive" % image_id


def test_save_when_tags_differ():
    up_to_date, reason = save_decision([want(["a:1", "a:2"])], [record(["a:1"])], "gzip", "gzip")
    assert not up_to_date
    assert reason == "the archive holds %s with tags ['a:1'], not ['a:1', 'a:2']" % ("sha256:" + "1" * 12)


def test_save_when_archive_image_untagged_but_tags_wanted():
    up_to_date, reason = save_decision([want(["a:1"])], [record([])], "gzip", "gzip")
    assert not up_to_date
    assert "with tags none, not ['a:1']" in reason


def test_save_when_tags_wanted_none():
    up_to_date, reason = save_decision([want([])], [record(["a:1"])], "gzip", "gzip")
    assert not up_to_date
    assert reason.endswith("with tags ['a:1'], not none")


def test_save_when_archive_holds_more():
    recorded = [record(["a:1"]), record(["b:1", "b:2"], fingerprint="sha256:" + "b" * 64), record([], fingerprint="sha256:" + "e" * 64)]
    up_to_date, reason = save_decision([want(["a:1"])], recorded, "gzip", "gzip")
    assert not up_to_date
    assert reason == "the archive also holds images that were not requested (b:1, b:2, %s)" % ("sha256:" + "c" * 64)


def test_save_with_several_images():
    first = want(["a:1"], image_id="sha256:" + "1" * 64, fingerprint="sha256:" + "a" * 64)
    second = want(["b:1"], image_id="sha256:" + "2" * 64, fingerprint="sha256:" + "b" * 64)
    recorded = [record(["b:1"], fingerprint="sha256:" + "b" * 64), record(["a:1"], fingerprint="sha256:" + "a" * 64)]
    assert save_decision([first, second], recorded, "zstd", "zstd")[0] is True
    assert save_decision([first, second], recorded[:1], "zstd", "zstd")[0] is False
    # the same archive image cannot satisfy two wanted images
    twin = want(["a:1"], image_id="sha256:" + "3" * 64, fingerprint="sha256:" + "a" * 64)
    assert save_decision([first, twin], recorded[1:], "zstd", "zstd")[0] is False


def test_save_nothing_wanted_nothing_recorded():
    assert save_decision([], [], "none", "none")[0] is True


def test_save_decision_with_real_archive_records():
    """The full path: engine view -> WantedImage, archive -> ArchiveImage dicts (as the sidecar stores)."""
    spec = busybox_spec()
    images = parse(oci_archive([spec], nested=True))[1]
    engine = FakeEngine()
    engine.add(spec.inspect(image_id=spec.index_digest), "busybox:latest", "busybox:1.36")
    wanted = wanted_images(["busybox:latest", "busybox:1.36"], engine.inspect)
    recorded = [i.to_dict() for i in images]
    assert save_decision(wanted, recorded, "gzip", "gzip") == (True, "the archive already holds exactly the requested images")
    # the legacy archive of the same image, saved from a classic store, is the same image too
    legacy = parse(legacy_archive([busybox_spec()]))[1]
    assert save_decision(wanted, [i.to_dict() for i in legacy], "gzip", "gzip")[0] is True


def test_archive_summary():
    summary = archive_summary([{"tags": ["b:1", "a:1"], "fingerprint": "f2"}, {"tags": [], "fingerprint": "f1"}])
    assert summary == [((), "f1"), (("a:1", "b:1"), "f2")]


# EngineLookup -------------------------------------------------------------------------------


def archive_image(spec=None, nested=False):
    spec = spec or busybox_spec()
    data = oci_archive([spec], nested=nested) if nested is not None else legacy_archive([spec])
    return spec, parse(data)[1][0]


def test_find_by_config_digest_classic_store():
    spec, image = archive_image(nested=None)
    engine = FakeEngine()
    info = engine.add(spec.inspect(), "busybox:latest")
    lookup = EngineLookup(engine.inspect, engine.list_images)
    assert lookup.find(image)["Id"] == info["Id"] == image.config_digest
    assert engine.inspect_calls == [image.config_digest]
    assert engine.list_calls == 0


def test_find_by_manifest_digest_containerd_store():
    spec, image = archive_image(nested=False)
    engine = FakeEngine()
    info = engine.add(spec.inspect(image_id=spec.manifest_digest))
    lookup = EngineLookup(engine.inspect, engine.list_images)
    assert lookup.find(image)["Id"] == info["Id"]
    assert engine.inspect_calls == [image.config_digest, image.manifest_digest]


def test_find_by_index_digest():
    spec, image = archive_image(nested=True)
    engine = FakeEngine()
    engine.add(spec.inspect(image_id=spec.index_digest))
    assert EngineLookup(engine.inspect, engine.list_images).find(image)["Id"] == spec.index_digest


def test_find_by_id_lookup_resolving_to_another_id_with_same_content():
    # the containerd store resolves a config digest to the image, whose ID is its manifest digest
    spec, image = archive_image(nested=False)
    engine = FakeEngine()
    info = engine.add(spec.inspect(image_id="sha256:" + "7" * 64))
    engine.refs[image.config_digest] = info
    found = EngineLookup(engine.inspect, engine.list_images).find(image)
    assert found["Id"] == "sha256:" + "7" * 64
    assert engine.inspect_calls == [image.config_digest]


def test_find_ignores_id_lookup_resolving_to_other_content():
    image = archive_image(nested=None)[1]
    other = app_spec().inspect(image_id="sha256:" + "7" * 64)
    engine = FakeEngine()
    engine.refs[image.config_digest] = other  # e.g. a prefix collision
    assert EngineLookup(engine.inspect, engine.list_images).find(image) is None


def test_find_by_tag_with_fingerprint():
    spec, image = archive_image(nested=None)
    engine = FakeEngine()
    # an engine ID no archive records (synthesized manifest), reachable through a tag
    info = engine.add(spec.inspect(image_id="sha256:" + "5" * 64), "busybox:1.36")
    lookup = EngineLookup(engine.inspect, engine.list_images)
    assert lookup.find(image)["Id"] == info["Id"]
    assert "busybox:1.36" in engine.inspect_calls
    assert engine.list_calls == 0


def test_find_ignores_tag_pointing_at_other_image():
    image = archive_image(nested=None)[1]
    engine = FakeEngine()
    engine.add(app_spec().inspect(image_id="sha256:" + "6" * 64), "busybox:latest", "busybox:1.36")
    lookup = EngineLookup(engine.inspect, engine.list_images)
    assert lookup.find(image) is None
    assert engine.list_calls == 1


def test_find_untagged_by_listing_and_created():
    spec, image = archive_image(nested=None)
    engine = FakeEngine()
    # same content, created at another time: not a candidate (and not this image: other fingerprint)
    engine.add(spec.inspect(image_id="sha256:" + "2" * 64, Created="2020-01-01T00:00:00Z"))
    decoy = app_spec().inspect(image_id="sha256:" + "3" * 64, Created=spec.created)  # same second, other content
    engine.add(decoy)
    info = engine.add(spec.inspect(image_id="sha256:" + "4" * 64, repo_tags=[]))
    lookup = EngineLookup(engine.inspect, engine.list_images)
    assert lookup.find(image)["Id"] == info["Id"]
    # only the candidates created in the same second were inspected from the listing
    assert "sha256:" + "2" * 64 not in engine.inspect_calls
    assert decoy["Id"] in engine.inspect_calls


def test_find_untagged_with_offset_created():
    spec = app_spec()  # created with a +02:00 offset
    image = archive_image(spec, nested=None)[1]
    engine = FakeEngine(listing=[{"Id": "sha256:" + "4" * 64, "Created": calendar.timegm((2024, 5, 5, 3, 5, 5))}])
    engine.refs["sha256:" + "4" * 64] = spec.inspect(image_id="sha256:" + "4" * 64, repo_tags=[])
    assert EngineLookup(engine.inspect, engine.list_images).find(image)["Id"] == "sha256:" + "4" * 64


def test_find_without_created_does_not_list():
    image = archive_image(nested=None)[1]
    image.created = None
    engine = FakeEngine()
    assert EngineLookup(engine.inspect, engine.list_images).find(image) is None
    assert engine.list_calls == 0


def test_find_not_there():
    image = archive_image(nested=True)[1]
    engine = FakeEngine()
    assert EngineLookup(engine.inspect, engine.list_images).find(image) is None


def test_lookup_caches_inspect_and_listing_until_forget():
    spec, image = archive_image(nested=None)
    engine = FakeEngine()
    lookup = EngineLookup(engine.inspect, engine.list_images)
    assert lookup.find(image) is None
    calls = len(engine.inspect_calls)
    assert lookup.find(image) is None
    assert lookup.inspect("busybox:latest") is None
    assert len(engine.inspect_calls) == calls  # misses are cached too
    assert engine.list_calls == 1
    engine.add(spec.inspect(), "busybox:latest", "busybox:1.36")
    assert lookup.find(image) is None  # still the cached view
    lookup.forget()
    assert lookup.find(image)["Id"] == spec.config_digest
    assert len(engine.inspect_calls) == calls + 1


# load_steps ---------------------------------------------------------------------------------


def test_load_steps_image_missing():
    image = archive_image(nested=None)[1]
    engine = FakeEngine()
    other = engine.add(app_spec().inspect(image_id="sha256:" + "6" * 64), "busybox:latest")
    (step,) = load_steps([image], EngineLookup(engine.inspect, engine.list_images))
    assert isinstance(step, LoadStep)
    assert step.image is image
    assert step.engine_id is None
    assert step.needs_load and not step.needs_retag
    assert step.missing_tags == ["busybox:1.36", "busybox:latest"]
    assert step.tags_before == {"busybox:1.36": None, "busybox:latest": other["Id"]}


def test_load_steps_all_present():
    spec, image = archive_image(nested=None)
    engine = FakeEngine()
    engine.add(spec.inspect(), "busybox:latest", "busybox:1.36")
    (step,) = load_steps([image], EngineLookup(engine.inspect, engine.list_images))
    assert step.engine_id == spec.config_digest
    assert not step.needs_load and not step.needs_retag
    assert step.missing_tags == []
    assert step.tags_before == {"busybox:1.36": spec.config_digest, "busybox:latest": spec.config_digest}


def test_load_steps_retag():
    spec, image = archive_image(nested=None)
    engine = FakeEngine()
    engine.add(spec.inspect(), "busybox:1.36")
    moved = engine.add(app_spec().inspect(image_id="sha256:" + "6" * 64), "busybox:latest")
    (step,) = load_steps([image], EngineLookup(engine.inspect, engine.list_images))
    assert step.engine_id == spec.config_digest
    assert not step.needs_load and step.needs_retag
    assert step.missing_tags == ["busybox:latest"]
    assert step.tags_before == {"busybox:1.36": spec.config_digest, "busybox:latest": moved["Id"]}


def test_load_steps_untagged_image_present():
    spec = ImageSpec(tags=[])
    image = archive_image(spec, nested=None)[1]
    engine = FakeEngine()
    engine.add(spec.inspect(repo_tags=[]))
    (step,) = load_steps([image], EngineLookup(engine.inspect, engine.list_images))
    assert not step.needs_load and not step.needs_retag and step.tags_before == {}


def test_load_steps_several_images():
    first, second = busybox_spec(), app_spec()
    images = parse(oci_archive([first, second], nested=True))[1]
    engine = FakeEngine()
    engine.add(first.inspect(image_id=first.index_digest), "busybox:latest", "busybox:1.36")
    steps = load_steps(images, EngineLookup(engine.inspect, engine.list_images))
    by_tag = {tuple(s.image.tags): s for s in steps}
    assert not by_tag[("busybox:1.36", "busybox:latest")].needs_load
    assert by_tag[("app:1",)].needs_load
    assert by_tag[("app:1",)].missing_tags == ["app:1"]


def test_load_step_properties():
    step = LoadStep(image=None)
    assert step.needs_load and not step.needs_retag
    step = LoadStep(image=None, engine_id="sha256:x", missing_tags=["a:1"])
    assert not step.needs_load and step.needs_retag
    assert LoadStep(image=None).missing_tags is not LoadStep(image=None).missing_tags


# check_requested_in_archive -----------------------------------------------------------------


@pytest.fixture
def archived():
    first, second, untagged = busybox_spec(), app_spec(), ImageSpec(tags=[], runtime={"Cmd": ["u"]})
    images = parse(oci_archive([first, second, untagged], nested=True))[1]
    return {"busybox": first, "app": second, "untagged": untagged}, images


def test_requested_by_tag(archived):
    images = archived[1]
    check_requested_in_archive(["busybox", "busybox:1.36", "docker.io/library/busybox:latest", "app:1"], images)


def test_requested_by_id(archived):
    specs, images = archived
    untagged = specs["untagged"]
    check_requested_in_archive([
        untagged.config_digest, untagged.manifest_digest, untagged.index_digest,
        untagged.config_digest[7:19], "sha256:" + untagged.manifest_digest[7:20], untagged.index_digest[7:],
    ], images)


def test_requested_missing(archived):
    images = archived[1]
    with pytest.raises(ImageNotFound) as info:
        check_requested_in_archive(["busybox:1.35", "app:1", "0123456789abcdef", "BusyBox"], images)
    assert info.value.msg == (
        "Not in the archive: busybox:1.35, 0123456789abcdef, BusyBox (it holds app:1, busybox:1.36, busybox:latest).")


def test_requested_missing_from_untagged_archive():
    images = parse(legacy_archive([ImageSpec(tags=[])]))[1]
    with pytest.raises(ImageNotFound, match=r"\(it holds untagged images only\)"):
        check_requested_in_archive(["busybox"], images)


def test_requested_id_must_be_a_prefix(archived):
    specs, images = archived
    middle = specs["busybox"].config_digest[20:40]
    with pytest.raises(ImageNotFound):
        check_requested_in_archive([middle], images)


def test_requested_nothing(archived):
    check_requested_in_archive([], archived[1])


# diff_ids of wanted images ------------------------------------------------------------------


def test_wanted_images_carry_the_layers_from_inspect():
    engine = FakeEngine()
    spec = ImageSpec(tags=["app:1"], layers=[layer_tar({"a": b"1"}), layer_tar({"b": b"2"})], runtime={"Cmd": ["a"]})
    engine.add(spec.inspect(), "app:1")
    (want,) = wanted_images(["app:1"], engine.inspect)
    assert want.diff_ids == spec.diff_ids
    assert len(want.diff_ids) == 2
    assert want.omitted == 0 and want.archive_image is None


@pytest.mark.parametrize("rootfs", [None, {}, {"Type": "layers"}, {"Type": "layers", "Layers": None}])
def test_wanted_images_without_layers(rootfs):
    engine = FakeEngine()
    engine.add(busybox_spec().inspect(RootFS=rootfs), "busybox:latest")
    assert wanted_images(["busybox:latest"], engine.inspect)[0].diff_ids == []


def test_wanted_diff_ids_are_not_shared_with_inspect():
    engine = FakeEngine()
    info = engine.add(busybox_spec().inspect(), "busybox:latest")
    engine.inspect = lambda ref: info if ref == "busybox:latest" else None
    (want,) = wanted_images(["busybox:latest"], engine.inspect)
    want.diff_ids.append("sha256:" + "0" * 64)
    assert len(info["RootFS"]["Layers"]) == 1


# wanted_from_archive ------------------------------------------------------------------------


def test_from_archive_by_tag(archived):
    specs, images = archived
    (want,) = wanted_from_archive(["busybox"], images)
    image = next(i for i in images if "busybox:latest" in i.tags)
    assert isinstance(want, WantedImage)
    assert want.id == specs["busybox"].config_digest
    assert want.tags == ["busybox:latest"]  # only the requested tag
    assert want.requested_as == ["busybox"]
    assert want.fingerprint == image.fingerprint
    assert want.size == image.size == specs["busybox"].layers_size
    assert want.diff_ids == specs["busybox"].diff_ids
    assert want.archive_image is image
    assert want.omitted == 0


def test_from_archive_two_requests_for_one_image_merge(archived):
    images = archived[1]
    wanted = wanted_from_archive(["docker.io/library/busybox:1.36", "busybox:latest", "busybox"], images)
    assert len(wanted) == 1
    assert wanted[0].tags == ["busybox:1.36", "busybox:latest"]
    assert wanted[0].requested_as == ["docker.io/library/busybox:1.36", "busybox:latest", "busybox"]


@pytest.mark.parametrize("make_request", [
    pytest.param(lambda spec: spec.config_digest, id="full-config-digest"),
    pytest.param(lambda spec: spec.config_digest[7:], id="bare-config-digest"),
    pytest.param(lambda spec: spec.config_digest[7:19], id="short-config-id"),
    pytest.param(lambda spec: "sha256:" + spec.config_digest[7:19], id="short-prefixed"),
    pytest.param(lambda spec: spec.manifest_digest, id="manifest-digest"),
    pytest.param(lambda spec: spec.index_digest[7:20], id="short-index-digest"),
])
def test_from_archive_by_id(archived, make_request):
    specs, images = archived
    spec = specs["untagged"]
    request = make_request(spec)
    (want,) = wanted_from_archive([request], images)
    assert want.id == spec.config_digest
    assert want.tags == []
    assert want.requested_as == [request]
    assert want.archive_image.config_digest == spec.config_digest


def test_from_archive_id_and_tag_of_one_image_merge(archived):
    specs, images = archived
    wanted = wanted_from_archive([specs["app"].config_digest[7:19], "app:1"], images)
    assert [(w.id, w.tags, len(w.requested_as)) for w in wanted] == [(specs["app"].config_digest, ["app:1"], 2)]


def test_from_archive_several_images_sorted(archived):
    specs, images = archived
    wanted = wanted_from_archive(["busybox:1.36", specs["untagged"].config_digest, "app:1"], images)
    assert [w.id for w in wanted] == [specs["untagged"].config_digest, specs["app"].config_digest, specs["busybox"].config_digest]
    assert [w.tags for w in wanted] == [[], ["app:1"], ["busybox:1.36"]]


def test_from_archive_unknown_request(archived):
    images = archived[1]
    with pytest.raises(ImageNotFound) as info:
        wanted_from_archive(["busybox:latest", "nginx:1", "0123456789abcdef"], images)
    assert "Not in the archive: nginx:1, 0123456789abcdef" in info.value.msg


def test_from_archive_carries_the_layers_of_a_thin_archive_image():
    spec = ImageSpec(tags=["app:1"], layers=[layer_tar({"a": b"1"}), layer_tar({"b": b"2"})], runtime={"Cmd": ["a"]})
    (image,) = parse(legacy_archive([spec]))[1]
    (want,) = wanted_from_archive(["app:1"], [image])
    assert want.diff_ids == spec.diff_ids
    want.diff_ids.pop()
    assert image.diff_ids == spec.diff_ids  # a copy


def test_from_archive_hex_looking_repository_name():
    spec = ImageSpec(tags=["deadbeefcafe:latest"])
    images = parse(legacy_archive([spec]))[1]
    check_requested_in_archive(["deadbeefcafe"], images)  # accepted as a tag
    (want,) = wanted_from_archive(["deadbeefcafe"], images)
    assert want.tags == ["deadbeefcafe:latest"]


# save_decision and left-out layers ----------------------------------------------------------


def thin_want(tags, omitted):
    wanted = want(tags)
    wanted.omitted = omitted
    return wanted


@pytest.mark.parametrize("recorded_omitted, wanted_omitted", [(None, 0), (0, 0), (2, 2), (5, 5)])
def test_save_up_to_date_when_left_out_layers_agree(recorded_omitted, wanted_omitted):
    extra = {} if recorded_omitted is None else {"omitted_layers": recorded_omitted}
    assert save_decision([thin_want(["a:1"], wanted_omitted)], [record(["a:1"], **extra)], "gzip", "gzip") == (
        True, "the archive already holds exactly the requested images")


@pytest.mark.parametrize("recorded_omitted, wanted_omitted", [(None, 2), (0, 1), (2, 0), (2, 3), (3, 2)])
def test_save_not_up_to_date_when_left_out_layers_differ(recorded_omitted, wanted_omitted):
    extra = {} if recorded_omitted is None else {"omitted_layers": recorded_omitted}
    up_to_date, reason = save_decision([thin_want(["a:1"], wanted_omitted)], [record(["a:1"], **extra)], "gzip", "gzip")
    assert up_to_date is False
    assert reason == "the archive leaves out %d bottom layer(s) of a:1, %d are to be left out" % (recorded_omitted or 0, wanted_omitted)


def test_save_left_out_layers_of_an_untagged_image_name_its_id():
    up_to_date, reason = save_decision([thin_want([], 1)], [record([])], "gzip", "gzip")
    assert not up_to_date
    assert "leaves out 0 bottom layer(s) of %s, 1 are" % ("sha256:" + "1" * 12) in reason


def test_save_left_out_layers_checked_per_image():
    first = want(["a:1"], image_id="sha256:" + "1" * 64, fingerprint="sha256:" + "a" * 64)
    second = want(["b:1"], image_id="sha256:" + "2" * 64, fingerprint="sha256:" + "b" * 64)
    second.omitted = 1
    recorded = [record(["a:1"], fingerprint="sha256:" + "a" * 64, omitted_layers=0),
                record(["b:1"], fingerprint="sha256:" + "b" * 64, omitted_layers=1)]
    assert save_decision([first, second], recorded, "zstd", "zstd")[0] is True
    recorded[0]["omitted_layers"] = 1
    up_to_date, reason = save_decision([first, second], recorded, "zstd", "zstd")
    assert not up_to_date and "of a:1" in reason


def test_save_decision_with_a_thin_archive_record():
    """The sidecar stores ArchiveImage.to_dict(), whose omitted_layers a thin archive sets."""
    spec = busybox_spec()
    image = parse(oci_archive([spec]))[1][0]
    image.omitted_layers = 1
    engine = FakeEngine()
    engine.add(spec.inspect(), "busybox:latest", "busybox:1.36")
    wanted = wanted_images(["busybox:latest", "busybox:1.36"], engine.inspect)
    assert not save_decision(wanted, [image.to_dict()], "gzip", "gzip")[0]
    wanted[0].omitted = 1
    assert save_decision(wanted, [image.to_dict()], "gzip", "gzip")[0] is True
