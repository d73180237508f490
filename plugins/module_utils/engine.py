# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The one client every module uses to talk to a Docker engine (Docker SDK for Python).

It never pulls and never removes images; every failure becomes an EngineError whose message
names the engine's address.
"""

from __future__ import annotations

import http.client
import json
import os
import traceback
from contextlib import contextmanager

from ansible_collections.airgap.docker.plugins.module_utils.constants import DEFAULT_HOST
from ansible_collections.airgap.docker.plugins.module_utils.errors import EngineError, InvalidInput, NotFound
from ansible_collections.airgap.docker.plugins.module_utils.podman_names import (
    familiar_archive_names,
    familiar_names,
    is_podman,
    podman_reference,
)
from ansible_collections.airgap.docker.plugins.module_utils.streaming import CHUNK

DOCKER_IMPORT_ERROR = None
try:
    import docker
    import docker.errors
    import docker.tls
    import requests.exceptions
    import urllib3.exceptions
except ImportError:  # pragma: no cover - depends on the managed host
    docker = None
    DOCKER_IMPORT_ERROR = traceback.format_exc()

CLASSIC = "classic"
CONTAINERD = "containerd"
PLATFORM_MIN_API = (1, 48)
# Image inspect takes a platform from API 1.49 (Docker 28.1); before, it shows the default platform.
PLATFORM_INSPECT_MIN_API = (1, 49)


def _api_tuple(version):
    major, minor = (str(version).split(".") + ["0"])[:2]
    return int(major), int(minor or 0)


class EngineClient:
    """A connection to one Docker engine, from the shared connection options."""

    def __init__(self, docker_host=None, tls=False, validate_certs=False, ca_path=None, client_cert=None,
                 client_key=None, api_version=None, timeout=None):
        self.host = docker_host or DEFAULT_HOST
        tls_config = _tls_config(tls, validate_certs, ca_path, client_cert, client_key)
        base_url = self.host
        if tls_config and base_url.startswith("tcp://"):
            base_url = "https://" + base_url[len("tcp://"):]
        with self._errors("connecting"):
            self.api = docker.APIClient(
                base_url=base_url, version=api_version or "auto", timeout=timeout, tls=tls_config,
                user_agent="airgap.docker",
            )
        self._info = None
        self._version = None

    @contextmanager
    def _errors(self, action, subject=None):
        try:
            yield
        except docker.errors.NotFound as exc:
            raise NotFound(_explanation(exc) or "%s was not found" % subject)
        except docker.errors.APIError as exc:
            raise EngineError("The Docker engine at %s refused %s%s: %s." % (
                self.host, action, (" " + subject) if subject else "", _explanation(exc)))
        except (docker.errors.DockerException, requests.exceptions.RequestException, urllib3.exceptions.HTTPError,
                http.client.HTTPException, OSError) as exc:
            if action == "connecting":
                raise EngineError("Cannot reach the Docker engine at %s: %s." % (self.host, _reason(exc)))
            raise EngineError("The connection to the Docker engine at %s failed while %s%s: %s." % (
                self.host, action, (" " + subject) if subject else "", _reason(exc)))

    # Facts about the engine ------------------------------------------------------------

    @property
    def api_version(self):
        return self.api._version

    def version(self):
        if self._version is None:
            with self._errors("reading the version"):
                self._version = self.api.version()
        return self._version

    def info(self):
        if self._info is None:
            with self._errors("reading engine information"):
                self._info = self.api.info()
        return self._info

    def storage(self):
        """`containerd` for the containerd image store, else `classic` (graph drivers)."""
        for key, value in self.info().get("DriverStatus") or []:
            if key == "driver-type" and "snapshotter" in str(value):
                return CONTAINERD
        return CLASSIC

    @property
    def podman(self):
        """True when the engine is Podman's Docker-compatible service."""
        return is_podman(self.version())

    def facts(self):
        """Engine facts recorded in sidecars and returned to the user."""
        version = self.version()
        facts = {
            "version": version.get("Version"),
            "api_version": self.api_version,
            "storage": self.storage(),
            "storage_driver": self.info().get("Driver"),
            "os": version.get("Os"),
            "arch": version.get("Arch"),
        }
        if self.podman:
            facts["engine"] = "podman"
        return facts

    def check_platform_support(self, platform):
        if platform and _api_tuple(self.api_version) < PLATFORM_MIN_API:
            if self.podman:
                raise InvalidInput(
                    "platform needs Docker API 1.48 or newer, and the Podman engine at %s speaks API %s: "
                    "leave platform out, or save and load there with the podman CLI's --platform." % (self.host, self.api_version))
            raise InvalidInput(
                "platform needs Docker API 1.48 or newer (Docker 28+); the engine at %s speaks API %s."
                % (self.host, self.api_version)
            )

    # Images ------------------------------------------------------------------------------

    def inspect_image(self, ref, platform=None):
        """The engine's view of an image (of that platform, where the engine can tell), or None when it has none."""
        try:
            with self._errors("inspecting image", ref):
                if platform and _api_tuple(self.api_version) >= PLATFORM_INSPECT_MIN_API:
                    response = self.api._get(self.api._url("/images/{0}/json", ref), params={"platform": _platform_json(platform)})
                    return self._as_docker(self.api._result(response, json=True))
                return self._as_docker(self.api.inspect_image(ref))
        except NotFound:
            return None

    def list_images(self, intermediate=False):
        """Tagged and dangling images; with intermediate, also the build steps below them."""
        with self._errors("listing images"):
            return [self._as_docker(image) for image in self.api.images(all=intermediate)]

    def _as_docker(self, image):
        """An image as Docker shows it: on Podman, its names in familiar form (podman_names)."""
        if self.podman and image.get("RepoTags"):
            image["RepoTags"] = familiar_names(image["RepoTags"])
        return image

    def tag(self, image_id, reference):
        if self.podman:
            reference = podman_reference(reference)
        repo, tag = reference.rsplit(":", 1)
        with self._errors("tagging", "%s as %s" % (image_id, reference)):
            self.api.tag(image_id, repo, tag, force=True)

    # Containers ----------------------------------------------------------------------------

    def inspect_container(self, ref, size=False):
        """The engine's view of a container (with SizeRootFs when size), or None."""
        try:
            with self._errors("inspecting container", ref):
                return self.api.inspect_container(ref) if not size else self.api._result(
                    self.api._get(self.api._url("/containers/{0}/json", ref), params={"size": 1}), True)
        except NotFound:
            return None

    def pause(self, container_id):
        with self._errors("pausing container", container_id):
            self.api.pause(container_id)

    def unpause(self, container_id):
        with self._errors("unpausing container", container_id):
            self.api.unpause(container_id)

    def export_stream(self, container_id):
        """Yield the bytes of `docker export` of a container."""
        return self._get_stream(self.api._url("/containers/{0}/export", container_id), None, "exporting container", container_id)

    # Image transfer --------------------------------------------------------------------------

    def save_stream(self, names, platform=None):
        """Yield the bytes of `docker save` for names (one request, one tar)."""
        params = {"names": list(names)}
        if platform:
            params["platform"] = _platform_json(platform)
        blocks = self._get_stream(self.api._url("/images/get"), params, "saving", ", ".join(names))
        return familiar_archive_names(blocks) if self.podman else blocks

    def _get_stream(self, url, params, action, subject):
        """Yield the body of a streamed GET in blocks of streaming.CHUNK; errors name the action.

        Read from the raw response: iter_content yields each HTTP chunk as it came (32 KiB from
        dockerd), and at 30,000 blocks a GiB the per-block work downstream (queue, hashing,
        writes) took CPU from the engine on a small host.
        """
        with self._errors(action, subject):
            response = self.api._get(url, params=params, stream=True)
            self.api._raise_for_status(response)
        try:
            with self._errors(action, subject):
                while True:
                    block = response.raw.read(CHUNK, decode_content=True)
                    if not block:
                        return
                    yield block
        finally:
            response.close()

    def load(self, body, platform=None):
        """POST the tar produced by the iterable `body`; return the engine's messages.

        The engine answers with a stream of JSON messages; an error message (also one sent
        after a success status) raises EngineError.
        """
        params = {"quiet": "1"}
        if platform:
            params["platform"] = _platform_json(platform)
        with self._errors("loading images"):
            response = self.api._post(self.api._url("/images/load"), data=body, params=params, stream=True,
                                      headers={"Content-Type": "application/x-tar"})
            self.api._raise_for_status(response)
            messages = _json_messages(response.iter_content(65536, decode_unicode=False))
        errors = load_errors(messages)
        if errors:
            raise EngineError("The Docker engine at %s failed to load the archive: %s." % (self.host, "; ".join(errors)))
        return messages


