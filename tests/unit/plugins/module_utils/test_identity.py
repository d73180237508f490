# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import copy
import re
from datetime import datetime

import pytest
from archive_factory import ImageSpec, layer_tar

from ansible_collections.airgap.docker.plugins.module_utils.identity import (
    RUNTIME_KEYS,
    fingerprint,
    fingerprint_from_config_blob,
    fingerprint_from_inspect,
    normalize_created,
    runtime_config,
)

NOON = 1709294400  # 2024-03-01T12:00:00Z
DIFF_IDS = ["sha256:" + "a" * 64, "sha256:" + "b" * 64]
BASE_CONFIG = {
    "Cmd": ["/bin/sh", "-c", "echo hi"],
    "Entrypoint": None,
    "Env": ["PATH=/usr/bin:/bin", "LANG=C.UTF-8"],
    "WorkingDir": "/srv",
    "User": "1000",
    "Labels": {"org.opencontainers.image.title": "demo", "maintainer": "ops"},
    "ExposedPorts": {"80/tcp": {}, "443/tcp": {}},
    "Volumes": {"/data": {}},
}


def fp(diff_ids=None, created="2024-03-01T12:00:00Z", os_name="linux", arch="amd64", variant=None, config=None):
    return fingerprint(DIFF_IDS if diff_ids is None else diff_ids, created, os_name, arch, variant, BASE_CONFIG if config is None else config)


# normalize_created --------------------------------------------------------------------------


def test_noon_matches_independent_computation():
    assert int(datetime.fromisoformat("2024-03-01T12:00:00+00:00").timestamp()) == NOON
    assert normalize_created("2024-03-01T12:00:00Z") == "1709294400.000000000"


@pytest.mark.parametrize("value, expected", [
    ("2024-03-01T12:00:00Z", "%d.000000000" % NOON),
    ("2024-03-01T12:00:00z", "%d.000000000" % NOON),
    ("2024-03-01t12:00:00Z", "%d.000000000" % NOON),
    ("2024-03-01 12:00:00Z", "%d.000000000" % NOON),
    ("2024-03-01T12:00:00", "%d.000000000" % NOON),  # no zone: UTC
    ("2024-03-01T12:00:00+00:00", "%d.000000000" % NOON),
    ("2024-03-01T12:00:00-00:00", "%d.000000000" % NOON),
    ("2024-03-01T14:00:00+02:00", "%d.000000000" % NOON),
    ("2024-03-01T06:30:00-05:30", "%d.000000000" % NOON),
    ("2024-03-02T01:45:00+13:45", "%d.000000000" % NOON),
    ("2024-03-01T12:00:00.5Z", "%d.500000000" % NOON),
    ("2024-03-01T12:00:00.50Z", "%d.500000000" % NOON),
    ("2024-03-01T12:00:00.500000000Z", "%d.500000000" % NOON),
    ("2024-03-01T12:00:00.000001Z", "%d.000001000" % NOON),
    ("2024-03-01T12:00:00.123Z", "%d.123000000" % NOON),
    ("2024-03-01T12:00:00.123456Z", "%d.123456000" % NOON),
    ("2024-03-01T12:00:00.123456789Z", "%d.123456789" % NOON),
    ("2024-03-01T12:00:00.1234567891234Z", "%d.123456789" % NOON),  # beyond nanoseconds: cut
    ("2024-03-01T14:00:00.25+02:00", "%d.250000000" % NOON),
    ("  2024-03-01T12:00:00Z\n", "%d.000000000" % NOON),
    ("1970-01-01T00:00:00Z", "0.000000000"),
    ("2000-02-29T23:59:59Z", "951868799.000000000"),
])
def test_normalize_created(value, expected):
    assert normalize_created(value) == expected


@pytest.mark.parametrize("value", [None, "", "0001-01-01T00:00:00Z", "0001-01-01T00:00:00.000000000Z"])
def test_normalize_created_none_and_zero_time(value):
    assert normalize_created(value) == ""


@pytest.mark.parametrize("value", ["yesterday", "2024-03-01", "1709294400", "2024-03-01T12:00Z"])
def test_normalize_created_leaves_unknown_forms(value):
    assert normalize_created(value) == value


def test_same_instant_in_different_forms_is_equal():
    forms = ["2024-03-01T12:00:00.1Z", "2024-03-01T13:00:00.100+01:00", "2024-03-01T07:00:00.100000000-05:00"]
    assert len({normalize_created(f) for f in forms}) == 1


