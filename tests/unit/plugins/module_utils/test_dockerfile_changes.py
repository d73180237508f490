# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import copy

import pytest

from ansible_collections.airgap.docker.plugins.module_utils.dockerfile_changes import (
    DEFAULT_SHELL,
    apply_changes,
)
from ansible_collections.airgap.docker.plugins.module_utils.errors import InvalidInput

SECOND = 10 ** 9


def apply(*changes, config=None):
    return apply_changes(config, list(changes))


def problem(changes, index, config=None):
    """The text after the `changes[<index>] '<change>': ` prefix of the InvalidInput raised."""
    with pytest.raises(InvalidInput) as info:
        apply_changes(config, changes)
    prefix = "changes[%d] '%s': " % (index, changes[index])
    assert info.value.msg.startswith(prefix), info.value.msg
    return info.value.msg[len(prefix):]


# general ------------------------------------------------------------------------------------


def test_no_changes():
    assert apply_changes(None, None) == {}
    assert apply_changes(None, []) == {}
    config = {"User": "app", "Env": ["A=1"]}
    result = apply_changes(config, [])
    assert result == config
    assert result is not config
    assert result["Env"] is not config["Env"]


def test_changes_apply_in_order_and_later_ones_win():
    result = apply("USER first", "WORKDIR /a", "USER second", "CMD one", "CMD two")
    assert result == {"User": "second", "WorkingDir": "/a", "Cmd": DEFAULT_SHELL + ["two"]}


@pytest.mark.parametrize("keyword", ["user", "User", "uSeR", "USER"])
def test_keywords_are_case_insensitive(keyword):
    assert apply("%s app" % keyword) == {"User": "app"}


@pytest.mark.parametrize("change, expected", [
    ("cmd echo hi", {"Cmd": DEFAULT_SHELL + ["echo hi"]}),
    ('Entrypoint ["/run"]', {"Entrypoint": ["/run"]}),
    ("env A=1", {"Env": ["A=1"]}),
    ("label a=b", {"Labels": {"a": "b"}}),
    ("expose 80", {"ExposedPorts": {"80/tcp": {}}}),
    ("volume /data", {"Volumes": {"/data": {}}}),
    ("workdir /srv", {"WorkingDir": "/srv"}),
    ("stopsignal SIGINT", {"StopSignal": "SIGINT"}),
    ('shell ["/bin/bash", "-c"]', {"Shell": ["/bin/bash", "-c"]}),
    ("onbuild RUN make", {"OnBuild": ["RUN make"]}),
    ("healthcheck none", {"Healthcheck": {"Test": ["NONE"]}}),
    ("healthcheck cmd true", {"Healthcheck": {"Test": ["CMD-SHELL", "true"]}}),
])
def test_every_keyword_in_lower_case(change, expected):
    assert apply(change) == expected


def test_surrounding_whitespace_is_ignored():
    assert apply("   USER   app  ") == {"User": "app"}
    assert apply("\tCMD   echo hi \n") == {"Cmd": DEFAULT_SHELL + ["echo hi"]}


@pytest.mark.parametrize("change, expected", [
    ("USER\tapp", {"User": "app"}),
    ("ENV\tA=1", {"Env": ["A=1"]}),
])
def test_keyword_may_be_followed_by_a_tab(change, expected):
    """A Dockerfile separates the keyword from its arguments by any whitespace, tab included."""
    assert apply(change) == expected


