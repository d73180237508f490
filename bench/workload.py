"""The benchmark's image: real files from this machine in three or more layers.

Shared libraries, documentation and a Python standard library compress like real images do,
unlike random or zero bytes. The context is made of hard links, so building it is cheap.
"""

from __future__ import annotations

import os
import random
import shutil
from pathlib import Path

# (layer directory, share of the size, sources in order of preference)
LAYERS = (
    ("libs", 0.55, ["/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib"]),
    ("share", 0.25, ["/usr/share"]),
    ("python", 0.20, ["/usr/lib/python3", "/usr/lib/python3.11", "/usr/local/lib", "/root/.pyenv/versions"]),
)


def _files(root):
    for directory, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files):
            path = os.path.join(directory, name)
            if os.path.isfile(path) and not os.path.islink(path):
                yield path


def _fill(target, sources, budget):
    used = 0
    for source in sources:
        if not os.path.isdir(source):
            continue
        for path in _files(source):
            size = os.path.getsize(path)
            if used + size > budget:
                if used >= budget * 0.9:
                    return used
                continue
            destination = target / os.path.relpath(path, "/")
            destination.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(path, destination)
            except OSError:
                shutil.copy2(path, destination)
            used += size
    return used


def build_context(root, size):
    """A docker build context of about `size` bytes in len(LAYERS) COPY layers; returns its path."""
    root = Path(root)
    marker = root / (".size-%d" % size)
    if marker.exists():
        return root
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    shutil.copy("/bin/busybox", root / "busybox")
    lines = ["FROM scratch", "COPY busybox /bin/busybox", 'RUN ["/bin/busybox", "--install", "-s", "/bin"]']
    for name, share, sources in LAYERS:
        _fill(root / name, sources, int(size * share))
        lines.append("COPY %s/ /" % name)
    lines += ["ENV BENCH=1", "WORKDIR /", 'CMD ["/bin/sh", "-c", "ls /"]']
    (root / "Dockerfile").write_text("\n".join(lines) + "\n")
    marker.touch()
    return root


def build_image(client, context, tag):
    """Build (or find in the build cache) the benchmark image on one engine; returns its inspect."""
    for message in client.build(path=str(context), tag=tag, rm=True, forcerm=True, pull=False, decode=True):
        if "error" in message:
            raise RuntimeError("building %s failed: %s" % (tag, message["error"]))
    return client.inspect_image(tag)


def release_bytes(version, size):
    """`size` bytes that stand for one release of an application: random-looking (zstd cannot
    shrink them, so the figures are not flattered) and the same on every run (builds hit the cache)."""
    return random.Random("airgap-bench-release-%s" % version).getrandbits(8 * size).to_bytes(size, "little")


def build_version(client, root, base, tag, version, size):
    """`FROM base` plus one small top layer of `size` bytes that differ per version; returns its inspect.

    Versions built on the same base share every layer but the top one: an update in a small top layer."""
    context = Path(root)
    context.mkdir(parents=True, exist_ok=True)
    (context / "release.bin").write_bytes(release_bytes(version, size))
    (context / "Dockerfile").write_text("FROM %s\nCOPY release.bin /opt/app/release.bin\nENV APP_VERSION=%s\n" % (base, version))
    return build_image(client, context, tag)
