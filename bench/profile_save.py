"""Profile of the cold-save path: what each stage adds to streaming `docker save` into a file.

    .cache/bench-venv/bin/python bench/profile_save.py [--engine classic] [--rounds 2]

Run after `make bench` (it uses the benchmark's image and installed collection). Each variant
adds one stage of image_archive's save path, interleaved with the CLI, so the cost of hashing,
following the tar and fsync shows against the engine's own pace.
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / ".cache/bench/collections"))

from ansible_collections.airgap.docker.plugins.module_utils import image_transfer, streaming  # noqa: E402
from ansible_collections.airgap.docker.plugins.module_utils.engine import EngineClient  # noqa: E402

IMAGE = "airgap-bench/data:1"
OUT = Path("/var/tmp/airgap-profile.tar")


def variants(engine):
    def cli():
        subprocess.run(["docker", "-H", engine.host, "save", "-o", str(OUT), IMAGE], check=True)

    def stream_to_file():
        with open(OUT, "wb") as handle:
            for block in engine.save_stream([IMAGE]):
                handle.write(block)

    def with_reader_thread():
        with open(OUT, "wb") as handle:
            for block in streaming.prefetch(engine.save_stream([IMAGE])):
                handle.write(block)

    def with_sha256():
        digest = hashlib.sha256()
        with open(OUT, "wb") as handle:
            for block in streaming.prefetch(engine.save_stream([IMAGE])):
                digest.update(block)
                handle.write(block)

    def module_path():
        target, _content = image_transfer.save_to_temp(engine, [IMAGE], str(OUT), "none", None, None, 0)
        target.abort()

    return [("docker save -o (CLI process)", cli), ("Python: engine stream -> file", stream_to_file),
            ("+ reader thread", with_reader_thread), ("+ SHA-256 of the archive", with_sha256),
            ("full module path (+ tar following, temp file, fsync)", module_path)]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--engine", default="classic", choices=["classic", "modern"])
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    engine = EngineClient("unix:///var/tmp/airgap-engines/run/%s.sock" % args.engine)
    table = {name: [] for name, _run in variants(engine)}
    for _round in range(args.rounds):
        for name, run in variants(engine):
            started = time.monotonic()
            run()
            table[name].append(time.monotonic() - started)
    OUT.unlink(missing_ok=True)
    print("| variant | %s |" % " | ".join("round %d" % (i + 1) for i in range(args.rounds)))
    print("|---|%s" % "---:|" * args.rounds)
    for name, times in table.items():
        print("| %s | %s |" % (name, " | ".join("%.2f" % t for t in times)))


if __name__ == "__main__":
    main()