def test_input_config_is_not_modified():
    config = {
        "Cmd": ["sh"],
        "Entrypoint": ["/init"],
        "Env": ["PATH=/usr/bin:/bin", "A=old"],
        "Labels": {"keep": "1", "change": "old"},
        "ExposedPorts": {"22/tcp": {}},
        "Volumes": {"/old": {}},
        "WorkingDir": "/opt",
        "User": "root",
        "StopSignal": "SIGTERM",
        "Shell": ["/bin/ash", "-c"],
        "OnBuild": ["RUN old"],
        "Healthcheck": {"Test": ["CMD", "old"], "Retries": 1},
    }
    snapshot = copy.deepcopy(config)
    result = apply_changes(config, [
        "CMD new", "ENTRYPOINT new", "ENV A=new B=2", "LABEL change=new add=1", "EXPOSE 80",
        "VOLUME /new", "WORKDIR app", "USER app", "STOPSIGNAL SIGINT", 'SHELL ["/bin/bash", "-c"]',
        "ONBUILD RUN new", "HEALTHCHECK CMD new",
    ])
    assert config == snapshot
    assert result != snapshot
    # the result shares no mutable parts with the input
    result["Env"].append("X=1")
    result["Labels"]["x"] = "1"
    result["ExposedPorts"]["1/tcp"] = {}
    result["Volumes"]["/x"] = {}
    result["OnBuild"].append("RUN x")
    assert config == snapshot


def test_input_is_not_modified_when_a_change_fails():
    config = {"Env": ["A=1"], "Labels": {"a": "1"}}
    snapshot = copy.deepcopy(config)
    with pytest.raises(InvalidInput):
        apply_changes(config, ["ENV A=2", "LABEL a=2", "BOGUS"])
    assert config == snapshot


def test_untouched_keys_are_kept():
    config = {"User": "app", "Hostname": "box", "Env": ["A=1"]}
    assert apply_changes(config, ["WORKDIR /srv"]) == {"User": "app", "Hostname": "box", "Env": ["A=1"], "WorkingDir": "/srv"}


# CMD / ENTRYPOINT / SHELL -------------------------------------------------------------------


@pytest.mark.parametrize("keyword, key", [("CMD", "Cmd"), ("ENTRYPOINT", "Entrypoint")])
def test_exec_form(keyword, key):
    assert apply('%s ["/srv/run.sh", "--flag", "two words"]' % keyword) == {key: ["/srv/run.sh", "--flag", "two words"]}
    assert apply('%s []' % keyword) == {key: []}


@pytest.mark.parametrize("keyword, key", [("CMD", "Cmd"), ("ENTRYPOINT", "Entrypoint")])
def test_shell_form(keyword, key):
    assert apply("%s echo hello && exec app --port 80" % keyword) == {key: ["/bin/sh", "-c", "echo hello && exec app --port 80"]}


@pytest.mark.parametrize("argument", ['[not json', '["a", 1]', '["a"] trailing', '{"a": "b"}', '"just a string"'])
def test_not_a_json_list_of_strings_is_shell_form(argument):
    assert apply("CMD " + argument) == {"Cmd": ["/bin/sh", "-c", argument]}


def test_shell_form_uses_a_shell_set_earlier():
    result = apply('SHELL ["/bin/bash", "-o", "pipefail", "-c"]', "CMD echo hi | cat", "ENTRYPOINT exec app")
    assert result["Shell"] == ["/bin/bash", "-o", "pipefail", "-c"]
    assert result["Cmd"] == ["/bin/bash", "-o", "pipefail", "-c", "echo hi | cat"]
    assert result["Entrypoint"] == ["/bin/bash", "-o", "pipefail", "-c", "exec app"]


def test_shell_form_uses_the_shell_of_the_restored_config():
    assert apply("CMD Get-Date", config={"Shell": ["pwsh", "-Command"]})["Cmd"] == ["pwsh", "-Command", "Get-Date"]


def test_shell_set_later_does_not_change_an_earlier_command():
    result = apply("CMD echo hi", 'SHELL ["/bin/bash", "-c"]')
    assert result["Cmd"] == ["/bin/sh", "-c", "echo hi"]


def test_exec_form_ignores_the_shell():
    assert apply('SHELL ["/bin/bash", "-c"]', 'CMD ["app"]')["Cmd"] == ["app"]


def test_shell():
    assert apply('SHELL ["powershell", "-command"]') == {"Shell": ["powershell", "-command"]}
    assert apply('SHELL ["/bin/zsh", "-c"]', config={"Shell": ["/bin/sh", "-c"]}) == {"Shell": ["/bin/zsh", "-c"]}


# ENV / LABEL --------------------------------------------------------------------------------


