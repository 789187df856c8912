"""`headroom certs`, `headroom run -- CMD ...`, `headroom web`, and the forward-mode launch args.

`headroom_core.cli` owns the command and `headroom proxy`; it registers these subcommands with
`add_subcommands(subparsers, proxy_argv=..., settings_from_args=..., add_proxy_flags=...)` and
appends `forward_mode_args(settings)` to the mitmproxy arguments of `headroom proxy --forward`
(and so of `headroom web --forward`). Nothing here imports mitmproxy: the CA is created by
mitmproxy in a child process (certs.py) and mitmweb is exec'd like mitmdump.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

from . import certs
from .settings import Settings

WEB_PORT = 8081
WEB_COLUMNS = ("tls", "icon", "path", "method", "status", "size", "time", "comment")


# ---------------------------------------------------------------- shared helpers

def proxy_host(settings: Settings) -> str:
    """The address clients use to reach the forward listener (a wildcard bind means loopback)."""
    return "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host


def ca_dir_for(settings: Settings, override: str | None = None) -> Path:
    return Path(os.path.expanduser(override)) if override else certs.ca_dir(settings)


def forward_mode_args(settings: Settings, ca_dir: Path | None = None) -> list[str]:
    """Extra mitmdump/mitmweb arguments for `--forward`: a regular listener beside the reverse
    one in the same process, using the project CA (created here if missing, key 0600)."""
    if not settings.forward:
        return []
    confdir = ca_dir or certs.ca_dir(settings)
    certs.ensure_ca(confdir)
    # Bind where the reverse listener binds. An IPv6 address cannot be written in a mode spec
    # unambiguously; it then comes from --listen-host, which `headroom proxy` always passes.
    where = str(settings.forward_port) if ":" in settings.host \
        else f"{settings.host}:{settings.forward_port}"
    return ["--mode", f"regular@{where}", "--set", f"confdir={confdir}"]


def certs_text(settings: Settings, ca_dir: Path) -> str:
    """What `headroom certs` prints: shell lines that can be pasted as they are."""
    info = certs.ca_info(ca_dir)
    env = certs.env_for_proxy(settings.forward_port, ca_dir, proxy_host(settings))
    q = shlex.quote
    lines = [
        "# headroom project CA",
        f"#   certificate: {info.path}",
        f"#   SHA-256:     {info.sha256}",
        "# Trust it for one tool by pasting the lines below (or use `headroom run -- CMD`).",
        "# Node (added to its built-in roots):",
        f"export NODE_EXTRA_CA_CERTS={q(env['NODE_EXTRA_CA_CERTS'])}",
        "# Python: ssl, httpx, requests, the OpenAI and Anthropic SDKs. These variables replace",
        "# the default roots, so they point at a bundle of the system roots plus our CA:",
        f"export SSL_CERT_FILE={q(env['SSL_CERT_FILE'])}",
        f"export REQUESTS_CA_BUNDLE={q(env['REQUESTS_CA_BUNDLE'])}",
        "# curl (or: curl --cacert " + q(str(info.path)) + " ...):",
        f"export CURL_CA_BUNDLE={q(env['CURL_CA_BUNDLE'])}",
        "# Send HTTPS through `headroom proxy --forward`:",
        f"export HTTPS_PROXY={q(env['HTTPS_PROXY'])}",
        f"export https_proxy={q(env['https_proxy'])}",
    ]
    return "\n".join(lines) + "\n"


def listening(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=0.5).close()
        return True
    except OSError:
        return False


def mitm_tool(name: str) -> str:
    """The venv's own mitmdump/mitmweb (beside this Python), else one on PATH."""
    beside = Path(sys.executable).with_name(name)
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if not found:
        raise SystemExit(f"headroom: {name} not found (is mitmproxy installed in this environment?)")
    return found


# ---------------------------------------------------------------- subcommands
# Each parser's `func(args) -> exit code` is called by cli.main().

def _settings(args: argparse.Namespace) -> Settings:
    flags = {k: getattr(args, k) for k in ("data_dir", "forward_port")
             if getattr(args, k, None) is not None}
    try:
        return Settings.resolve(flags)
    except ValueError as e:
        raise SystemExit(f"headroom: error: {e}") from None


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--forward-port", type=int, default=None,
                   help="port of the forward proxy [env HEADROOM_FORWARD_PORT; default 8080]")
    p.add_argument("--data-dir", default=None,
                   help="data directory; when given, its certs/ folder holds the CA")
    p.add_argument("--ca-dir", default=None,
                   help="use this CA directory instead (default: see certs/README.md)")


