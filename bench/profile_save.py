"""Profile of the cold-save path: what each stage adds to streaming `docker save` into a file.

    .cache/bench-venv/bin/python bench/profile_save.py [--engine classic] [--rounds 3] [--variants cli,none,zstd]

Run after `make bench` (it uses the benchmark's image). It imports the collection from this
working tree. Each variant adds one stage of image_archive's save path, interleaved with the CLI
round by round, with `sync` before every timed step so that one step's writeback does not land
on the next. Printed per variant and round: wall seconds and the CPU seconds of this process
(threads and children included) and of the engine's daemon, which shares the machine; and, for
the Python variants, when the engine's first byte came. The classic store builds the whole export
in a temporary directory before it sends anything, so that wait is the engine's alone, and what
follows it is the part of the save a client can speed up.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import resource
import statistics
import subprocess
import time
from pathlib import Path

from working_tree import REPO, import_working_tree

IMAGE = "airgap-bench/data:1"
SOCKETS = Path("/var/tmp/airgap-engines/run")


import_working_tree()

from ansible_collections.airgap.docker.plugins.module_utils import image_transfer, split_target, streaming  # noqa: E402
from ansible_collections.airgap.docker.plugins.module_utils.engine import EngineClient  # noqa: E402

FIRST_BYTE = {}


def first_byte_noted(blocks):
    """The blocks, noting when the first arrives: the engine sends nothing until its export is ready."""
    for block in blocks:
        FIRST_BYTE.setdefault("at", time.monotonic())
        yield block


def variants(engine, out):
    save_stream = engine.save_stream
    engine.save_stream = lambda names, platform=None: first_byte_noted(save_stream(names, platform))

    def cli():
        subprocess.run(["docker", "-H", engine.host, "save", "-o", str(out), IMAGE], check=True)

    def cli_sync():
        cli()
        subprocess.run(["sync"], check=True)

    def stream_to_file():
        with open(out, "wb") as handle:
            for block in engine.save_stream([IMAGE]):
                handle.write(block)

    def with_fsync():
        with open(out, "wb") as handle:
            for block in engine.save_stream([IMAGE]):
                handle.write(block)
            handle.flush()
            os.fsync(handle.fileno())

    def with_sha256():
        digest = hashlib.sha256()
        with open(out, "wb") as handle:
            for block in engine.save_stream([IMAGE]):
                digest.update(block)
                handle.write(block)

    def with_reader_thread():
        digest = hashlib.sha256()
        with open(out, "wb") as handle:
            for block in streaming.prefetch(engine.save_stream([IMAGE])):
                digest.update(block)
                handle.write(block)

    def module_path(kind, level=None, cached=False):
        def run():
            path = str(out) + (".zst" if kind == "zstd" else "")
            atomic_file = split_target.AtomicFile
            if cached:  # the archive written through the page cache, as before direct_file
                split_target.AtomicFile = lambda name, mode=None, direct=False: atomic_file(name, mode)
            try:
                target, content = image_transfer.save_to_temp(engine, [IMAGE], path, kind, level, None, 0)
            finally:
                split_target.AtomicFile = atomic_file
            # Removed after the clock stops, as the CLI's file is: freeing a GiB takes time too.
            content.cleanup = target.abort
            return content
        return run

    return {"cli": ("docker save -o (CLI process)", cli),
            "cli_sync": ("docker save -o, then sync (durable like ours)", cli_sync),
            "stream": ("Python: engine stream -> file", stream_to_file),
            "fsync": ("Python: engine stream -> file, fsync", with_fsync),
            "sha256": ("+ SHA-256", with_sha256),
            "thread": ("+ reader thread", with_reader_thread),
            "none": ("module path, none (+ tar following, temp file, fsync)", module_path("none")),
            "none_cached": ("module path, none, through the page cache", module_path("none", cached=True)),
            "zstd": ("module path, zstd adaptive", module_path("zstd")),
            "zstd_cached": ("module path, zstd adaptive, through the page cache", module_path("zstd", cached=True)),
            "zstd1": ("module path, zstd level 1", module_path("zstd", 1)),
            "zstd3": ("module path, zstd level 3", module_path("zstd", 3))}


def daemon_cpu(engine_name):
    """CPU seconds the engine's daemon (dockerd) has used, from /proc."""
    found = subprocess.run(["pgrep", "-f", "dockerd.*/%s.json" % engine_name], capture_output=True, text=True, check=False).stdout.split()
    if not found:
        return 0.0
    fields = Path("/proc/%s/stat" % found[0]).read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def own_cpu():
    return sum(getattr(resource.getrusage(who), field) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
               for field in ("ru_utime", "ru_stime"))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--engine", default="classic", choices=["classic", "modern", "containerd2"])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--variants", default="cli,cli_sync,stream,fsync,sha256,thread,none,zstd,zstd1,zstd3")
    parser.add_argument("--out", default=str(REPO / ".cache/bench/profile.tar"), help="archive written by each step")
    args = parser.parse_args()
    engine = EngineClient("unix://%s/%s.sock" % (SOCKETS, args.engine))
    out = Path(args.out)
    chosen = {key: variants(engine, out)[key] for key in args.variants.split(",")}
    table = {key: [] for key in chosen}
    for _round in range(args.rounds):
        for key, (_name, run) in chosen.items():
            subprocess.run(["sync"], check=True)
            FIRST_BYTE.clear()
            cpu, daemon, started = own_cpu(), daemon_cpu(args.engine), time.monotonic()
            content = run()
            first = FIRST_BYTE.get("at", started) - started if FIRST_BYTE else None
            row = (time.monotonic() - started, own_cpu() - cpu, daemon_cpu(args.engine) - daemon,
                   getattr(content, "levels", {}).get("compression_levels"), first)
            table[key].append(row)
            getattr(content, "cleanup", lambda: None)()
            for path in (out, Path(str(out) + ".zst")):
                path.unlink(missing_ok=True)
    print("| variant | wall s, each round | median wall | median first byte s | median after it s | median CPU s (ours) "
          "| median CPU s (engine) |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for key, rows in table.items():
        timed = [r for r in rows if r[4] is not None]
        print("| %s | %s | %.2f | %s | %s | %.2f | %.2f |" % (
            chosen[key][0], " ".join("%.2f" % row[0] for row in rows), statistics.median(r[0] for r in rows),
            "%.2f" % statistics.median(r[4] for r in timed) if timed else "",
            "%.2f" % statistics.median(r[0] - r[4] for r in timed) if timed else "",
            statistics.median(r[1] for r in rows), statistics.median(r[2] for r in rows)))
    for key, rows in table.items():
        if any(row[3] for row in rows):
            print("%s levels: %s" % (key, "; ".join(str(row[3]) for row in rows)))


if __name__ == "__main__":
    main()
