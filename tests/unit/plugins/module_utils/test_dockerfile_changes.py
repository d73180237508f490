# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import copy
import json
import shlex
import time
from fractions import Fraction

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ansible_collections.airgap.docker.plugins.module_utils.dockerfile_changes import (
    DEFAULT_SHELL,
    MAX_INSTRUCTION_BYTES,
    _shell_words,
    apply_changes,
)
from ansible_collections.airgap.docker.plugins.module_utils.errors import InvalidInput

SECOND = 10 ** 9
PORT_PROBLEM = "EXPOSE %r is not a port from 1 to 65535 in ASCII digits, such as 80, 80/tcp, 53/udp or 8000-8010"


def apply(*changes, config=None):
    return apply_changes(config, list(changes))


def problem(changes, index, config=None):
    """The text after the `changes[<index>] '<change>': ` prefix of the InvalidInput raised; the
    change is shown verbatim, or escaped when it holds control characters, and cut after 200."""
    with pytest.raises(InvalidInput) as info:
        apply_changes(config, changes)
    change = changes[index]
    shown = change if change.isprintable() else change.encode("unicode_escape").decode("ascii")
    prefix = "changes[%d] '%s': " % (index, shown if len(shown) <= 200 else shown[:200] + "...")
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
    assert problem(["EXPOSE 80 %s" % port], 0) == PORT_PROBLEM % port