def cmd_certs(args: argparse.Namespace) -> int:
    settings = _settings(args)
    sys.stdout.write(certs_text(settings, ca_dir_for(settings, args.ca_dir)))
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    command = list(args.cmd_argv or [])
    if command[:1] == ["--"]:
        command = command[1:]
    if not command:
        print("headroom run: give a command after --, e.g. headroom run -- claude",
              file=sys.stderr)
        return 2
    settings = _settings(args)
    host = proxy_host(settings)
    if not listening(host, settings.forward_port):
        print(f"headroom run: nothing listens on {host}:{settings.forward_port}; start "
              "`headroom proxy --forward` first", file=sys.stderr)
    env = dict(os.environ)
    env.update(certs.env_for_proxy(settings.forward_port, ca_dir_for(settings, args.ca_dir), host))
    try:
        return subprocess.call(command, env=env)
    except FileNotFoundError:
        print(f"headroom run: command not found: {command[0]}", file=sys.stderr)
        return 127


def web_args(web_port: int, open_browser: bool) -> list[str]:
    """mitmweb options: UI on loopback, the comment column shown (a list option takes one
    `--set` per item; a comma-joined value would be one unknown column)."""
    columns = [a for c in WEB_COLUMNS for a in ("--set", f"web_columns={c}")]
    return ["--set", "web_host=127.0.0.1", "--set", f"web_port={web_port}",
            "--set", f"web_open_browser={'true' if open_browser else 'false'}", *columns]


DUMP_ONLY_OPTIONS = ("flow_detail=", "dumper_")  # declared by mitmdump's Dumper, not mitmweb's


def mitmweb_argv(proxy_argv: Sequence[str], web_port: int, open_browser: bool) -> list[str]:
    """`headroom proxy`'s mitmproxy arguments (no program name) as a mitmweb command line:
    same listeners, addons and options, minus mitmdump-only ones (mitmweb would refuse
    them), plus the UI's."""
    out = [mitm_tool("mitmweb")]
    rest = list(proxy_argv)
    i = 0
    while i < len(rest):
        if rest[i] == "--set" and i + 1 < len(rest) and rest[i + 1].startswith(DUMP_ONLY_OPTIONS):
            i += 2
            continue
        out.append(rest[i])
        i += 1
    return out + web_args(web_port, open_browser)


# How `headroom proxy` turns flags into Settings and Settings into mitmproxy arguments; cli.py
# passes its own functions so `headroom web` runs exactly what `headroom proxy` would.
ProxyArgv = Callable[[Settings], list[str]]
SettingsFromArgs = Callable[[argparse.Namespace], Settings]


def cmd_web(args: argparse.Namespace) -> int:
    settings: Settings = args.web_settings(args)
    if listening("127.0.0.1", args.web_port):
        print(f"headroom web: error: port {args.web_port} is already in use; choose another "
              "with --web-port", file=sys.stderr)
        return 1
    try:
        extra = list(args.mitmweb_args or [])
        extra = extra[1:] if extra[:1] == ["--"] else extra
        argv = mitmweb_argv(args.web_proxy_argv(settings), args.web_port, not args.no_browser)
        argv += extra
    except (RuntimeError, OSError) as e:
        print(f"headroom web: error: {e}", file=sys.stderr)
        return 1
    print(f"headroom web: UI at http://127.0.0.1:{args.web_port}/  proxy at "
          f"http://{proxy_host(settings)}:{settings.port}", file=sys.stderr)
    sys.stderr.flush()
    os.execv(argv[0], argv)  # mitmweb becomes this process: one pid, signals go to it
    return 0


def add_subcommands(subparsers: Any, *, proxy_argv: ProxyArgv,
                    settings_from_args: SettingsFromArgs,
                    add_proxy_flags: Callable[[argparse.ArgumentParser], None]) -> None:
    """Register `certs`, `run` and `web` on the `headroom` command's subparsers. `web` takes
    the same flags as `proxy` (`add_proxy_flags`) plus --web-port and --no-browser."""
    p = subparsers.add_parser("certs", help="print the project CA and the lines to trust it")
    _common(p)
    p.set_defaults(func=cmd_certs)

    p = subparsers.add_parser("run", help="run one command through the forward proxy",
                              usage="headroom run [--forward-port N] -- CMD [ARG ...]")
    _common(p)
    p.add_argument("cmd_argv", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_run)

    p = subparsers.add_parser("web", help="start mitmweb with the headroom addons (loopback)",
                              usage="headroom web [options] [-- MITMWEB_ARG ...]",
                              description="The same listeners and options as `headroom proxy`, "
                                          "with mitmweb's UI on 127.0.0.1.")
    add_proxy_flags(p)
    p.add_argument("--web-port", type=int, default=WEB_PORT, help="port of the web UI [8081]")
    p.add_argument("--no-browser", action="store_true", help="do not open a browser")
    p.add_argument("mitmweb_args", nargs=argparse.REMAINDER,
                   help="after --: arguments passed to mitmweb unchanged")
    p.set_defaults(func=cmd_web, web_proxy_argv=proxy_argv, web_settings=settings_from_args)