def test_env_key_value_form_with_quotes():
    result = apply("""ENV A=1 B="two words" C='single quoted' D= E=x=y F="with \\"escaped\\" quotes\"""")
    assert result == {"Env": ["A=1", "B=two words", "C=single quoted", "D=", "E=x=y", 'F=with "escaped" quotes']}


def test_env_legacy_form():
    assert apply("ENV GREETING hello  big world") == {"Env": ["GREETING=hello  big world"]}
    assert apply("ENV PATH /usr/local/bin:/usr/bin") == {"Env": ["PATH=/usr/local/bin:/usr/bin"]}


def test_env_appends_to_the_restored_environment():
    assert apply("ENV B=2", config={"Env": ["A=1"]}) == {"Env": ["A=1", "B=2"]}


def test_env_replaces_an_existing_key():
    result = apply("ENV A=new", config={"Env": ["PATH=/usr/bin", "A=old", "AB=keep", "B=2"]})
    env = result["Env"]
    assert "A=new" in env
    assert "A=old" not in env
    assert [item for item in env if item.startswith("A=")] == ["A=new"]
    # the other keys, including one that merely starts with the same letters, are kept in order
    assert [item for item in env if item != "A=new"] == ["PATH=/usr/bin", "AB=keep", "B=2"]


def test_env_replaces_a_key_set_by_an_earlier_change_and_within_one_change():
    assert apply("ENV A=1", "ENV A 2") == {"Env": ["A=2"]}
    assert apply("ENV A=1 A=3") == {"Env": ["A=3"]}


def test_label_both_forms_and_quotes():
    result = apply('LABEL "com.example.vendor"="ACME Inc" version=1.0 empty=', "LABEL maintainer Jane Doe <jane@example.com>")
    assert result == {"Labels": {
        "com.example.vendor": "ACME Inc", "version": "1.0", "empty": "", "maintainer": "Jane Doe <jane@example.com>",
    }}


def test_label_updates_the_restored_labels():
    result = apply("LABEL b=new c=3", config={"Labels": {"a": "1", "b": "old"}})
    assert result == {"Labels": {"a": "1", "b": "new", "c": "3"}}


# EXPOSE -------------------------------------------------------------------------------------


def test_expose_ports_and_protocols():
    result = apply("EXPOSE 80 443/tcp 53/udp 9000/sctp", config={"ExposedPorts": {"22/tcp": {}}})
    assert result == {"ExposedPorts": {"22/tcp": {}, "80/tcp": {}, "443/tcp": {}, "53/udp": {}, "9000/sctp": {}}}


def test_expose_same_port_twice_is_one_entry():
    assert apply("EXPOSE 80 80/tcp", "EXPOSE 80") == {"ExposedPorts": {"80/tcp": {}}}


@pytest.mark.parametrize("change, ports", [
    ("EXPOSE 8000-8002", ["8000/tcp", "8001/tcp", "8002/tcp"]),
    ("EXPOSE 7000-7001/udp", ["7000/udp", "7001/udp"]),
    ("EXPOSE 9000-9000", ["9000/tcp"]),
])
def test_expose_range_becomes_one_entry_per_port(change, ports):
    """docker build/import expand a range (nat.ParsePortSpecs) and the OCI image spec knows
    ExposedPorts keys only as `port`, `port/tcp` or `port/udp`, never a range."""
    assert sorted(apply(change)["ExposedPorts"]) == sorted(ports)


@pytest.mark.parametrize("port", ["http", "80/icmp", "80/", "/tcp", "123456", "-1", "80-", "80:80", "80/TCP/x"])
def test_expose_invalid(port):
    assert problem(["EXPOSE 80 %s" % port], 0) == "%r is not a port such as 80, 80/tcp, 53/udp or 8000-8010" % port


@pytest.mark.parametrize("port", ["65536", "70000", "99999/udp", "10-5", "60000-70000"])
def test_expose_port_out_of_range(port):
    """Ports are 16-bit and a range must not run backwards; docker rejects these."""
    assert problem(["EXPOSE %s" % port], 0).startswith("%r is not a port" % port)


# VOLUME -------------------------------------------------------------------------------------


