"""What each compression costs and saves on one image archive: size, CPU time to compress and to
decompress, and the link speed below which it makes a relay faster than no compression.

    .venv/bin/python bench/compression_levels.py ARCHIVE.tar [--choices none,gzip:6,zstd:1,zstd:3,...]

ARCHIVE.tar is an uncompressed `docker save` archive (for example one written by `make bench`).
Each choice compresses it with the collection's own writer, in 256 KiB blocks as a save streams
them, and reads it back with the collection's own reader; CPU is this process's (all threads).
The archive is read into memory first, so the disk is not measured.

A relay saves on the source, copies over the link and loads on the destination, one after the
other. Compared with `none`, a compression adds its CPU time on both ends (on a host with a core
to spare; the bench measures the real save) and saves (size of none - its size) / link speed of
copying. It pays below the link speed where the two are equal, which is printed.
"""

from __future__ import annotations

import argparse
import io
import resource
import time
from pathlib import Path

from working_tree import import_working_tree

DEFAULT_CHOICES = "none,gzip:6,zstd:-1,zstd:1,zstd:3,zstd:6"


import_working_tree()

from ansible_collections.airgap.docker.plugins.module_utils import compression  # noqa: E402
from ansible_collections.airgap.docker.plugins.module_utils.streaming import CHUNK, read_chunks  # noqa: E402


def cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Pieces:
    """A sink that keeps what it is given without copying it again as it grows."""

    def __init__(self):
        self.pieces = []

    def write(self, data):
        self.pieces.append(bytes(data))
        return len(data)


def measure(data, kind, level):
    """(compressed size, compress CPU s, compress wall s, decompress CPU s); nothing to measure for none."""
    if kind == compression.NONE:
        return len(data), 0.0, 0.0, 0.0
    sink = Pieces()
    started, cpu = time.monotonic(), cpu_seconds()
    writer = compression.open_writer(sink, kind, level)
    view = memoryview(data)
    for offset in range(0, len(data), CHUNK):
        writer.write(view[offset:offset + CHUNK])
    writer.finish()
    compress_cpu, compress_wall = cpu_seconds() - cpu, time.monotonic() - started
    packed = b"".join(sink.pieces)
    cpu = cpu_seconds()
    restored = sum(len(block) for block in read_chunks(compression.open_reader(io.BytesIO(packed), kind)))
    assert restored == len(data)
    return len(packed), compress_cpu, compress_wall, cpu_seconds() - cpu


def break_even_mbit(data_size, none_size, size, extra_cpu):
    """The link speed (Mbit/s) below which the bytes saved take longer to send than the CPU added."""
    saved = none_size - size
    if saved <= 0:
        return 0.0
    return float("inf") if extra_cpu <= 0 else saved * 8 / 1e6 / extra_cpu


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("archive")
    parser.add_argument("--choices", default=DEFAULT_CHOICES, help="kind or kind:level, comma-separated (default %(default)s)")
    args = parser.parse_args()
    data = Path(args.archive).read_bytes()
    gib = len(data) / (1 << 30)
    print("%s: %.0f MiB\n" % (args.archive, len(data) / (1 << 20)))
    print("| compression | size vs .tar | compress CPU s/GiB | compress wall s/GiB | decompress CPU s/GiB | pays below |")
    print("|---|---:|---:|---:|---:|---:|")
    base = None
    for choice in args.choices.split(","):
        kind, _sep, level = choice.partition(":")
        size, compress_cpu, compress_wall, decompress_cpu = measure(data, kind, int(level) if level else None)
        if base is None:
            base = (size, compress_cpu + decompress_cpu)
        extra = compress_cpu + decompress_cpu - base[1]
        pays = break_even_mbit(len(data), base[0], size, extra)
        print("| %s | %.3fx | %.2f | %.2f | %.2f | %s |" % (
            choice, size / len(data), compress_cpu / gib, compress_wall / gib, decompress_cpu / gib,
            "" if kind == "none" else ("any speed" if pays == float("inf") else "%.0f Mbit/s" % pays)), flush=True)


if __name__ == "__main__":
    main()
