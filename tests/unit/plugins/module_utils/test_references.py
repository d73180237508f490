# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import pytest

from ansible_collections.airgap.docker.plugins.module_utils.errors import InvalidInput
from ansible_collections.airgap.docker.plugins.module_utils.references import (
    DEFAULT_TAG,
    familiar_repo,
    full_id,
    is_digest,
    looks_like_id,
    normalize_tag_reference,
    split_reference,
    split_repo_tag,
)

HEX64 = "0123456789abcdef" * 4
DIGEST = "sha256:" + HEX64


@pytest.mark.parametrize("value, expected", [
    (DIGEST, True),
    ("sha256:" + HEX64[:63], False),
    ("sha256:" + HEX64 + "0", False),
    ("sha256:" + HEX64.upper(), False),
    (HEX64, False),  # no algorithm
    ("sha512:" + HEX64, False),
    ("", False),
    (None, False),
])
def test_is_digest(value, expected):
    assert is_digest(value) is expected


@pytest.mark.parametrize("value, expected", [
    (DIGEST, True),
    (HEX64, True),
    (HEX64[:12], True),
    ("sha256:" + HEX64[:12], True),
    (HEX64[:11], False),  # too short to be an ID
    (HEX64 + "0", False),
    (HEX64[:12].upper(), False),
    ("busybox", False),
    ("deadbeefcafe:1", False),
    ("sha256:", False),
    ("", False),
    (None, False),
])
def test_looks_like_id(value, expected):
    assert looks_like_id(value) is expected


def test_full_id():
    assert full_id(HEX64) == DIGEST
    assert full_id(DIGEST) == DIGEST
    assert full_id(HEX64[:12]) == "sha256:" + HEX64[:12]


@pytest.mark.parametrize("ref, expected", [
    ("busybox", ("busybox", None, None)),
    ("busybox:1.36", ("busybox", "1.36", None)),
    ("library/busybox:latest", ("library/busybox", "latest", None)),
    ("docker.io/library/busybox:1", ("docker.io/library/busybox", "1", None)),
    ("localhost:5000/app", ("localhost:5000/app", None, None)),
    ("localhost:5000/app:v2", ("localhost:5000/app", "v2", None)),
    ("registry.example.com:443/team/app:1.0-rc1", ("registry.example.com:443/team/app", "1.0-rc1", None)),
    ("busybox@" + DIGEST, ("busybox", None, DIGEST)),
    ("busybox:1@" + DIGEST, ("busybox", "1", DIGEST)),
    ("  busybox:1 \n", ("busybox", "1", None)),
])
def test_split_reference(ref, expected):
    assert split_reference(ref) == expected


@pytest.mark.parametrize("repo, expected", [
    ("busybox", "busybox"),
    ("library/busybox", "busybox"),
    ("docker.io/library/busybox", "busybox"),
    ("index.docker.io/library/busybox", "busybox"),
    ("registry-1.docker.io/library/busybox", "busybox"),
    ("docker.io/busybox", "busybox"),
    ("docker.io/bitnami/redis", "bitnami/redis"),
    ("library/team/app", "library/team/app"),  # not the official-images namespace
    ("quay.io/library/busybox", "quay.io/library/busybox"),
    ("ghcr.io/org/app", "ghcr.io/org/app"),
    ("localhost:5000/library/app", "localhost:5000/library/app"),
    ("mydocker.io/app", "mydocker.io/app"),
])
def test_familiar_repo(repo, expected):
    assert familiar_repo(repo) == expected


@pytest.mark.parametrize("ref, expected", [
    ("busybox", "busybox:latest"),
    ("busybox:1.36", "busybox:1.36"),
    ("docker.io/library/busybox", "busybox:latest"),
    ("docker.io/library/busybox:1", "busybox:1"),
    ("index.docker.io/library/busybox:1", "busybox:1"),
    ("library/busybox:musl", "busybox:musl"),
    ("docker.io/bitnami/redis:7", "bitnami/redis:7"),
    ("ghcr.io/org/app:v1", "ghcr.io/org/app:v1"),
    ("localhost:5000/app", "localhost:5000/app:latest"),
    ("localhost:5000/app:1", "localhost:5000/app:1"),
    ("  app:1  ", "app:1"),
    ("app:" + "t" * 128, "app:" + "t" * 128),
    ("app:_underscore.dot-dash", "app:_underscore.dot-dash"),
])
def test_normalize_tag_reference(ref, expected):
    assert normalize_tag_reference(ref) == expected


@pytest.mark.parametrize("ref, text", [
    ("", "empty"),
    ("   ", "empty"),
    (None, "empty"),
    ("busybox@" + DIGEST, "digest"),
    ("busybox:1@" + DIGEST, "digest"),
    ("BusyBox", "not a valid image name"),
    ("Foo/app:1", "not a valid image name"),  # without a dot or port, Foo is a path component: lowercase only
    ("app:bad/tag", "not a valid image name"),
    ("my app:1", "not a valid image name"),
    ("app:-leading-dash", "invalid tag"),
    ("app:.leading-dot", "invalid tag"),
    ("app:" + "t" * 129, "invalid tag"),
])
def test_normalize_tag_reference_rejects(ref, text):
    with pytest.raises(InvalidInput) as info:
        normalize_tag_reference(ref)
    assert text in info.value.msg


def test_normalize_tag_reference_rejects_empty_tag():
    """`busybox:` is not a reference Docker accepts (invalid reference format); it must not
    silently become `busybox:latest`."""
    with pytest.raises(InvalidInput):
        normalize_tag_reference("busybox:")


def test_normalize_is_idempotent():
    for ref in ("busybox", "docker.io/library/busybox:1", "localhost:5000/app", "ghcr.io/org/app:v1"):
        once = normalize_tag_reference(ref)
        assert normalize_tag_reference(once) == once


def test_split_repo_tag():
    assert split_repo_tag("busybox:1") == ("busybox", "1")
    assert split_repo_tag("busybox") == ("busybox", DEFAULT_TAG)
    assert split_repo_tag("localhost:5000/app") == ("localhost:5000/app", "latest")
    assert split_repo_tag("localhost:5000/app:2") == ("localhost:5000/app", "2")


@pytest.mark.parametrize("ref,expected", [
    ("Registry.local/app:1", "Registry.local/app:1"),  # registry hosts may have capitals
    ("localhost:5000/team/app", "localhost:5000/team/app:latest"),
    ("localhost/app:2", "localhost/app:2"),
    ("my-registry:5000/app", "my-registry:5000/app:latest"),
])
def test_registry_hosts_follow_dockers_rules(ref, expected):
    assert normalize_tag_reference(ref) == expected