def test_volume_both_forms():
    assert apply("VOLUME /data /var/log") == {"Volumes": {"/data": {}, "/var/log": {}}}
    assert apply('VOLUME ["/data", "/path with space"]') == {"Volumes": {"/data": {}, "/path with space": {}}}


def test_volume_adds_to_the_restored_volumes():
    assert apply("VOLUME /new", config={"Volumes": {"/old": {}}}) == {"Volumes": {"/old": {}, "/new": {}}}


@pytest.mark.parametrize("change, path", [
    ("VOLUME data", "data"),
    ("VOLUME /ok relative/dir", "relative/dir"),
    ('VOLUME ["/ok", "rel"]', "rel"),
    ("VOLUME []", "[]"),
])
def test_volume_must_be_absolute(change, path):
    assert problem([change], 0) == "volume %r must be an absolute path" % path


# WORKDIR ------------------------------------------------------------------------------------


@pytest.mark.parametrize("changes, config, expected", [
    (["WORKDIR /srv"], None, "/srv"),
    (["WORKDIR app"], None, "/app"),
    (["WORKDIR app"], {"WorkingDir": "/opt"}, "/opt/app"),
    (["WORKDIR /srv", "WORKDIR app", "WORKDIR ../lib/./x/"], None, "/srv/lib/x"),
    (["WORKDIR /srv"], {"WorkingDir": "/opt"}, "/srv"),
    (["WORKDIR /srv/../../.."], None, "/"),
    (["WORKDIR /a//b/./c/"], None, "/a/b/c"),
    (["WORKDIR .."], {"WorkingDir": "/"}, "/"),
])
def test_workdir(changes, config, expected):
    assert apply(*changes, config=config) == dict(config or {}, WorkingDir=expected)


@pytest.mark.parametrize("change", ["WORKDIR //srv//app/", "WORKDIR //srv/app"])
def test_workdir_leading_double_slash_is_normalised(change):
    """Docker cleans the path (Go's filepath.Clean: `//srv` -> `/srv`); POSIX normpath keeps
    exactly two leading slashes."""
    assert apply(change) == {"WorkingDir": "/srv/app"}


# USER / STOPSIGNAL / ONBUILD ----------------------------------------------------------------


@pytest.mark.parametrize("user", ["app", "1000", "1000:1000", "app:staff"])
def test_user(user):
    assert apply("USER " + user, config={"User": "root"}) == {"User": user}


@pytest.mark.parametrize("signal", ["SIGTERM", "SIGRTMIN+3", "KILL", "9", "SIGUSR1"])
def test_stopsignal(signal):
    assert apply("STOPSIGNAL " + signal) == {"StopSignal": signal}


@pytest.mark.parametrize("signal", ["sig term", "SIGTERM now", "kill;", "$SIG"])
def test_stopsignal_invalid(signal):
    assert problem(["STOPSIGNAL " + signal], 0) == "%r is not a signal name or number" % signal


def test_onbuild_appends_triggers():
    result = apply("ONBUILD RUN make", "ONBUILD ADD . /app/src", config={"OnBuild": ["RUN old"]})
    assert result == {"OnBuild": ["RUN old", "RUN make", "ADD . /app/src"]}


@pytest.mark.parametrize("change, inner", [
    ("ONBUILD ONBUILD RUN x", "ONBUILD"),
    ("ONBUILD FROM busybox", "FROM"),
    ("ONBUILD MAINTAINER someone", "MAINTAINER"),
    ("onbuild from busybox", "FROM"),
    ("ONBUILD onbuild run x", "ONBUILD"),
])
def test_onbuild_forbidden_triggers(change, inner):
    assert problem([change], 0) == "ONBUILD %s is not allowed" % inner


# HEALTHCHECK --------------------------------------------------------------------------------


@pytest.mark.parametrize("change", ["HEALTHCHECK NONE", "HEALTHCHECK none", "healthcheck None"])
def test_healthcheck_none(change):
    config = {"Healthcheck": {"Test": ["CMD", "old"], "Interval": SECOND}}
    assert apply(change, config=config) == {"Healthcheck": {"Test": ["NONE"]}}


