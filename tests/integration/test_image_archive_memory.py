"""Peak memory of the module does not grow with the archive's size (streaming everywhere)."""

from __future__ import annotations

import pytest

MODULE = "airgap.docker.image_archive"


@pytest.mark.per_store
def test_peak_rss_is_flat(ansible, engine, other_engine, unique, workdir):
    # Both sizes are past zstd's worker buffers (a constant), so any growth would be per byte.
    engine.build(unique + ":small", marker="small", random_bytes=24 << 20)
    engine.build(unique + ":large", marker="large", random_bytes=160 << 20)
    peaks = {}
    for size in ("small", "large"):
        path = workdir / ("%s.tar.zst" % size)
        save, load = ansible.run(
            {MODULE: {"path": str(path), "images": [unique + ":" + size], "docker_host": engine.host}},
            {MODULE: {"path": str(path), "state": "loaded", "docker_host": other_engine.host}},
        )
        assert save["changed"] and load["changed"] and not load.get("failed"), (save, load)
        assert save["stats"]["bytes_from_engine"] >= (160 << 20 if size == "large" else 24 << 20)
        peaks[size] = (save["stats"]["peak_rss_bytes"], load["stats"]["peak_rss_bytes"])
    for index, action in enumerate(("save", "load")):
        growth = peaks["large"][index] - peaks["small"][index]
        assert growth < 24 << 20, "%s peak RSS grew by %d MiB for 136 MiB more data: %r" % (action, growth >> 20, peaks)
        assert peaks["large"][index] < 100 << 20, peaks
