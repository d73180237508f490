"""The bundle module against hostile bundle directories, through ansible-playbook on the controller:
what an earlier manifest lists is believed only when this controller wrote (or signed) it, the files
it writes are private, and a manifest is checked on its raw bytes before any of it is parsed.
No engine is needed: the bundle module reads sidecars and files only.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess

import pytest
from ansible_calls import assert_clean_failure

MODULE = "airgap.docker.bundle"
FULL = "images/app.tar.zst"
THIN = "images/app+delta1.tar.zst"
LAYERS = ["sha256:" + "1a" * 32, "sha256:" + "2b" * 32]


def sidecar(data, omitted=0):
    """A sidecar as image_archive writes it, for an archive whose bytes are `data`."""
    return {
        "schema": 1, "kind": "images",
        "archive": {"size": len(data), "sha256": hashlib.sha256(data).hexdigest(), "compression": "zstd", "layout": "oci"},
        "images": [{"config_digest": "sha256:" + "cd" * 32, "tags": ["app:2"], "diff_ids": LAYERS, "omitted_layers": omitted,
                    "fingerprint": "sha256:" + "ef" * 32, "created": "2026-01-02T03:04:05Z"}],
        "engine": {"version": "26.1"}, "request": {"images": ["app:2"]},
    }


@pytest.fixture
def place(tmp_path, monkeypatch):
    """A bundle directory, its controller's private memo, and a helper that puts archive files in it."""
    monkeypatch.setenv("AIRGAP_DOCKER_CACHE", str(tmp_path / "memo"))
    directory = tmp_path / "bundle"
    (directory / "images").mkdir(parents=True)

    def put(relative, data):
        (directory / relative).write_bytes(data)
        return sidecar(data, omitted=1 if "+delta" in relative else 0)

    return directory, put


@pytest.fixture(scope="module")
def key(tmp_path_factory):
    directory = tmp_path_factory.mktemp("key")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "release", "-f", str(directory / "release")], check=True)
    allowed = directory / "allowed_signers"
    allowed.write_text('release namespaces="airgap.docker-bundle" %s\n' % (directory / "release.pub").read_text().strip())
    return {"private": str(directory / "release"), "allowed": str(allowed)}


def present(directory, archives, **extra):
    args = {"path": str(directory), "state": "present", "archives": archives}
    args.update(extra)
    return {MODULE: args}


def verified(directory, **extra):
    args = {"path": str(directory), "state": "verified"}
    args.update(extra)
    return {MODULE: args}


def listed(directory):
    return sorted(e["path"] for e in json.loads((directory / "manifest.json").read_text())["archives"])


