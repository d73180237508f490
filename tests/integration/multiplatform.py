"""A real two-platform image (linux/amd64 and linux/arm64), written as an OCI image-layout tar
on this machine (nothing is pulled), loaded into a test engine and inspected there.

Each platform has its own config and two plain-file layers (no executables: an arm64 image
never runs here, and the tests only need the engines to store, save and load it).
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile

PLATFORMS = ("linux/amd64", "linux/arm64")
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
# Fixed times keep the blobs reproducible: the same marker gives the same digests.
EPOCH = 1700000000
CREATED = "2023-11-14T22:13:20Z"


def _platform(text):
    os_name, arch = text.split("/")
    return {"os": os_name, "architecture": arch}


def _file_layer(files):
    """An uncompressed layer tar holding files ({path: text}), as root, with fixed times."""
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w", format=tarfile.PAX_FORMAT) as layer:
        for path, text in sorted(files.items()):
            body = text.encode()
            info = tarfile.TarInfo(path.lstrip("/"))
            info.size, info.mtime, info.mode = len(body), EPOCH, 0o644
            layer.addfile(info, io.BytesIO(body))
    return data.getvalue()


class _Blobs:
    """The content-addressed blobs of the layout, in the order they were added."""

    def __init__(self):
        self.items = {}

    def add(self, data, media_type, **extra):
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        self.items[digest] = data
        return dict(mediaType=media_type, digest=digest, size=len(data), **extra)


def _json(document):
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


def _platform_image(blobs, platform, marker, label):
    """Add one platform's layers, config and manifest; return (manifest descriptor, manifest.json entry)."""
    arch = _platform(platform)["architecture"]
    # The marker in every layer keeps each test's blobs its own (the engines share equal blobs).
    layers = [_file_layer({"/platform.txt": platform + "\n", "/marker.txt": marker + "\n"}),
              _file_layer({"/arch/" + arch: "%s %s\n" % (marker, arch)})]
    layer_descriptors = [blobs.add(layer, OCI_LAYER) for layer in layers]
    config = dict(_platform(platform), created=CREATED,
                  config={"Cmd": ["/bin/cat", "/platform.txt"], "Labels": {"airgap.test.label": label}},
                  rootfs={"type": "layers", "diff_ids": [d["digest"] for d in layer_descriptors]},
                  history=[{"created": CREATED, "created_by": "multiplatform.py: layer %d" % n} for n in (1, 2)])
    config_descriptor = blobs.add(_json(config), OCI_CONFIG)
    manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config_descriptor, "layers": layer_descriptors}
    descriptor = blobs.add(_json(manifest), OCI_MANIFEST, platform=_platform(platform))
    entry = {"Config": _blob_path(config_descriptor), "Layers": [_blob_path(d) for d in layer_descriptors]}
    return descriptor, entry


def _blob_path(descriptor):
    return "blobs/sha256/" + descriptor["digest"].split(":", 1)[1]


def write_two_platform_archive(path, reference, marker=None, label=None, manifest_json=True, drop=()):
    """Write an OCI layout tar of `reference` (repo:tag) for linux/amd64 and linux/arm64.

    The layers hold marker (default: reference), the configs a label (default: reference): the
    same marker with another label gives another image on the same layers. The index names the
    image with the annotations both image stores read. With manifest_json, a docker-style
    manifest.json names the amd64 image too (the only part an engine without OCI support can
    load; one tag names one config there). drop lists (platform, n): layer n of that
    platform is left out, as in a damaged or thin archive. Returns {platform: manifest descriptor}.
    """
    blobs, manifests, entries = _Blobs(), {}, []
    for platform in PLATFORMS:
        manifests[platform], entry = _platform_image(blobs, platform, marker or reference, label or reference)
        entries.append(entry)
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": list(manifests.values())}
    names = {"io.containerd.image.name": _full_name(reference), "org.opencontainers.image.ref.name": reference.rsplit(":", 1)[1]}
    top = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [blobs.add(_json(index), OCI_INDEX, annotations=names)]}
    files = {"oci-layout": _json({"imageLayoutVersion": "1.0.0"}), "index.json": _json(top)}
    if manifest_json:
        files["manifest.json"] = _json([dict(entries[0], RepoTags=[reference])])
    dropped = {_layer_digest(blobs, manifests[platform], number) for platform, number in drop}
    for digest, data in blobs.items.items():
        if digest not in dropped:
            files["blobs/sha256/" + digest.split(":", 1)[1]] = data
    _write_tar(path, files)
    return manifests


