"""The migrate role's filters (plugins/filter/migrate.py and delivery.py): what they check of their
input and that they hand on what module_utils decides."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.airgap.docker.plugins.filter import delivery, migrate


def test_every_filter_is_registered():
    names = set(migrate.FilterModule().filters())
    assert {"migrate_archives", "migrate_problems", "migrate_source", "migrate_engine", "migrate_outcome", "migrate_cuts",
            "migrate_host_files", "migrate_refusal", "migrate_report", "migrate_summary"} == names
    assert set(delivery.FilterModule().filters()) == {"delivery_plan", "baseline_plan"}


@pytest.mark.parametrize("call, message", [
    (lambda: migrate.migrate_archives("app:1", []), "migrate_archives expects migrate_images, a list of image names."),
    (lambda: migrate.migrate_archives([], [{"name": "x"}]), "migrate_archives expects migrate_containers,"),
    (lambda: migrate.migrate_archives([], [], "xz"), "migrate_archives expects a compression of gzip, none, zstd."),
    (lambda: migrate.migrate_problems({}, "copy"), "migrate_problems expects a mode of relay, pack, unpack."),
    (lambda: migrate.migrate_problems({"images": []}, "relay"), "migrate_problems expects the settings bundle_dir,"),
    (lambda: migrate.migrate_source([], "relay", {}), "migrate_source expects the source's host variables"),
    (lambda: migrate.migrate_engine({}), "migrate_engine expects a dictionary of engine settings with docker_host."),
    (lambda: migrate.migrate_outcome("relay", "done"), "migrate_outcome expects a registered task result."),
    (lambda: migrate.migrate_cuts({}), "migrate_cuts expects the delivery plans of the batch's hosts."),
    (lambda: migrate.migrate_host_files({}, "x"), "migrate_host_files expects the manifest's archives as its argument."),
    (lambda: migrate.migrate_refusal([], "h", None), "migrate_refusal expects the bundle's state"),
    (lambda: migrate.migrate_report({"mode": "copy"}), "migrate_report expects a dictionary of what the run did"),
    (lambda: migrate.migrate_summary([], [], [], []), "migrate_summary expects hostvars."),
    (lambda: delivery._delivery_plan({}), "delivery_plan expects the list of wanted records"),
    (lambda: delivery._baseline_plan([], "x"), "baseline_plan expects the baseline images' diff ID lists"),
])
def test_misuse_fails_with_one_sentence(call, message):
    with pytest.raises(AnsibleFilterError) as failure:
        call()
    assert str(failure.value).startswith(message)


def test_source_in_a_relay_takes_the_cache_directory(monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", "/cache")
    got = migrate.migrate_source({"migrate_docker_host": "tcp://s:2375"}, "relay", {"docker_host": "unix:///own"}, "src")
    assert got["engine"] == {"docker_host": "tcp://s:2375", "tls": False, "validate_certs": False, "api_version": "auto"}
    assert got["staging_dir"] == "/var/tmp/airgap.docker"
    assert got["relay_bundle_dir"].startswith("/cache/airgap.docker/relay/src-")


def test_source_cache_without_xdg_is_the_users_home(monkeypatch):
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", "/home/op")
    got = migrate.migrate_source({}, "relay", {}, "src")
    assert got["relay_bundle_dir"].startswith("/home/op/.cache/airgap.docker/relay/src-")


def test_a_bad_timeout_fails_as_a_filter_error():
    with pytest.raises(AnsibleFilterError) as failure:
        migrate.migrate_source({"migrate_timeout": "soon"}, "relay", {}, "src")
    assert str(failure.value) == 'migrate_timeout must be a whole number of seconds (0 for none), not "soon".'


def test_outcome_treats_a_step_that_did_not_run_as_empty():
    assert migrate.migrate_outcome("pack", None, "", None)["archives"] == []


def test_summary_reads_each_hosts_report():
    hostvars = {"a": {"migrate_report": {"mode": "relay", "archives": []}}, "b": {}}
    assert migrate.migrate_summary(hostvars, ["a", "b"], ["a", "b"], ["a", "b"]) == [
        "a: up to date, nothing sent", "b: FAILED or unreachable, see above"]


def test_delivery_plan_filter_hands_on_the_plan():
    records = [{"archive": "images/a.tar", "state": "absent", "tags": ["a:1"]}]
    assert delivery._delivery_plan(records)["deliveries"][0]["file"] == "images/a.tar"
    assert delivery._baseline_plan(records, [])[0]["build"] is False