@pytest.mark.parametrize("port", ["65536", "70000", "99999/udp", "10-5", "60000-70000"])
def test_expose_port_out_of_range(port):
    """Ports are 16-bit and a range must not run backwards; docker rejects these."""
    assert problem(["EXPOSE %s" % port], 0) == PORT_PROBLEM % port


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
    assert problem(["STOPSIGNAL " + signal], 0) == "STOPSIGNAL %r is not a signal name or a number from 1 to 64" % signal


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
    ("1500us", 1500 * 1000),
    ("1500\u00b5s", 1500 * 1000),  # micro sign
    ("1500\u03bcs", 1500 * 1000),  # Greek mu: Go's time.ParseDuration takes both
    ("1000000ns", 10 ** 6),
    ("0s", 0),
    ("0", 0),
    (".5s", SECOND // 2),
    ("5.s", 5 * SECOND),
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
    assert problem([change], 0) == "HEALTHCHECK --%s=%s is not a duration such as 30s or 1m30s" % (option, value.split(" ")[0])


@pytest.mark.parametrize("change, option", [
    ("HEALTHCHECK --foo=1 CMD true", "foo"),
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
    assert problem(changes, 2) == PORT_PROBLEM % "eighty"


def test_error_quotes_the_change_verbatim_when_it_contains_a_single_quote():
    """The prefix is `changes[<index>] '<change>':` whatever the change holds; %r switches to
    double quotes (and escapes backslashes and tabs) for such changes."""
    assert problem(["USER app", "LABEL a='unterminated"], 1) == "cannot parse LABEL arguments (No closing quotation)"


# hostile and non-ASCII input (issue 11, class 9) --------------------------------------------

# Decimal digits of other scripts: Python's int() and str.isdigit() take them, Go and Docker do not.
ARABIC_EIGHTY = "\u0668\u0660"
FULLWIDTH_EIGHTY = "\uff18\uff10"
SUPERSCRIPT_TWO = "\u00b2"
DEVANAGARI_THREE = "\u0969"
MATH_NINE = "\U0001d7d7"
LONG_S = "\u017f"  # its upper case is S in Python, so `u\u017fer`.upper() == "USER"
MAX_DURATION = "2562047h47m16.854775807s"  # Go's largest time.Duration, 2**63 - 1 ns
JSON_SAFE = {"ensure_ascii": False, "sort_keys": True}


def canonical(config):
    """What the config becomes in the image: a lone surrogate or a huge number would fail here."""
    return json.dumps(config, **JSON_SAFE).encode("utf-8")


@pytest.mark.parametrize("signal", [SUPERSCRIPT_TWO, DEVANAGARI_THREE, MATH_NINE, "1" + DEVANAGARI_THREE, "SIGRTMIN+" + DEVANAGARI_THREE,
                                    "0", "65", "9" * 5000, "RTMIN+16", "RTMAX-15", "RTMIN-1", "RTMAX+1", "RTMIN+0", "RTMIN+03",
                                    LONG_S + "igterm", "SIG", "+9", "-9"])
def test_stopsignal_refuses_what_docker_refuses(signal):
    text = problem(["STOPSIGNAL " + signal], 0)
    assert text == "STOPSIGNAL %r is not a signal name or a number from 1 to 64" % (signal if len(signal) <= 60 else signal[:60] + "...")


@pytest.mark.parametrize("signal", ["1", "64", "009", "RTMIN", "RTMAX", "SIGRTMIN+15", "rtmax-14", "sigterm", "SIGRTMIN+1"])
def test_stopsignal_numbers_and_realtime_names(signal):
    assert apply("STOPSIGNAL " + signal) == {"StopSignal": signal}


@pytest.mark.parametrize("value", [SUPERSCRIPT_TWO, ARABIC_EIGHTY, "1" + DEVANAGARI_THREE, "x", "-1", "+1", "", "2147483648",
                                   "9" * 5000, "1.5"])
def test_healthcheck_retries_must_be_an_ascii_int32(value):
    shown = value if len(value) <= 60 else value[:60] + "..."
    assert problem(["HEALTHCHECK --retries=%s CMD true" % value], 0) == \
        "HEALTHCHECK --retries=%s is not a number from 0 to 2147483647 in ASCII digits" % shown


@pytest.mark.parametrize("value, retries", [("0", 0), ("2147483647", 2 ** 31 - 1), ("007", 7)])
def test_healthcheck_retries_range(value, retries):
    assert apply("HEALTHCHECK --retries=%s CMD true" % value)["Healthcheck"]["Retries"] == retries


@pytest.mark.parametrize("value", ["\u0661\u0660s", "1\u0660s", "1.\u0665s", "10\uff53", "1" + MATH_NINE + "s", "-5s", "+5s", "5",
                                   ".s", "s", "1hm", "1d", "5 s", "1e3s", "0x10s", "\u221es"])
def test_healthcheck_duration_refuses_non_ascii_and_malformed(value):
    assert problem(["HEALTHCHECK --interval=%s CMD true" % value], 0) == \
        "HEALTHCHECK --interval=%s is not a duration such as 30s or 1m30s" % value.split(" ")[0]


@pytest.mark.parametrize("value", ["10ns", "999us", "0.5ms", "999999ns", "0.0009s"])
def test_healthcheck_duration_below_a_millisecond(value):
    """Docker refuses a non-zero interval under 1ms (parseOptInterval); 0 means the default."""
    assert problem(["HEALTHCHECK --timeout=%s CMD true" % value], 0) == \
        "HEALTHCHECK --timeout=%s is shorter than 1ms, the shortest Docker accepts (0 means the default)" % value


@pytest.mark.parametrize("value", ["2562048h", "2562047h47m16.854775808s", "9" * 30 + "h", "9" * 5000 + "ns", "1" + "0" * 20 + "ns"])
def test_healthcheck_duration_beyond_a_go_duration(value):
    shown = value if len(value) <= 60 else value[:60] + "..."
    assert problem(["HEALTHCHECK --start-period=%s CMD true" % value], 0) == \
        "HEALTHCHECK --start-period=%s is longer than the longest duration Docker stores (about 292 years)" % shown


@pytest.mark.parametrize("value, nanos", [
    (MAX_DURATION, 2 ** 63 - 1),
    ("1ms", 10 ** 6),
    ("0.001s", 10 ** 6),
    ("1." + "9" * 40 + "s", 2 * SECOND - 1),  # fraction digits past a nanosecond are dropped, not rounded up
    ("0" * 50 + "1s", SECOND),
])
def test_healthcheck_duration_limits(value, nanos):
    assert apply("HEALTHCHECK --interval=%s CMD true" % value)["Healthcheck"]["Interval"] == nanos


def test_healthcheck_option_given_twice():
    assert problem(["HEALTHCHECK --interval=1s --interval=2s CMD true"], 0) == "HEALTHCHECK --interval is given twice"


@pytest.mark.parametrize("spec", [ARABIC_EIGHTY, FULLWIDTH_EIGHTY, "80/\uff54\uff43\uff50", ARABIC_EIGHTY + "-90", "80-" + ARABIC_EIGHTY,
                                  "0", "0-5", "9" * 5000, "80/tcp/", "\u0668\u0660/udp"])
def test_expose_refuses_non_ascii_and_zero(spec):
    shown = spec if len(spec) <= 60 else spec[:60] + "..."
    assert problem(["EXPOSE %s" % spec], 0) == PORT_PROBLEM % shown


def test_expose_leading_zeros_are_the_same_port():
    assert apply("EXPOSE 00080 080/udp") == {"ExposedPorts": {"80/tcp": {}, "80/udp": {}}}


def test_expose_splits_on_ascii_blanks_only():
    """A no-break space is part of a word for Docker's parser, so `80<NBSP>81` is one bad port."""
    assert problem(["EXPOSE 80\u00a081"], 0) == PORT_PROBLEM % "80\u00a081"
    assert apply("EXPOSE 80\t81\v82") == {"ExposedPorts": {"80/tcp": {}, "81/tcp": {}, "82/tcp": {}}}


def test_expose_repeated_ranges_stay_linear():
    """Each port is expanded once, however many times the instruction repeats its range."""
    change = "EXPOSE " + " ".join(["1-65535", "2-65535/udp", "100-200/sctp"] * 3900)
    started = time.monotonic()
    ports = apply(change)["ExposedPorts"]
    assert time.monotonic() - started < 2
    assert len(ports) == 65535 + 65534 + 101
    assert "1/tcp" in ports and "1/udp" not in ports and "2/udp" in ports and "65535/udp" in ports and "201/sctp" not in ports


@pytest.mark.parametrize("ranges, expected", [
    ("5-6 1-2 3-4", 6),  # adjacent ranges merge
    ("10-20 15-30 1-5", 5 + 21),
    ("80 80/udp 80-81", 3),
])
def test_expose_merged_ranges_keep_every_port(ranges, expected):
    assert len(apply("EXPOSE " + ranges)["ExposedPorts"]) == expected


@pytest.mark.parametrize("user, part", [
    ("\u0661\u0660\u0660\u0660", "\u0661\u0660\u0660\u0660"),
    ("app:\u0661\u0660", "\u0661\u0660"),
    ("1000:" + FULLWIDTH_EIGHTY, FULLWIDTH_EIGHTY),
    ("2147483648", "2147483648"),
    ("0:4294967296", "4294967296"),
    ("9" * 5000, "9" * 60 + "..."),
])
def test_user_ids_must_be_ascii_and_in_range(user, part):
    shown = user if len(user) <= 60 else user[:60] + "..."
    assert problem(["USER " + user], 0) == "USER %r: %r is not an ID from 0 to 2147483647 in ASCII digits" % (shown, part)


@pytest.mark.parametrize("user", ["2147483647:0", "app1:g2", "\u00f1and\u00fa:1000", "NT AUTHORITY\\SYSTEM", "ContainerUser", "user\u0661"])
def test_user_names_are_free(user):
    assert apply("USER " + user) == {"User": user}


@pytest.mark.parametrize("change, shown", [
    ("u%ser app" % LONG_S, repr("u%ser" % LONG_S)),
    ("USER\u00a0app", repr("USER\u00a0app")),  # only ASCII blanks separate the keyword, as in Docker
    ("\uff35\uff33\uff25\uff32 app", repr("\uff35\uff33\uff25\uff32")),
    ("ENV\u2003A=1", repr("ENV\u2003A=1")),
])
def test_keywords_are_ascii(change, shown):
    text = problem([change], 0)
    assert text.startswith("%s is not an instruction that can change an image's config" % shown)


def test_onbuild_trigger_is_split_on_any_ascii_blank():
    assert problem(["ONBUILD FROM\tbusybox"], 0) == "ONBUILD FROM is not allowed"
    assert apply("ONBUILD %sROM busybox" % LONG_S) == {"OnBuild": ["%sROM busybox" % LONG_S]}  # not FROM for Docker either


def test_legacy_env_splits_key_and_value_on_a_tab():
    assert apply("ENV A\tone two") == {"Env": ["A=one two"]}


@pytest.mark.parametrize("change", ["CMD \ud800", 'CMD ["\\ud800"]', 'ENTRYPOINT ["ok", "\\udc00"]', "ENV A=\udfff",
                                    'HEALTHCHECK CMD ["\\ud800x"]', 'SHELL ["/bin/sh", "\\ud800"]'])
def test_lone_surrogates_are_refused(change):
    """JSON escapes and Ansible strings can hold a lone surrogate; UTF-8 cannot encode it."""
    assert problem([change], 0).endswith("is a lone surrogate, not a character")


def test_a_surrogate_pair_in_json_is_one_character():
    assert apply('CMD ["\\ud83d\\ude00"]') == {"Cmd": ["\U0001f600"]}


def test_instruction_length_cap():
    longest = "LABEL a=" + "x" * (MAX_INSTRUCTION_BYTES - len("LABEL a="))
    started = time.monotonic()
    assert len(apply(longest)["Labels"]["a"]) == MAX_INSTRUCTION_BYTES - 8
    assert time.monotonic() - started < 2
    text = problem([longest + "x"], 0)
    assert text == "the instruction is %d bytes long, more than the %d Linux allows for one argument or environment entry" % (
        MAX_INSTRUCTION_BYTES + 1, MAX_INSTRUCTION_BYTES)
    # counted in UTF-8 bytes: 50,000 three-byte characters are too long
    assert problem(["CMD " + "\u20ac" * 50_000], 0).startswith("the instruction is 150004 bytes long")


def test_error_message_stays_short_for_long_input():
    with pytest.raises(InvalidInput) as info:
        apply_changes({}, ["EXPOSE " + "8" * 100_000])
    assert len(info.value.msg) < 600
    assert "..." in info.value.msg


def test_error_prefix_escapes_control_characters():
    with pytest.raises(InvalidInput) as info:
        apply_changes({}, ["BOGUS\x00\nline"])
    assert info.value.msg.startswith("changes[0] 'BOGUS\\x00\\nline': ")
    assert "\n" not in info.value.msg


def test_deeply_nested_json_is_shell_form_not_a_recursion_error():
    nested = "[" * 100_000
    assert apply("CMD " + nested) == {"Cmd": DEFAULT_SHELL + [nested]}
    assert problem(["VOLUME " + nested], 0) == "volume %r must be an absolute path" % ("[" * 60 + "...")


def test_env_with_many_keys_stays_linear():
    existing = ["K%d=old" % number for number in range(20_000)]
    change = "ENV " + " ".join("K%d=new" % number for number in range(0, 30_000, 3))
    started = time.monotonic()
    env = apply(change, config={"Env": existing})["Env"]
    assert time.monotonic() - started < 2
    assert env[0] == "K0=new" and env[1] == "K1=old" and env[3] == "K3=new"
    assert len(env) == 20_000 + len(range(20_001, 30_000, 3))


def test_env_replaces_only_the_first_of_duplicate_keys():
    assert apply("ENV A=3", config={"Env": ["A=1", "B=2", "A=9"]}) == {"Env": ["A=3", "B=2", "A=9"]}


@pytest.mark.parametrize("changes, text", [
    ("USER app", "changes must be a list of Dockerfile instructions, not a str."),
    ({"USER": "app"}, "changes must be a list of Dockerfile instructions, not a dict."),
    ([1], "changes[0] 1: an instruction must be a string, not a int"),
    ([["USER", "app"]], "changes[0] ['USER', 'app']: an instruction must be a string, not a list"),
])
def test_changes_of_the_wrong_type(changes, text):
    with pytest.raises(InvalidInput) as info:
        apply_changes({}, changes)
    assert info.value.msg == text


@pytest.mark.parametrize("config, text", [
    (["Env"], "The image config to change is a list, not a mapping."),
    ({"Env": "A=1"}, "The image config's Env is a str, not a list."),
    ({"Env": ["A=1", 2]}, "The image config's Env holds an item that is not a string."),
    ({"Labels": [["a", "b"]]}, "The image config's Labels is a list, not a dict."),
    ({"ExposedPorts": ["80/tcp"]}, "The image config's ExposedPorts is a list, not a dict."),
    ({"Shell": "/bin/sh"}, "The image config's Shell is a str, not a list."),
    ({"WorkingDir": 7}, "The image config's WorkingDir is a int, not a str."),
])
def test_restored_config_of_the_wrong_shape(config, text):
    with pytest.raises(InvalidInput) as info:
        apply_changes(config, ["USER app"])
    assert info.value.msg == text


@pytest.mark.parametrize("change", ["CMD [1, 2]", 'CMD [null]', 'ENTRYPOINT [true, "x"]', 'CMD {"a": 1}', "CMD [1e999]", "CMD [" + "9" * 5000 + "]"])
def test_json_forms_with_wrong_types_are_shell_form(change):
    """As in Docker: a JSON array that is not of strings is the shell form, kept as written."""
    result = apply(change)
    key = "Cmd" if change.startswith("CMD") else "Entrypoint"
    assert result == {key: DEFAULT_SHELL + [change.split(" ", 1)[1]]}
    canonical(result)


# properties ---------------------------------------------------------------------------------

KEYWORDS = ["CMD", "ENTRYPOINT", "ENV", "EXPOSE", "HEALTHCHECK", "LABEL", "ONBUILD", "SHELL", "STOPSIGNAL", "USER", "VOLUME",
            "WORKDIR", "RUN", "healthcheck", "expose"]
# Characters that steer the parsers, digits of many scripts, and anything else.
TRICKY = st.sampled_from(
    list("0123456789-/:=.,[]{}\"'\\ \t\n")
    + ["tcp", "udp", "sctp", "ms", "us", "s", "m", "h", "ns", "--interval=", "--retries=", "--timeout=", "CMD ", "NONE",
       "SIG", "RTMIN+", "\\u", ARABIC_EIGHTY, SUPERSCRIPT_TWO, MATH_NINE, LONG_S, "\u00a0", "\ud800"])
ARGUMENT = st.lists(st.one_of(TRICKY, st.text(max_size=4), st.characters(categories=["Nd"])), max_size=25).map("".join)
INSTRUCTION = st.builds(lambda keyword, blank, argument: keyword + blank + argument,
                        st.sampled_from(KEYWORDS), st.sampled_from([" ", "\t", "  ", "\u00a0"]), ARGUMENT)
CONFIG = st.fixed_dictionaries({}, optional={
    "Env": st.lists(st.text(max_size=8), max_size=4), "Shell": st.lists(st.text(max_size=5), max_size=3),
    "ExposedPorts": st.dictionaries(st.text(max_size=6), st.just({}), max_size=3), "WorkingDir": st.text(max_size=8),
})
PROPERTY = settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])


def outcome(config, changes):
    """The new config, or the InvalidInput sentence; anything else fails the property."""
    snapshot = copy.deepcopy(config)
    try:
        result = apply_changes(config, changes)
    except InvalidInput as exc:
        assert exc.msg.startswith("changes[") or exc.msg.startswith("The image config")
        assert "\n" not in exc.msg and len(exc.msg) < 1000
        assert config == snapshot  # nothing is left changed
        return exc.msg
    assert config == snapshot
    canonical(result)
    return result


@PROPERTY
@given(st.lists(st.one_of(INSTRUCTION, st.text()), min_size=1, max_size=3), CONFIG)
def test_any_text_gives_a_config_or_one_sentence(changes, config):
    outcome(config, changes)


@PROPERTY
@given(st.text(alphabet=st.characters(categories=["Nd"]), min_size=1, max_size=8).filter(lambda text: not text.isascii()),
       st.sampled_from(["EXPOSE {}", "EXPOSE {}/udp", "EXPOSE 80-{}", "STOPSIGNAL {}", "STOPSIGNAL SIGRTMIN+{}",
                        "HEALTHCHECK --retries={} CMD true", "HEALTHCHECK --interval={}s CMD true", "HEALTHCHECK --timeout=1.{}s CMD true",
                        "USER {}", "USER app:{}"]))
def test_numbers_in_other_scripts_are_always_refused(digits, template):
    message = outcome({}, [template.format(digits)])
    assert isinstance(message, str), "%r was accepted" % template.format(digits)


@PROPERTY
@given(st.integers(min_value=-5, max_value=70_000), st.sampled_from(["", "/tcp", "/udp", "/sctp"]))
def test_expose_accepts_exactly_the_16_bit_ports(port, protocol):
    result = outcome({}, ["EXPOSE %d%s" % (port, protocol)])
    if 1 <= port <= 65535:
        assert result == {"ExposedPorts": {"%d/%s" % (port, protocol[1:] or "tcp"): {}}}
    else:
        assert isinstance(result, str)


@PROPERTY
@given(st.lists(st.tuples(st.integers(min_value=0, max_value=10 ** 6), st.integers(min_value=0, max_value=10 ** 9 - 1),
                          st.sampled_from(["ns", "us", "\u00b5s", "ms", "s", "m", "h"])), min_size=1, max_size=4))
def test_durations_are_exact(parts):
    text = "".join("%d.%09d%s" % (whole, fraction, unit) for whole, fraction, unit in parts)
    unit_nanos = {"ns": 1, "us": 1000, "\u00b5s": 1000, "ms": 10 ** 6, "s": 10 ** 9, "m": 60 * 10 ** 9, "h": 3600 * 10 ** 9}
    expected = sum(int(Fraction(whole * 10 ** 9 + fraction, 10 ** 9) * unit_nanos[unit]) for whole, fraction, unit in parts)
    result = outcome({}, ["HEALTHCHECK --interval=%s CMD true" % text])
    if expected == 0 or 10 ** 6 <= expected <= 2 ** 63 - 1:  # below 1 ns is 0 for Go too
        assert result["Healthcheck"]["Interval"] == expected
    else:
        assert isinstance(result, str)


@PROPERTY
@given(st.lists(st.sampled_from(list("ab =\"'\\\t\n\r") + ["\u00e9", "\u00a0", "\\\\", "\\\""]), max_size=40).map("".join))
def test_env_words_are_split_as_shlex_splits_them(text):
    """ENV and LABEL read quotes and escapes as shlex.split does, in linear time."""
    try:
        expected = shlex.split(text)
    except ValueError as exc:
        expected = str(exc)
    try:
        words = _shell_words(text)
    except ValueError as exc:
        words = str(exc)
    assert words == expected


@pytest.mark.parametrize("text", ['"' + "a" * 131_000, "'" + "b" * 131_000, "\\a" * 65_000, 'x="' + "\\\\" * 65_000, "c" * 131_000])
def test_env_word_splitting_is_linear(text):
    started = time.monotonic()
    try:
        _shell_words(text)
    except ValueError:
        pass
    assert time.monotonic() - started < 0.5