def test_one_nanosecond_apart_differs():
    assert normalize_created("2024-03-01T12:00:00.000000001Z") != normalize_created("2024-03-01T12:00:00Z")


# runtime_config -----------------------------------------------------------------------------


def test_runtime_config_keeps_runtime_keys_only():
    config = dict(BASE_CONFIG, Hostname="abc", Image="sha256:" + "c" * 64, AttachStdout=False, ArgsEscaped=True)
    result = runtime_config(config)
    assert set(result) <= set(RUNTIME_KEYS)
    assert "Hostname" not in result and "Image" not in result
    assert result["Cmd"] == ["/bin/sh", "-c", "echo hi"]
    assert result["ExposedPorts"] == ["443/tcp", "80/tcp"]
    assert result["Volumes"] == ["/data"]
    assert result["Labels"] == [("maintainer", "ops"), ("org.opencontainers.image.title", "demo")]
    assert "Entrypoint" not in result  # None dropped


@pytest.mark.parametrize("config", [None, {}, {"Cmd": None}, {"Env": []}, {"Labels": {}}, {"WorkingDir": ""},
                                    {"Cmd": None, "Env": [], "Labels": {}, "Volumes": None, "OnBuild": [], "User": ""}])
def test_runtime_config_empty(config):
    assert runtime_config(config) == {}


@pytest.mark.parametrize("key", RUNTIME_KEYS)
def test_every_runtime_key_counts(key):
    value = {"ExposedPorts": {"8080/tcp": {}}, "Volumes": {"/v": {}}, "Labels": {"k": "v"}}.get(key, ["x"])
    without = {k: v for k, v in BASE_CONFIG.items() if k != key}
    assert fp(config=dict(without, **{key: value})) != fp(config=without)


# fingerprint --------------------------------------------------------------------------------


def test_fingerprint_form_and_determinism():
    value = fp()
    assert re.match(r"^sha256:[0-9a-f]{64}$", value)
    assert fp() == value
    assert fingerprint(list(DIFF_IDS), "2024-03-01T12:00:00Z", "linux", "amd64", None, copy.deepcopy(BASE_CONFIG)) == value


@pytest.mark.parametrize("empty", [None, [], {}, ""])
def test_empty_runtime_values_are_equal(empty):
    reference = fp(config=dict(BASE_CONFIG, Entrypoint=None, OnBuild=None, Shell=None))
    assert fp(config=dict(BASE_CONFIG, Entrypoint=empty, OnBuild=empty, Shell=empty)) == reference
    # and leaving the keys out altogether
    assert fp(config={k: v for k, v in BASE_CONFIG.items() if k != "Entrypoint"}) == reference


def test_empty_config_forms_are_equal():
    assert fp(config={}) == fingerprint(DIFF_IDS, "2024-03-01T12:00:00Z", "linux", "amd64", None, None)
    assert fp(config={"Cmd": None, "Env": [], "Labels": {}}) == fp(config={})


def test_empty_diff_ids_forms_are_equal():
    args = ("2024-03-01T12:00:00Z", "linux", "amd64", None, BASE_CONFIG)
    assert fingerprint(None, *args) == fingerprint([], *args)


def test_map_order_does_not_count():
    reordered = dict(BASE_CONFIG,
                     Labels={"maintainer": "ops", "org.opencontainers.image.title": "demo"},
                     ExposedPorts={"443/tcp": {}, "80/tcp": {}})
    assert fp(config=reordered) == fp()
    assert fp(config=dict(reversed(list(BASE_CONFIG.items())))) == fp()


def test_non_runtime_keys_do_not_count():
    assert fp(config=dict(BASE_CONFIG, Hostname="x", Domainname="y", Image="z", AttachStdin=True)) == fp()


def test_created_forms_are_equal():
    assert fp(created="2024-03-01T12:00:00Z") == fp(created="2024-03-01T13:00:00.000+01:00")
    assert fp(created=None) == fp(created="0001-01-01T00:00:00Z") == fp(created="")


