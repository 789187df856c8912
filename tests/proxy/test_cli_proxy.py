"""`headroom proxy`: flags, precedence, the mitmdump command line, start-up failures, banner."""

from __future__ import annotations

import dataclasses
import io
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from headroom_core import cli, console, settings as settings_mod
from headroom_core.settings import OPTIONS, Settings

HEADROOM = str(Path(sys.executable).with_name("headroom"))


def parse(*argv: str):
    args = cli.build_parser().parse_args(["proxy", *argv])
    args.mitmdump_args = []
    return args


def test_help_lists_every_option_with_its_env_var():
    out = subprocess.run([HEADROOM, "proxy", "--help"], capture_output=True, text=True,
                         timeout=30, env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0
    text = " ".join(out.stdout.split())
    for spec in OPTIONS:
        assert spec.cli_flag in text
        if spec.env:
            assert spec.env in text, spec.env


@pytest.mark.parametrize("argv,environ,expected", [
    ((), {}, 8787),
    ((), {"HEADROOM_PORT": "9001"}, 9001),
    (("--port", "9002"), {"HEADROOM_PORT": "9001"}, 9002),
])
def test_precedence_flag_env_default(argv, environ, expected):
    assert cli.settings_from_args(parse(*argv), environ).port == expected


def test_bool_flags_and_lists():
    s = cli.settings_from_args(parse("--no-optimize", "--protect-tool", "Read",
                                     "--protect-tool", "Bash"), {"HEADROOM_OPTIMIZE": "true"})
    assert s.optimize is False
    assert s.protect_tool == ("Read", "Bash")
    s = cli.settings_from_args(parse(), {"HEADROOM_OPTIMIZE": "false",
                                         "HEADROOM_PROTECT_TOOLS": "a,b"})
    assert s.optimize is False and s.protect_tool == ("a", "b")


@pytest.mark.parametrize("argv,environ,needle", [
    (("--port", "abc"), {}, "--port"),
    (("--port", "70000"), {}, "--port"),
    (("--budget", "lots"), {}, "--budget"),
    ((), {"HEADROOM_MIN_SAVINGS": "2"}, "--min-savings"),
    (("--openai-api-url", "ftp://x"), {}, "--openai-api-url"),
])
def test_bad_option_exits_2_naming_it(argv, environ, needle, capsys):
    with pytest.raises(SystemExit) as e:
        cli.settings_from_args(parse(*argv), environ)
    assert e.value.code == 2
    assert needle in capsys.readouterr().err


def test_proxy_args_carry_changed_and_env_values(tmp_path):
    environ = {"HEADROOM_MIN_TOKENS": "800"}
    s = cli.settings_from_args(parse("--port", "9100", "--no-optimize", "--data-dir",
                                     str(tmp_path), "--openai-api-url", "http://h:9/openai",
                                     "--min-tokens", "500"), environ)
    args = cli.proxy_args(s, environ)
    sets = [args[i + 1] for i, a in enumerate(args) if a == "--set"]
    assert "headroom_optimize=false" in sets
    assert "headroom_port=9100" in sets
    assert "headroom_openai_api_url=http://h:9/openai" in sets
    # equal to the default, but the environment says otherwise: the child must get the flag
    assert "headroom_min_tokens=500" in sets
    assert "connection_strategy=lazy" in sets
    assert f"confdir={tmp_path}/certs" in sets
    assert not any(a.startswith("headroom_rpm") for a in sets)  # default, no env: left out
    mode = args[args.index("--mode") + 1]
    assert mode == "reverse:https://api.anthropic.com@9100"
    assert args[args.index("--listen-host") + 1] == "127.0.0.1"
    assert Path(args[args.index("-s") + 1]).name == "headroom.py"


def test_empty_list_overrides_env():
    environ = {"HEADROOM_PROTECT_TOOLS": "a"}
    s = Settings.resolve({"protect_tool": []}, environ)
    args = cli.proxy_args(s, environ)
    i = args.index("headroom_protect_tool")
    assert args[i - 1] == "--set"


def test_taken_port_fails_fast_with_a_clear_message(capsys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        calls = []
        code = cli.run_proxy(parse("--port", str(port)), {}, execv=lambda *a: calls.append(a))
    assert code == 1 and not calls
    err = capsys.readouterr().err
    assert f"port {port} on 127.0.0.1 is already in use" in err


def test_taken_port_subprocess_exits_nonzero_quickly(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        t0 = time.monotonic()
        out = subprocess.run([HEADROOM, "proxy", "--port", str(port), "--data-dir", str(tmp_path)],
                             capture_output=True, text=True, timeout=30)
        elapsed = time.monotonic() - t0
    assert out.returncode == 1
    assert "already in use" in out.stderr
    assert elapsed < 10


def test_bad_option_subprocess(tmp_path):
    out = subprocess.run([HEADROOM, "proxy", "--port", "nope"], capture_output=True, text=True,
                         timeout=30)
    assert out.returncode == 2
    assert "--port" in out.stderr and "Traceback" not in out.stderr


def test_run_proxy_execs_mitmdump_after_the_banner(tmp_path, capsys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    calls = []
    code = cli.run_proxy(parse("--port", str(port), "--data-dir", str(tmp_path)),
                         {}, execv=lambda path, argv: calls.append((path, argv)))
    assert code == 0
    path, argv = calls[0]
    assert Path(path).name == "mitmdump" and argv[0] == path
    err = capsys.readouterr().err
    assert f"http://127.0.0.1:{port}" in err and "https://api.anthropic.com" in err


def test_banner_reports_options_not_yet_available(monkeypatch):
    spec = settings_mod.OPTIONS_BY_NAME["budget"]
    monkeypatch.setitem(settings_mod.OPTIONS_BY_NAME, "budget",
                        dataclasses.replace(spec, available=False))
    s = Settings(budget="5")
    out = io.StringIO()
    console.print_banner(s, "0.1.0", stream=out)
    text = out.getvalue()
    assert "not yet available" in text and "--budget" in text
    assert console.feature_states(s)["budget"] == console.NOT_YET


def test_feature_states_follow_settings():
    states = console.feature_states(Settings(optimize=False, rpm=10, forward=True))
    assert states["optimize"] == "off"
    assert states["rate_limit"].startswith("on") and "10 rpm" in states["rate_limit"]
    assert states["forward_proxy"] == "on (port 8080)"
    assert console.feature_states(Settings())["rate_limit"] == "off"  # no limits set


def test_proxy_double_dash_args_go_to_mitmdump(tmp_path, monkeypatch):
    seen = {}

    def fake_run(args, environ=None, execv=None):
        seen["extra"] = args.mitmdump_args
        return 0

    monkeypatch.setattr(cli, "run_proxy", fake_run)
    parser = cli.build_parser
    monkeypatch.setattr(cli, "build_parser", lambda: _with_func(parser(), fake_run))
    assert cli.main(["proxy", "--port", "9", "--", "--set", "x=y"]) == 0
    assert seen["extra"] == ["--set", "x=y"]


def _with_func(parser, func):
    parser._subparsers._group_actions[0].choices["proxy"].set_defaults(func=func)
    return parser
