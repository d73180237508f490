# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Every hostile archive of under 1 MiB is refused with one ArchiveError, in under a second of
scanning, with a peak RSS of at most 100 MB for the module process (issue 11, classes 1, 2 and 9).

Each case is written plain (when that is under 1 MiB) and with zstd level 3 in the largest window
the reader accepts. The same stream in a smaller window (zstd's default for level 3) is decoded to
the same bytes and costs less memory, so it is not written too. Each file is built once, and the
files are scanned two at a time (each in a child process of its own, whose CPU time and peak RSS
are its own), in the order the selected tests need them."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import zstandard
from harness import run_case
from hostile_cases import CASES, EVERY_CAP_DIFF_IDS, LARGEST_WINDOW_LOG, PADDED, ZSTD_ONLY

from ansible_collections.airgap.docker.plugins.module_utils.archive_layout import MAX_REFERENCES
from ansible_collections.airgap.docker.plugins.module_utils.compression import ZSTD_MAX_WINDOW
from ansible_collections.airgap.docker.plugins.module_utils.tarscan import MAX_ENTRIES, MAX_KEPT_TOTAL, MAX_PAX_RECORDS

MAX_FILE = 1 << 20
MAX_SECONDS = 1.0
MAX_RSS = 100 * 1000 * 1000
# How each case is written: {kind: (zstd or not, window_log or None for the level's own)}.
KINDS = {"tar": (False, None), "window": (True, LARGEST_WINDOW_LOG)}
# Children scanning at once: their CPU time and peak RSS are their own, whatever runs beside them.
WORKERS = 2


def _write(path, chunks, compressed, window_log=None):
    """The chunks into path, plain or zstd level 3 (with the window 2**window_log if given)."""
    with open(path, "wb") as out:
        if compressed:
            overrides = {} if window_log is None else {"window_log": window_log}
            params = zstandard.ZstdCompressionParameters.from_level(3, **overrides)
            writer = zstandard.ZstdCompressor(compression_params=params).compressobj()
            for chunk in chunks:
                out.write(writer.compress(chunk))
            out.write(writer.flush())
        else:
            for chunk in chunks:
                out.write(chunk)
                if out.tell() >= MAX_FILE:
                    break  # too large to be a case: written no further
    return path


@pytest.fixture(scope="module")
def hostile_files(tmp_path_factory):
    """{(case, kind): path} of every case under 1 MiB, for each kind of KINDS; built once, two at a time."""
    directory = tmp_path_factory.mktemp("hostile")
    wanted = [(name, kind) for name in CASES for kind in KINDS if not (kind == "tar" and name in ZSTD_ONLY)]

    def build(key):
        name, kind = key
        compressed, window_log = KINDS[kind]
        return _write(str(directory / ("%s.%s" % key)), CASES[name](), compressed, window_log)

    with ThreadPoolExecutor(WORKERS) as pool:  # zstd releases the GIL while it compresses
        paths = dict(zip(wanted, pool.map(build, wanted)))
    return {key: path for key, path in paths.items() if os.path.getsize(path) < MAX_FILE}


def _scanned_by(item):
    """The (case, kind) files a collected test of this module scans."""
    params = item.callspec.params if hasattr(item, "callspec") else {}
    if "case" in params:
        return [(params["case"], params.get("kind", "window"))]
    return [(case, "window") for case in getattr(getattr(item, "function", None), "scans", ())]


@pytest.fixture(scope="module")
def outcomes(hostile_files, request):
    """{path: Future of its Outcome}: every file the selected tests of this module scan, each
    scanned once, WORKERS at a time, in the order the tests ask for them."""
    here = Path(__file__).resolve()
    keys = dict.fromkeys(key for item in request.session.items if Path(str(item.path)).resolve() == here
                         for key in _scanned_by(item))
    pool = ThreadPoolExecutor(WORKERS)
    futures = {hostile_files[key]: pool.submit(run_case, hostile_files[key]) for key in keys if key in hostile_files}
    yield futures
    pool.shutdown(wait=True, cancel_futures=True)


def _outcome(outcomes, path):
    if path not in outcomes:
        return run_case(path)
    return outcomes[path].result()


@pytest.mark.parametrize("case, kind", [(case, kind) for case in sorted(CASES) for kind in sorted(KINDS)
                                        if not (kind == "tar" and case in ZSTD_ONLY)])
def test_hostile_archive_is_refused_quickly_in_bounded_memory(hostile_files, outcomes, case, kind):
    if (case, kind) not in hostile_files:
        if kind != "tar":
            pytest.fail("the zstd file of %s (%s) is not under 1 MiB" % (case, kind))
        pytest.skip("the plain tar of %s is larger than 1 MiB" % case)
    path = hostile_files[case, kind]
    outcome = _outcome(outcomes, path)
    assert outcome.result == "ArchiveError", (outcome.result, outcome.message)
    assert "\n" not in outcome.message and outcome.message.startswith(path + ": ")
    # CPU time: the tests share two cores with other jobs, which stretch the wall clock.
    assert outcome.cpu_seconds < MAX_SECONDS, "%s took %.2f s of CPU to refuse" % (case, outcome.cpu_seconds)
    assert outcome.peak_rss <= MAX_RSS, "%s peaked at %.1f MB" % (case, outcome.peak_rss / 1e6)


def test_the_largest_window_is_filled_and_stays_within_bounds(hostile_files, outcomes):
    """The window case really costs a whole window: declared at the cap, decoded (refused once it
    expands past the decompression-bomb allowance, not for its header), and the scan's memory grew by
    about that much."""
    path = hostile_files["zeros_300_mib_in_the_largest_window", "window"]
    with open(path, "rb") as stream:
        assert zstandard.get_frame_parameters(stream.read(18)).window_size == ZSTD_MAX_WINDOW == 16 << 20
    outcome = _outcome(outcomes, path)
    assert outcome.result == "ArchiveError"
    assert outcome.message.startswith(path + ": The compressed stream expands more than 2048 times")
    assert "decompression bomb" in outcome.message
    assert outcome.peak_rss - outcome.baseline_rss >= 0.9 * ZSTD_MAX_WINDOW
    assert outcome.peak_rss <= MAX_RSS


test_the_largest_window_is_filled_and_stays_within_bounds.scans = ("zeros_300_mib_in_the_largest_window",)


@pytest.mark.parametrize("case", sorted(builder.__name__ for builder in PADDED))
def test_padded_cases_fill_the_window_before_their_own_cost(hostile_files, outcomes, case):
    """Behind the zeros the decoder's window is full: the case's own cost comes on top of it."""
    outcome = _outcome(outcomes, hostile_files[case, "window"])
    assert outcome.peak_rss - outcome.baseline_rss >= 0.9 * ZSTD_MAX_WINDOW
    assert outcome.peak_rss <= MAX_RSS


@pytest.mark.parametrize("case", ["json_blobs_of_the_largest_kept_size_behind_a_full_window",
                                  "index_of_the_most_values_beside_full_metadata_behind_a_full_window",
                                  "every_cap_at_once_behind_a_full_window", "names_and_metadata_behind_a_full_window"])
def test_kept_metadata_comes_on_top_of_a_full_window(hostile_files, outcomes, case):
    """The metadata cases hold the kept metadata at its cap while the window is full."""
    outcome = _outcome(outcomes, hostile_files[case, "window"])
    assert outcome.peak_rss - outcome.baseline_rss >= 0.9 * (ZSTD_MAX_WINDOW + MAX_KEPT_TOTAL)
    assert outcome.peak_rss <= MAX_RSS


# Each case that fills caps together is refused by the cap it was built to reach last, or once all
# its documents are parsed: it cost what it was meant to cost, not less.
REFUSED_AT_THE_END = {
    "every_cap_at_once": "The archive's metadata is larger than %d MiB; refusing to read it." % (MAX_KEPT_TOTAL >> 20),
    "names_and_metadata": "The archive's metadata is larger than %d MiB; refusing to read it." % (MAX_KEPT_TOTAL >> 20),
    "every_cap_then_parse": "but its config %d; the archive is damaged." % EVERY_CAP_DIFF_IDS,
    "images_of_the_most_layers": "list more than %d images, tags and layers; refusing them." % MAX_REFERENCES,
    "document_of_4_mib_of_emoji": "is malformed (rootfs is not an object).",
    "pax_headers_to_the_entry_cap": "more than %d entries" % MAX_ENTRIES,
    "gnu_long_names_to_the_entry_cap": "more than %d entries" % MAX_ENTRIES,
    "general_parser_headers_to_the_entry_cap": "more than %d entries" % MAX_ENTRIES,
    "pax_headers_of_170k_records": "more than %d PAX records" % MAX_PAX_RECORDS,
    "too_many_members": "more than %d entries" % MAX_ENTRIES,
    "json_nested_40k_deep": "nests JSON too deeply",
}


COMBINED_CASES = sorted(REFUSED_AT_THE_END) + sorted(
    builder.__name__ for builder in PADDED if builder.__name__.rpartition("_behind")[0] in REFUSED_AT_THE_END)


@pytest.mark.parametrize("case", COMBINED_CASES)
def test_combined_cases_reach_the_cap_they_were_built_for(hostile_files, outcomes, case):
    outcome = _outcome(outcomes, hostile_files[case, "window"])
    assert REFUSED_AT_THE_END[case.rpartition("_behind_a_full_window")[0] or case] in outcome.message, outcome.message


def test_the_harness_can_fail(tmp_path):
    """A genuine archive is accepted, so the harness does not pass everything."""
    from archive_factory import ImageSpec, oci_archive

    path = tmp_path / "genuine.tar"
    path.write_bytes(oci_archive([ImageSpec(tags=["app:1"])]))
    outcome = run_case(str(path))
    assert outcome.result == "accepted", outcome.message
    assert 0 < outcome.baseline_rss <= outcome.peak_rss <= MAX_RSS


def test_the_harness_measures_what_a_module_process_holds(tmp_path):
    """The baseline includes what a module has imported (AnsibleModule, the Docker SDK, zstandard:
    about 37 MB with the collection), not just the scanner's imports (about 21 MB)."""
    from archive_factory import ImageSpec, oci_archive

    path = tmp_path / "genuine.tar"
    path.write_bytes(oci_archive([ImageSpec(tags=["app:1"])]))
    assert run_case(str(path)).baseline_rss >= 30 * 1000 * 1000


def test_the_harness_enforces_its_address_space_limit(tmp_path):
    path = tmp_path / "genuine.tar"
    from archive_factory import ImageSpec, oci_archive

    path.write_bytes(oci_archive([ImageSpec(tags=["app:1"])]))
    with pytest.raises(AssertionError, match="failed"):
        run_case(str(path), address_space=8 << 20)  # not even room for the imports
