# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Image references: the familiar `repo:tag` form Docker prints, and image IDs."""

from __future__ import annotations

import re

from ansible_collections.airgap.docker.plugins.module_utils.errors import InvalidInput

DEFAULT_TAG = "latest"
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
_ID_LIKE = re.compile(r"^(sha256:)?[0-9a-f]{12,64}$")
_TAG = re.compile(r"^[\w][\w.-]{0,127}$", re.ASCII)
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
# A first component is a registry host only when it has a dot or a port, or is localhost (Docker's rule).
_REGISTRY = r"(?:(?:[a-zA-Z0-9-]+(?:\.[a-zA-Z0-9-]+)+|localhost)(?::[0-9]+)?|[a-zA-Z0-9-]+:[0-9]+)/"
_REPO = re.compile(r"^(?:%s)?%s(?:/%s)*$" % (_REGISTRY, _COMPONENT, _COMPONENT), re.ASCII)
_DEFAULT_REGISTRIES = ("docker.io/", "index.docker.io/", "registry-1.docker.io/")


def is_digest(value):
    """True for a full `sha256:<64 hex>` digest."""
    return bool(_DIGEST.match(value or ""))


def looks_like_id(value):
    """True for a full or short image ID, with or without the `sha256:` prefix."""
    return bool(_ID_LIKE.match(value or ""))


def full_id(value):
    """`abc...` or `sha256:abc...` as `sha256:abc...`."""
    return value if value.startswith("sha256:") else "sha256:" + value


def split_reference(ref):
    """Split `repo[:tag][@digest]` into (repo, tag, digest); the tag may be None."""
    ref = ref.strip()
    digest = None
    if "@" in ref:
        ref, digest = ref.split("@", 1)
    repo, tag = ref, None
    last = ref.rsplit("/", 1)[-1]
    if ":" in last:
        repo, tag = ref.rsplit(":", 1)
    return repo, tag, digest


def familiar_repo(repo):
    """Strip the implicit Docker Hub registry and `library/` namespace, as Docker prints names."""
    for prefix in _DEFAULT_REGISTRIES:
        if repo.startswith(prefix):
            repo = repo[len(prefix):]
            break
    if repo.startswith("library/") and repo.count("/") == 1:
        repo = repo[len("library/"):]
    return repo


def normalize_tag_reference(ref):
    """`busybox` -> `busybox:latest`; `docker.io/library/busybox:1` -> `busybox:1`.

    Raises InvalidInput for something that cannot be an image name.
    """
    if not ref or not ref.strip():
        raise InvalidInput("An image name must not be empty.")
    repo, tag, digest = split_reference(ref)
    if digest is not None:
        raise InvalidInput(
            "Image reference %r has a digest; name the image by repo:tag or by ID, "
            "since a loaded image has no registry digest." % ref
        )
    if not _REPO.match(repo):
        raise InvalidInput("%r is not a valid image name (repository names are lowercase letters, digits and . _ - /)." % ref)
    if tag == "":
        raise InvalidInput("%r has an empty tag; leave out the colon to mean %s." % (ref, DEFAULT_TAG))
    tag = tag or DEFAULT_TAG
    if not _TAG.match(tag):
        raise InvalidInput("%r has an invalid tag %r." % (ref, tag))
    return "%s:%s" % (familiar_repo(repo), tag)


def has_registry(repo):
    """Whether a repository names its registry: a first component with a dot or a port, or
    `localhost` (Docker's rule; `steer/app` is on Docker Hub)."""
    first = repo.split("/", 1)[0]
    return "/" in repo and ("." in first or ":" in first or first == "localhost")


def full_name(ref):
    """`app:1` -> `docker.io/library/app:1`, as the containerd image store names images."""
    repo, tag = split_repo_tag(ref)
    if "/" not in repo:
        repo = "docker.io/library/" + repo
    elif not has_registry(repo):
        repo = "docker.io/" + repo
    return "%s:%s" % (repo, tag)


def split_repo_tag(ref):
    """`repo:tag` (already normalised) -> (repo, tag)."""
    repo, tag = split_reference(ref)[:2]
    return repo, tag or DEFAULT_TAG