def plant_thin_archive(directory, put):
    """What somebody who can write the bundle directory does: an archive, its sidecar, an entry in the
    manifest that agrees with both, and SHA256SUMS to match."""
    planted = put(THIN, b"not the layers you are looking for")
    manifest = json.loads((directory / "manifest.json").read_text())
    full = next(e for e in manifest["archives"] if e["path"] == FULL)
    sidecar_bytes = (json.dumps(planted, indent=2, sort_keys=True) + "\n").encode()
    (directory / (THIN + ".airgap.json")).write_bytes(sidecar_bytes)
    entry = dict(full, path=THIN, delta_of=FULL, sha256=planted["archive"]["sha256"], size=planted["archive"]["size"],
                 sidecar={"path": THIN + ".airgap.json", "sha256": hashlib.sha256(sidecar_bytes).hexdigest()})
    entry["images"] = [dict(full["images"][0], omitted_layers=1)]
    manifest["archives"].append(entry)
    manifest["schema"] = 2
    data = (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()
    (directory / "manifest.json").write_bytes(data)
    sums = {"manifest.json": hashlib.sha256(data).hexdigest()}
    for item in manifest["archives"]:
        sums[item["path"]] = item["sha256"]
        sums[item["sidecar"]["path"]] = item["sidecar"]["sha256"]
    (directory / "SHA256SUMS").write_text("".join("%s  %s\n" % (sums[path], path) for path in sorted(sums)))


def test_a_planted_thin_archive_is_never_signed_into_the_bundle(ansible, place, key):
    directory, put = place
    full = put(FULL, b"the full archive")
    first = ansible.run(present(directory, [{"path": FULL, "sidecar": full}], signing_key=key["private"]))[0]
    assert first["changed"] and not first.get("failed"), first
    plant_thin_archive(directory, put)
    assert listed(directory) == [THIN, FULL]

    results = ansible.run(present(directory, [{"path": FULL, "sidecar": full}], keep_deltas=True, signing_key=key["private"]),
                          verified(directory, allowed_signers=key["allowed"]))
    assert not results[0].get("failed"), results[0]
    assert listed(directory) == [FULL]
    assert sorted(results[0]["files"]["removed"]) == [THIN, THIN + ".airgap.json"]
    assert not (directory / THIN).exists() and not (directory / (THIN + ".airgap.json")).exists()
    assert (directory / FULL).read_bytes() == b"the full archive"  # nothing of ours was lost
    assert results[1]["signer"] == "release" and [i["archive"] for i in results[1]["images"]] == [FULL]


def write_with_thin(ansible, directory, put, **extra):
    full, thin = put(FULL, b"the full archive"), put(THIN, b"the thin archive")
    result = ansible.run(present(directory, [{"path": FULL, "sidecar": full}, {"path": THIN, "sidecar": thin, "delta_of": FULL}],
                                 **extra))[0]
    assert result["changed"] and listed(directory) == [THIN, FULL], result
    return full


def test_thin_archives_this_controller_wrote_are_kept(ansible, place):
    directory, put = place
    full = write_with_thin(ansible, directory, put)
    again = ansible.run(present(directory, [{"path": FULL, "sidecar": full}], keep_deltas=True))[0]
    assert not again["changed"] and listed(directory) == [THIN, FULL], again


def test_a_kept_thin_archive_whose_file_was_swapped_is_dropped(ansible, place):
    directory, put = place
    full = write_with_thin(ansible, directory, put)
    (directory / THIN).write_bytes(b"the THIN archive")  # same size, other bytes
    again = ansible.run(present(directory, [{"path": FULL, "sidecar": full}], keep_deltas=True))[0]
    assert again["changed"] and listed(directory) == [FULL], again


def test_a_signed_manifest_is_believed_without_the_memo_and_an_unsigned_one_is_not(ansible, place, key, tmp_path):
    directory, put = place
    full = write_with_thin(ansible, directory, put, signing_key=key["private"])
    memo = tmp_path / "memo"
    for path in memo.rglob("*.json"):
        path.unlink()  # the memo is only an optimization: a signature is enough
    kept = ansible.run(present(directory, [{"path": FULL, "sidecar": full}], keep_deltas=True, signing_key=key["private"]))[0]
    assert not kept["changed"] and listed(directory) == [THIN, FULL], kept
    for path in memo.rglob("*.json"):
        path.unlink()
    dropped = ansible.run(present(directory, [{"path": FULL, "sidecar": full}], keep_deltas=True))[0]
    assert dropped["changed"] and listed(directory) == [FULL], dropped


def test_what_the_module_writes_is_private(ansible, place, key):
    directory, put = place
    full = put(FULL, b"the full archive")
    first = ansible.run(present(directory, [{"path": FULL, "sidecar": full}], signing_key=key["private"]))[0]
    assert first["changed"], first
    for name in ("manifest.json", "SHA256SUMS", "manifest.json.sig", FULL + ".airgap.json"):
        assert stat.S_IMODE(os.stat(directory / name).st_mode) == 0o600, name
    assert stat.S_IMODE(os.stat(directory / "containers").st_mode) == 0o700
    # A manifest an earlier version left readable by everybody is written again, private; then nothing changes.
    os.chmod(directory / "manifest.json", 0o644)
    results = ansible.run(*[present(directory, [{"path": FULL, "sidecar": full}], signing_key=key["private"])] * 2)
    assert [r["changed"] for r in results] == [True, False], results
    assert results[0]["files"]["written"] == ["manifest.json"]
    assert stat.S_IMODE(os.stat(directory / "manifest.json").st_mode) == 0o600


def test_a_new_bundle_directory_is_created_private(ansible, tmp_path, monkeypatch):
    monkeypatch.setenv("AIRGAP_DOCKER_CACHE", str(tmp_path / "memo"))
    directory = tmp_path / "new" / "bundle"
    result = ansible.run(present(directory, [{"path": FULL, "sidecar": sidecar(b"x")}]))[0]
    assert result["changed"], result
    for path in (directory, directory / "images", directory / "containers"):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o700


HOSTILE = {
    "nested 100,000 deep": b'{"kind": "airgap.docker/bundle", "schema": 1, "archives": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    "archives not a list": b'{"kind": "airgap.docker/bundle", "schema": 1, "archives": {"images/a.tar": 1}}',
    "size a string": None,  # made from the real manifest below
    "sidecar a string": None,
}


def hostile(name, good):
    if HOSTILE[name] is not None:
        return HOSTILE[name]
    manifest = json.loads(good)
    if name == "size a string":
        manifest["archives"][0]["size"] = "16"
    else:
        manifest["archives"][0]["sidecar"] = "images/app.tar.zst.airgap.json"
    return json.dumps(manifest).encode()


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_the_signature_is_checked_before_the_manifest_is_parsed(ansible, place, key, name):
    directory, put = place
    full = put(FULL, b"the full archive")
    assert not ansible.run(present(directory, [{"path": FULL, "sidecar": full}], signing_key=key["private"]))[0].get("failed")
    good = (directory / "manifest.json").read_bytes()
    (directory / "manifest.json").write_bytes(hostile(name, good))
    signed, summed = ansible.run(verified(directory, allowed_signers=key["allowed"]), verified(directory))
    assert_clean_failure(signed, "signature does not verify")
    assert_clean_failure(summed, "SHA256SUMS disagrees with manifest.json for manifest.json")
    (directory / "SHA256SUMS").unlink()
    (shape,) = ansible.run(verified(directory))
    assert_clean_failure(shape, str(directory / "manifest.json"))
    assert any(word in shape["msg"] for word in ("nested deeper", "is not a valid bundle manifest", "without size")), shape
    assert (directory / FULL).read_bytes() == b"the full archive"
