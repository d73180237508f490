"""Builds small multi-layer test images on a test engine, without ever pulling."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess

BUSYBOX = "/bin/busybox"


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
            "RUN echo %s > /marker.txt" % (marker or tag),
        ]
        if random_bytes:
            with open(context / "random.bin", "wb") as handle:
                handle.write(os.urandom(random_bytes))
            lines.append("COPY random.bin /random.bin")
        lines += list(extra_lines) + ['CMD ["/bin/sh", "-c", "cat /marker.txt"]']
        (context / "Dockerfile").write_text("\n".join(lines) + "\n")
        for message in self.client.build(path=str(context), tag=tag, rm=True, forcerm=True, pull=False, decode=True):
            if "error" in message:
                raise AssertionError("building %s on %s failed: %s" % (tag, self.name, message["error"]))
        return self.client.inspect_image(tag)["Id"]

    def inspect(self, ref):
        try:
            return self.client.inspect_image(ref)
        except Exception:
            return None

    def image_ids(self):
        return sorted(i["Id"] for i in self.client.images(all=True))

    def tags(self):
        return sorted(t for i in self.client.images(all=True) for t in (i.get("RepoTags") or []) if t != "<none>:<none>")

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