def _layer_digest(blobs, manifest_descriptor, number):
    return json.loads(blobs.items[manifest_descriptor["digest"]])["layers"][number]["digest"]


def _full_name(reference):
    # The containerd store keys images by their normalized name.
    repository = reference.rsplit(":", 1)[0]
    if "/" not in repository:
        repository = "library/" + repository
    first = repository.split("/", 1)[0]
    if "." not in first and ":" not in first and first != "localhost":
        repository = "docker.io/" + repository
    return repository + ":" + reference.rsplit(":", 1)[1]


def _write_tar(path, files):
    with tarfile.open(str(path), "w", format=tarfile.PAX_FORMAT) as archive:
        metadata = [name for name in ("oci-layout", "index.json", "manifest.json") if name in files]
        for name in metadata + sorted(set(files) - set(metadata)):
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(files[name]), EPOCH, 0o644
            archive.addfile(info, io.BytesIO(files[name]))


def load(client, path, platform=None):
    """POST the tar at path to the engine's load endpoint (docker load [--platform]); return its
    decoded messages. The SDK's load_image has no platform parameter, hence the raw request."""
    params = {"quiet": "1"}
    if platform:
        params["platform"] = json.dumps(_platform(platform))
    with open(path, "rb") as body:
        response = client._post(client._url("/images/load"), data=body, params=params,
                                headers={"Content-Type": "application/x-tar"}, stream=True)
        client._raise_for_status(response)
        return [json.loads(line) for line in response.iter_lines() if line.strip()]


def engine_platforms(client, reference):
    """{platform: available} of the manifests the engine lists for reference (API 1.48+: the
    image's manifests with whether their content is present)."""
    response = client._get(client._url("/images/{0}/json", reference), params={"manifests": "1"})
    summary = client._result(response, True)
    platforms = {}
    for manifest in summary.get("Manifests") or []:
        described = (manifest.get("ImageData") or {}).get("Platform") or {}
        if manifest.get("Kind") == "image" and described:
            platforms["%s/%s" % (described["os"], described["architecture"])] = manifest.get("Available")
    return platforms


def _platform_of(config):
    return "%s/%s" % (config["os"], config["architecture"])


def archive_platforms(path):
    """The platforms whose manifest, config and layers are all in the archive at path (an OCI
    layout, or the legacy layout of Docker 20.10's save, which has only manifest.json)."""
    with tarfile.open(str(path)) as archive:
        names = set(archive.getnames())
        if "index.json" not in names:
            entries = json.load(archive.extractfile("manifest.json"))
            return {_platform_of(json.load(archive.extractfile(entry["Config"]))) for entry in entries}

        def blob(digest):
            return json.load(archive.extractfile("blobs/sha256/" + digest.split(":", 1)[1]))

        def present(descriptor):
            return "blobs/sha256/" + descriptor["digest"].split(":", 1)[1] in names

        found, pending = set(), list(json.load(archive.extractfile("index.json"))["manifests"])
        while pending:
            descriptor = pending.pop()
            if not present(descriptor):
                continue
            document = blob(descriptor["digest"])
            if "manifests" in document:
                pending.extend(document["manifests"])
            elif all(present(d) for d in [document["config"]] + document["layers"]):
                found.add(_platform_of(blob(document["config"]["digest"])))
        return found
