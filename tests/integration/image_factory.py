"""Builds small multi-layer test images on a test engine, without ever pulling."""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import shutil
import subprocess
import tarfile
import time
import uuid
from pathlib import Path

BUSYBOX = "/bin/busybox"

# Test images are named airgap-test/s<pid>-<letter><hex>: the pid of the pytest session that made
# them, so that a session removes the leftovers of sessions that died, never another live one's.
TEST_REPO_PREFIX = "airgap-test/"
_SESSION_PREFIX = "%ss%d-" % (TEST_REPO_PREFIX, os.getpid())


def test_repository(letter="t"):
    """A fresh repository name belonging to this test session."""
    return "%s%s%s" % (_SESSION_PREFIX, letter, uuid.uuid4().hex[:10])


def _session_alive(pid):
    try:
        return b"pytest" in Path("/proc/%d/cmdline" % pid).read_bytes()
    except OSError:
        return False


def abandoned_test_tag(tag):
    """True for a test image tag whose session is gone (or which predates session names)."""
    if not tag.startswith(TEST_REPO_PREFIX):
        return False
    session = tag[len(TEST_REPO_PREFIX):].split("-", 1)[0]
    if not (session.startswith("s") and session[1:].isdigit()):
        return True
    return int(session[1:]) != os.getpid() and not _session_alive(int(session[1:]))


class ImageFactory:
    def __init__(self, name, host, client, context_root):
        self.name = name
        self.host = host
        self.client = client
        self.context_root = context_root

    def build(self, tag, marker="", extra_lines=(), random_bytes=0):
        """A FROM scratch image with busybox and a marker file; returns its ID."""
        context = self.context_root / hashlib.sha1((tag + marker).encode()).hexdigest()[:12]
        context.mkdir(exist_ok=True)
        shutil.copy(BUSYBOX, context / "busybox")
        lines = [
            "FROM scratch",
            "COPY busybox /bin/busybox",
            'RUN ["/bin/busybox", "--install", "-s", "/bin"]',
            # COPY, not RUN echo: the marker layer then needs no container (the two layers
            # above come from the build cache after the first build on an engine).
            "COPY marker.txt /marker.txt",
        ]
        (context / "marker.txt").write_text((marker or tag) + "\n")
        if random_bytes:
            with open(context / "random.bin", "wb") as handle:
                handle.write(os.urandom(random_bytes))
            lines.append("COPY random.bin /random.bin")
        lines += list(extra_lines)
        if not any(line.startswith("CMD") for line in extra_lines):
            lines.append('CMD ["/bin/sh", "-c", "cat /marker.txt"]')
        (context / "Dockerfile").write_text("\n".join(lines) + "\n")
        for message in self.client.build(path=str(context), tag=tag, rm=True, forcerm=True, pull=False, decode=True):
            if "error" in message:
                raise AssertionError("building %s on %s failed: %s" % (tag, self.name, message["error"]))
        return self.client.inspect_image(tag)["Id"]

    def build_on(self, base, tag, lines):
        """An image FROM base (which must be in this engine: nothing is pulled) plus lines."""
        context = self.context_root / hashlib.sha1((base + tag).encode()).hexdigest()[:12]
        context.mkdir(exist_ok=True)
        (context / "Dockerfile").write_text("\n".join(["FROM " + base] + list(lines)) + "\n")
        for message in self.client.build(path=str(context), tag=tag, rm=True, forcerm=True, pull=False, decode=True):
            if "error" in message:
                raise AssertionError("building %s on %s failed: %s" % (tag, self.name, message["error"]))
        return self.client.inspect_image(tag)["Id"]

    def send_to(self, other, ref):
        """docker save ref | docker load on the other engine, through the SDK (nothing is pulled)."""
        path = self.context_root / ("send-%s.tar" % uuid.uuid4().hex[:12])
        try:
            with open(path, "wb") as handle:
                for block in self.client.get_image(ref):
                    handle.write(block)
            with open(path, "rb") as handle:
                messages = list(other.client.load_image(handle))
        finally:
            path.unlink(missing_ok=True)
        errors = [m["error"] for m in messages if isinstance(m, dict) and "error" in m]
        if errors or other.inspect(ref) is None:
            raise AssertionError("loading %s from %s into %s failed: %s" % (ref, self.name, other.name, errors or messages))

    def api_version(self):
        return tuple(int(part) for part in self.client.version()["ApiVersion"].split("."))

    def inspect(self, ref):
        try:
            return self.client.inspect_image(ref)
        except Exception:
            return None

    def image_ids(self):
        return sorted(i["Id"] for i in self.client.images(all=True))

    def tags(self):
        return sorted(t for i in self.client.images(all=True) for t in (i.get("RepoTags") or []) if t != "<none>:<none>")

    def tags_of(self, repository):
        """The tags of repository and of the repositories named after it (repository-base...), which the
        engine finds by name: much quicker than tags() on the containerd store, which lists in time
        proportional to the number of images."""
        images = self.client.images(filters={"reference": repository + "*"})
        return sorted(t for i in images for t in (i.get("RepoTags") or []) if t.startswith((repository + ":", repository + "-")))

    def remove(self, *refs):
        for ref in refs:
            try:
                self.client.remove_image(ref, force=True)
            except Exception:
                pass

    def tag(self, image, ref):
        repo, tag = ref.rsplit(":", 1)
        self.client.tag(image, repo, tag, force=True)

    def cli(self, *args):
        return subprocess.run(["docker", "-H", self.host] + list(args), check=True, capture_output=True, text=True).stdout

    # Containers (never through containers.run(), which pulls a missing image) ---------------

    def create_container(self, image, name, command=None):
        host_config = self.client.create_host_config(network_mode="none")
        container = self.client.create_container(image, command=command, name=name, host_config=host_config)
        return container["Id"]

    def start(self, container):
        self.client.start(container)

    def stop(self, container):
        self.client.stop(container, timeout=1)

    def exec(self, container, command):
        exec_id = self.client.exec_create(container, command)["Id"]
        output = self.client.exec_start(exec_id)
        if self.client.exec_inspect(exec_id)["ExitCode"] != 0:
            raise AssertionError("%r failed in %s: %s" % (command, container, output))
        return output.decode()

    def put_file(self, container, path, content):
        """Write a file into a container, running or not (docker cp)."""
        data = io.BytesIO()
        with tarfile.open(fileobj=data, mode="w") as archive:
            info = tarfile.TarInfo(path.lstrip("/"))
            info.size = len(content)
            info.mtime = int(time.time())
            archive.addfile(info, io.BytesIO(content))
        assert self.client.put_archive(container, "/", data.getvalue())

    def run_once(self, container):
        """Start a container whose command exits, and wait for it."""
        self.client.start(container)
        assert self.client.wait(container, timeout=60)["StatusCode"] == 0

    def container_state(self, container):
        return self.client.inspect_container(container)["State"]

    def run_image(self, image, name, command=None):
        """Run image (with its own command unless one is given) and return what it printed."""
        container = self.create_container(image, name, command)
        try:
            self.client.start(container)
            status = self.client.wait(container, timeout=60)
            output = self.client.logs(container).decode()
            assert status["StatusCode"] == 0, output
            return output
        finally:
            self.client.remove_container(container, force=True)

    def remove_container(self, container):
        with contextlib.suppress(Exception):
            self.client.remove_container(container, force=True)