@pytest.mark.parametrize("change", [
    {"config": dict(BASE_CONFIG, Cmd=["/bin/sh", "-c", "echo bye"])},
    {"config": dict(BASE_CONFIG, Entrypoint=["/entry"])},
    {"config": dict(BASE_CONFIG, Env=list(reversed(BASE_CONFIG["Env"])))},  # Env order matters
    {"config": dict(BASE_CONFIG, Labels={"maintainer": "dev", "org.opencontainers.image.title": "demo"})},
    {"config": dict(BASE_CONFIG, ExposedPorts={"80/tcp": {}})},
    {"config": dict(BASE_CONFIG, User="root")},
    {"config": dict(BASE_CONFIG, Healthcheck={"Test": ["CMD", "true"]})},
    {"diff_ids": DIFF_IDS[:1]},
    {"diff_ids": list(reversed(DIFF_IDS))},
    {"diff_ids": DIFF_IDS + ["sha256:" + "c" * 64]},
    {"created": "2024-03-01T12:00:01Z"},
    {"created": "2024-03-01T12:00:00.000000001Z"},
    {"created": "2024-03-01T12:00:00+01:00"},
    {"os_name": "windows"},
    {"arch": "arm64"},
    {"variant": "v8"},
])
def test_fingerprint_changes(change):
    assert fp(**change) != fp()


# config blob vs inspect ---------------------------------------------------------------------


def inspect_of(blob, **overrides):
    """The engine's inspect view of a config blob."""
    info = {
        "Id": "sha256:" + "f" * 64,
        "RepoTags": ["demo:1"],
        "RepoDigests": [],
        "Created": blob.get("created"),
        "Os": blob.get("os"),
        "Architecture": blob.get("architecture"),
        "RootFS": {"Type": "layers", "Layers": list((blob.get("rootfs") or {}).get("diff_ids") or [])},
        "Config": dict(blob.get("config") or {}, Hostname="", Domainname="", Image="", OnBuild=None),
        "Size": 1234,
        "Metadata": {"LastTagTime": "2024-05-05T00:00:00Z"},
    }
    if blob.get("variant"):
        info["Variant"] = blob["variant"]
    info.update(overrides)
    return info


def blob_of(**overrides):
    blob = {
        "architecture": "amd64",
        "os": "linux",
        "created": "2024-03-01T12:00:00.5Z",
        "config": copy.deepcopy(BASE_CONFIG),
        "rootfs": {"type": "layers", "diff_ids": list(DIFF_IDS)},
        "history": [{"created_by": "test"}],
    }
    blob.update(overrides)
    return blob


def test_blob_and_inspect_agree():
    blob = blob_of()
    assert fingerprint_from_config_blob(blob) == fingerprint_from_inspect(inspect_of(blob))
    assert fingerprint_from_config_blob(blob) == fp(created="2024-03-01T12:00:00.5Z")


def test_blob_and_inspect_agree_with_variant():
    blob = blob_of(architecture="arm", variant="v7")
    assert fingerprint_from_config_blob(blob) == fingerprint_from_inspect(inspect_of(blob))
    assert fingerprint_from_config_blob(blob) != fingerprint_from_config_blob(blob_of(architecture="arm"))


def test_blob_and_inspect_agree_across_time_and_empty_forms():
    blob = blob_of(created="2024-03-01T13:00:00.500+01:00", config=dict(BASE_CONFIG, Entrypoint=[], Shell=None))
    info = inspect_of(blob_of(), Created="2024-03-01T12:00:00.5Z")
    info["Config"]["Entrypoint"] = None
    assert fingerprint_from_config_blob(blob) == fingerprint_from_inspect(info)


def test_blob_without_created_matches_inspect_zero_time():
    blob = blob_of()
    del blob["created"]
    assert fingerprint_from_config_blob(blob) == fingerprint_from_inspect(inspect_of(blob, Created="0001-01-01T00:00:00Z"))


def test_blob_without_rootfs_or_config():
    blob = {"architecture": "amd64", "os": "linux"}
    info = {"Architecture": "amd64", "Os": "linux", "RootFS": None, "Config": None}
    assert fingerprint_from_config_blob(blob) == fingerprint_from_inspect(info)


def test_blob_and_inspect_differ_when_content_differs():
    blob = blob_of()
    assert fingerprint_from_config_blob(blob) != fingerprint_from_inspect(inspect_of(blob, Created="2024-03-01T12:00:01Z"))
    other = inspect_of(blob)
    other["RootFS"]["Layers"] = DIFF_IDS[:1]
    assert fingerprint_from_config_blob(blob) != fingerprint_from_inspect(other)
    other = inspect_of(blob)
    other["Config"]["Cmd"] = ["true"]
    assert fingerprint_from_config_blob(blob) != fingerprint_from_inspect(other)


def test_factory_image_blob_and_inspect_agree():
    image = ImageSpec(tags=["x:1"], layers=[layer_tar({"a": b"1"}), layer_tar({"b": b"2"})], variant="v8", architecture="arm64")
    assert fingerprint_from_config_blob(image.config) == fingerprint_from_inspect(image.inspect())