def test_healthcheck_exec_form_with_every_option():
    result = apply('HEALTHCHECK --interval=1m30s --timeout=10s --start-period=5s --start-interval=500ms --retries=3 '
                   'CMD ["curl", "-f", "http://localhost/"]')
    assert result == {"Healthcheck": {
        "Test": ["CMD", "curl", "-f", "http://localhost/"],
        "Interval": 90 * SECOND, "Timeout": 10 * SECOND, "StartPeriod": 5 * SECOND, "StartInterval": SECOND // 2,
        "Retries": 3,
    }}


def test_healthcheck_shell_form():
    result = apply("HEALTHCHECK --retries=0 CMD curl -f http://localhost/ || exit 1")
    assert result == {"Healthcheck": {"Test": ["CMD-SHELL", "curl -f http://localhost/ || exit 1"], "Retries": 0}}


def test_healthcheck_cmd_keyword_is_case_insensitive():
    assert apply('HEALTHCHECK cmd ["true"]') == {"Healthcheck": {"Test": ["CMD", "true"]}}


def test_healthcheck_replaces_the_whole_previous_check():
    config = {"Healthcheck": {"Test": ["CMD", "old"], "Interval": 7 * SECOND, "Retries": 9}}
    assert apply("HEALTHCHECK --timeout=3s CMD new", config=config) == {"Healthcheck": {"Test": ["CMD-SHELL", "new"], "Timeout": 3 * SECOND}}