# Docker 28's containerd image store answers 200 to a load whose layers it cannot unpack, and says
# so only in a progress line, after having tagged the image.
UNPACK_FAILURE = "Error unpacking image"


def load_errors(messages):
    """The errors among a load's messages, each on one line: error messages, and progress lines
    that report a failed unpack."""
    errors = []
    for message in messages:
        text = message.get("error") or (message.get("errorDetail") or {}).get("message")
        stream = message.get("stream")
        if not text and isinstance(stream, str) and stream.lstrip().startswith(UNPACK_FAILURE):
            text = stream
        if text:
            errors.append(" ".join(str(text).split()).rstrip("."))
    return errors


def _tls_config(tls, validate_certs, ca_path, client_cert, client_key):
    if not (tls or validate_certs):
        return None
    if bool(client_cert) != bool(client_key):
        raise InvalidInput("client_cert and client_key must be given together.")
    for option, path in (("ca_path", ca_path), ("client_cert", client_cert), ("client_key", client_key)):
        if path and not os.path.isfile(path):
            raise InvalidInput("%s %s does not exist." % (option, path))
    cert = (client_cert, client_key) if client_cert else None
    return docker.tls.TLSConfig(client_cert=cert, ca_cert=ca_path, verify=bool(validate_certs))


def _platform_json(platform):
    parts = platform.split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise InvalidInput("platform %r must look like os/arch or os/arch/variant, e.g. linux/amd64." % platform)
    spec = {"os": parts[0], "architecture": parts[1]}
    if len(parts) == 3:
        spec["variant"] = parts[2]
    return json.dumps(spec)


def _json_messages(blocks):
    decoder = json.JSONDecoder()
    text = "".join(block.decode("utf-8", "replace") for block in blocks)
    messages, pos = [], 0
    while True:
        while pos < len(text) and text[pos] in " \t\r\n":
            pos += 1
        if pos >= len(text):
            return messages
        try:
            message, pos = decoder.raw_decode(text, pos)
        except ValueError:
            messages.append({"stream": text[pos:]})
            return messages
        if isinstance(message, dict):
            messages.append(message)


def _explanation(exc):
    text = getattr(exc, "explanation", None) or str(exc)
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return text.strip().rstrip(".")


def _reason(exc):
    text = str(exc)
    for marker in ("Connection refused", "No such file or directory", "Permission denied", "timed out", "Name or service not known"):
        if marker in text:
            return marker.lower() if marker != "Permission denied" else "permission denied (is the user in the docker group?)"
    return text.strip().rstrip(".")[:300]
