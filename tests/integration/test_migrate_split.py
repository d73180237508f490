"""Bundles for media with a file size limit, on the shaped fleet: a missing, damaged or reordered part
is refused by name before anything is copied. (A split bundle's pack, check/run/check/run unpack on
every store and reproducibility are in test_migrate_role's test_pack_is_reproducible_and_unpacks_without_the_source.)
"""

from __future__ import annotations

import shutil

from migrate_scenario import TARGETS, archive_name, assert_ok, bundle_bytes, pack, unpack

SPLIT = "1M"
MIB = 1 << 20


def test_a_missing_damaged_or_reordered_part_is_refused_by_name(scenario, fleet, hosts):
    app = scenario.image("1", random_bytes=3 * MIB)
    bundle = scenario.tmp / "bundle"
    assert_ok(pack(scenario, bundle, [app], migrate_split_size=SPLIT), "src")
    name = "images/" + archive_name(app)

    def damaged(how):
        copy = scenario.tmp / how
        shutil.copytree(bundle, copy)
        part1, part2 = copy / (name + ".part001"), copy / (name + ".part002")
        if how == "missing":
            part2.unlink()
        elif how == "damaged":
            data = bytearray(part2.read_bytes())
            data[len(data) // 2] ^= 0x01
            part2.write_bytes(bytes(data))
        else:  # the first two parts swapped, as a careless copy by hand might
            first = part1.read_bytes()
            part1.write_bytes(part2.read_bytes())
            part2.write_bytes(first)
        return copy

    expected = {"missing": "%s.part002 is missing from the bundle" % name,
                "damaged": "%s.part002 has sha256" % name,
                "reordered": "%s.part001 has sha256" % name}
    before = {how: bundle_bytes(bundle) for how in expected}
    for how, message in expected.items():
        run = unpack(scenario, damaged(how))
        assert run.rc != 0 and message in run.output, (how, run.output[-4000:])
        assert "the part was altered or damaged, or is another part" in run.output or how == "missing"
        for host in TARGETS:  # refused on the controller, before anything was copied
            assert hosts[host].inspect(app) is None
            assert fleet.staging_files(host) == []
        assert bundle_bytes(bundle) == before[how]  # the original is untouched