@pytest.mark.parametrize("duration, nanos", [
    ("30s", 30 * SECOND),
    ("1m30s", 90 * SECOND),
    ("2h45m", (2 * 3600 + 45 * 60) * SECOND),
    ("1h", 3600 * SECOND),
    ("1.5s", 1500 * 10 ** 6),
    ("250ms", 250 * 10 ** 6),
    ("100us", 100 * 1000),
    ("100µs", 100 * 1000),
    ("10ns", 10),
    ("0s", 0),
    ("1m0.5s", 60 * SECOND + SECOND // 2),
])
def test_healthcheck_durations(duration, nanos):
    assert apply("HEALTHCHECK --interval=%s CMD true" % duration)["Healthcheck"]["Interval"] == nanos


@pytest.mark.parametrize("duration, nanos", [("1.001s", 1_001_000_000), ("0.29s", 290_000_000), ("4.35s", 4_350_000_000)])
def test_healthcheck_fractional_durations_are_exact(duration, nanos):
    """Go's time.ParseDuration gives the exact number of nanoseconds; summing floats may not."""
    assert apply("HEALTHCHECK --timeout=%s CMD true" % duration)["Healthcheck"]["Timeout"] == nanos


@pytest.mark.parametrize("change, test", [
    ('HEALTHCHECK CMD ["printf", "a  b"]', ["CMD", "printf", "a  b"]),
    ("HEALTHCHECK CMD echo 'two  spaces'", ["CMD-SHELL", "echo 'two  spaces'"]),
    ("HEALTHCHECK --retries=2 CMD printf 'a\tb'", ["CMD-SHELL", "printf 'a\tb'"]),
])
def test_healthcheck_command_is_kept_verbatim(change, test):
    """The command is not re-tokenised: whitespace inside it is part of it."""
    assert apply(change)["Healthcheck"]["Test"] == test


@pytest.mark.parametrize("option, value", [
    ("interval", "30"),
    ("interval", "abc"),
    ("timeout", "1d"),
    ("start-period", "-5s"),
    ("start-interval", "5 s"),
    ("interval", ""),
])
def test_healthcheck_bad_duration(option, value):
    change = "HEALTHCHECK --%s=%s CMD true" % (option, value)
    assert problem([change], 0) == "%s=%s is not a duration such as 30s or 1m30s" % (option, value.split(" ")[0])


@pytest.mark.parametrize("change, option", [
    ("HEALTHCHECK --foo=1 CMD true", "foo"),
    ("HEALTHCHECK --retries=x CMD true", "retries"),
    ("HEALTHCHECK --retries=-1 CMD true", "retries"),
    ("HEALTHCHECK --retries CMD true", "retries"),
    ("HEALTHCHECK --Interval=5s CMD true", "Interval"),
])
def test_healthcheck_bad_option(change, option):
    assert problem([change], 0) == "unknown or invalid HEALTHCHECK option --%s" % option


@pytest.mark.parametrize("change", [
    "HEALTHCHECK",
    "HEALTHCHECK   ",
    "HEALTHCHECK --interval=5s",
    "HEALTHCHECK curl -f http://localhost/",
    "HEALTHCHECK CMD",
    "HEALTHCHECK --timeout=1s CMD   ",
    "HEALTHCHECK --interval=5s NONE",
])
def test_healthcheck_needs_none_or_cmd(change):
    assert problem([change], 0) == "HEALTHCHECK needs NONE or CMD <command>"


# error paths --------------------------------------------------------------------------------


@pytest.mark.parametrize("change", ["", "   "])
def test_empty_instruction(change):
    assert problem([change], 0) == "an empty instruction"


def test_none_instruction():
    with pytest.raises(InvalidInput) as info:
        apply_changes({}, [None])
    assert info.value.msg.startswith("changes[0] ")
    assert info.value.msg.endswith(": an empty instruction")


@pytest.mark.parametrize("change, keyword", [
    ("RUN apt-get update", "RUN"),
    ("FROM busybox", "FROM"),
    ("copy . /app", "COPY"),
    ("ADD x /y", "ADD"),
    ("ARG VERSION=1", "ARG"),
    ("MAINTAINER me", "MAINTAINER"),
    ("BOGUS", "BOGUS"),
])
def test_unknown_instruction(change, keyword):
    text = problem([change], 0)
    assert text.startswith("%s is not an instruction that can change an image's config" % keyword)
    assert "CMD, ENTRYPOINT, ENV, EXPOSE, HEALTHCHECK, LABEL, ONBUILD, SHELL, STOPSIGNAL, USER, VOLUME, WORKDIR" in text


@pytest.mark.parametrize("keyword", ["CMD", "ENTRYPOINT", "ENV", "EXPOSE", "LABEL", "ONBUILD", "SHELL", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR"])
def test_instruction_needs_an_argument(keyword):
    assert problem([keyword], 0) == "%s needs an argument" % keyword
    assert problem([keyword.lower() + "   "], 0) == "%s needs an argument" % keyword


@pytest.mark.parametrize("change, text", [
    ('ENV A="unterminated', "cannot parse ENV arguments (No closing quotation)"),
    ('LABEL a="unterminated', "cannot parse LABEL arguments (No closing quotation)"),
    ("ENV A", "ENV A needs a value"),
    ("LABEL key", "LABEL key needs a value"),
    ("ENV A=1 B", "'B' is not KEY=VALUE"),
    ("LABEL a=1 =x", "'=x' is not KEY=VALUE"),
    ("ENV =value", "'=value' is not KEY=VALUE"),
])
def test_env_and_label_errors(change, text):
    assert problem([change], 0) == text


@pytest.mark.parametrize("change", ["SHELL /bin/bash -c", "SHELL []", 'SHELL ["/bin/bash", 1]', 'SHELL "/bin/bash"', "SHELL [/bin/bash]"])
def test_shell_needs_a_json_list(change):
    assert problem([change], 0) == 'SHELL takes the JSON form, e.g. ["/bin/bash", "-c"]'


def test_error_names_the_index_of_the_failing_change():
    changes = ["USER app", "ENV A=1", "EXPOSE eighty", "CMD never reached"]
    assert problem(changes, 2) == "'eighty' is not a port such as 80, 80/tcp, 53/udp or 8000-8010"


def test_error_quotes_the_change_verbatim_when_it_contains_a_single_quote():
    """The prefix is `changes[<index>] '<change>':` whatever the change holds; %r switches to
    double quotes (and escapes backslashes and tabs) for such changes."""
    assert problem(["USER app", "LABEL a='unterminated"], 1) == "cannot parse LABEL arguments (No closing quotation)"
