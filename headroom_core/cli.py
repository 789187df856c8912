"""The `headroom` command. `headroom proxy` resolves the settings, prints a banner and execs the
venv's `mitmdump` with the addons of `headroom_addons/headroom.py` (so this package never imports
mitmproxy, and the proxy process is mitmdump itself: one pid, signals go straight to it).

Every option of the settings table is a flag here, an environment variable and a `headroom_*`
mitmproxy option; precedence flag > environment > default. Arguments after `--` go to mitmdump
unchanged (for example `-- --set ssl_verify_upstream_trusted_ca=ca.pem`).
"""

from __future__ import annotations

import argparse
import errno
import os
import shutil
import socket
import sys
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from .settings import OPTIONS, OptionSpec, Settings

EXIT_USAGE = 2  # bad option (argparse's own code)
EXIT_FAILURE = 1  # could not start (port taken, mitmdump missing)


class StartError(Exception):
    """The proxy cannot start; the message says why and what to do."""


def _describe(spec: OptionSpec) -> str:
    default = spec.default
    if spec.kind is list:
        shown = "none" if not default else ",".join(default)
    elif spec.kind is bool:
        shown = "on" if default else "off"
    else:
        shown = repr(default) if default == "" else str(default)
    parts = [spec.help.rstrip(".") + "."]
    if spec.env:
        parts.append(f"env {spec.env}" + (" (comma-separated)" if spec.kind is list else ""))
    parts.append(f"default {shown}")
    text = " [" + "; ".join(parts[1:]) + "]"
    if not spec.available:
        text += " (not yet available)"
    return (parts[0] + text).replace("%", "%%")


def add_option_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per option of the settings table; unset flags stay None (env/default apply)."""
    for spec in OPTIONS:
        kw: dict[str, Any] = {"dest": spec.name, "default": None, "help": _describe(spec)}
        if spec.kind is bool:
            negative = spec.cli_flag.startswith("--no-")
            parser.add_argument(spec.cli_flag, action="store_const", const=not negative, **kw)
        elif spec.kind is list:
            parser.add_argument(spec.cli_flag, action="append", metavar="VALUE", **kw)
        else:
            parser.add_argument(spec.cli_flag, metavar=spec.name.upper(), **kw)


def check_port_free(host: str, port: int, what: str = "port") -> None:
    """StartError if something already listens on host:port (checked with SO_REUSEADDR, as
    mitmproxy binds, so a port in TIME_WAIT is not reported as taken)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as e:
        raise StartError(f"--host {host!r} does not resolve: {e}") from None
    for family, kind, proto, _, addr in infos[:1]:
        with socket.socket(family, kind, proto) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(addr)
            except OSError as e:
                if e.errno == errno.EADDRINUSE:
                    raise StartError(f"{what} {port} on {host} is already in use (is another "
                                     f"headroom running?); choose another with "
                                     f"{'--port' if what == 'port' else '--forward-port'}") from None
                raise StartError(f"cannot listen on {host}:{port}: {e.strerror}") from None


def addon_script() -> Path:
    """addons/headroom.py as installed (package headroom_addons), without importing mitmproxy."""
    import importlib.util

    spec = importlib.util.find_spec("headroom_addons")
    if spec is None or not spec.submodule_search_locations:
        raise StartError("the headroom_addons package is not installed (pip install -e .)")
    for location in spec.submodule_search_locations:
        path = Path(location) / "headroom.py"
        if path.is_file():
            return path
    raise StartError("headroom_addons/headroom.py is missing from the installation")


def mitmdump_path() -> str:
    """The mitmdump of this interpreter's environment, else the one on PATH."""
    beside = Path(sys.executable).parent / "mitmdump"
    if beside.is_file():
        return str(beside)
    found = shutil.which("mitmdump")
    if not found:
        raise StartError("mitmdump not found: install mitmproxy into this environment")
    return found


def proxy_args(settings: Settings, environ: Mapping[str, str] | None = None) -> list[str]:
    """mitmproxy arguments (no program name) that run headroom with these settings; shared by
    `headroom proxy` (mitmdump) and `headroom web` (mitmweb)."""
    from . import certs
    from .cli_tools import forward_mode_args
    from .routing import parse_upstream

    environ = os.environ if environ is None else environ
    # Reverse mode needs a target; routing rewrites every flow to its real upstream, so any
    # valid one serves (the path prefix is applied by routing, not here).
    up = parse_upstream(settings.anthropic_api_url)
    args = ["-s", str(addon_script()),
            "--mode", f"reverse:{up.scheme}://{up.host_header}@{settings.port}",
            "--listen-host", settings.host,
            # Cache hits and refusals answer without opening an upstream connection.
            "--set", "connection_strategy=lazy",
            # Our banner and request lines replace mitmproxy's per-flow output; warnings stay.
            "--set", "flow_detail=0", "--set", "termlog_verbosity=warn"]
    # stream_large_bodies is left unset on purpose: large requests are the ones worth
    # optimising, so they must be buffered; SSE responses are streamed per flow by the addon.
    if settings.forward:
        args += forward_mode_args(settings)  # a regular listener and the project CA
    else:
        args += ["--set", f"confdir={certs.ca_dir(settings)}"]
    # Pass every value the addon would not derive by itself (it reads the environment too).
    for spec in OPTIONS:
        value = getattr(settings, spec.name)
        default = tuple(spec.default) if spec.kind is list else spec.default
        if value == default and not (spec.env and spec.env in environ):
            continue
        if spec.kind is list:
            args += [a for v in value for a in ("--set", f"{spec.mitm_name}={v}")] \
                or ["--set", spec.mitm_name]
        elif spec.kind is bool:
            args += ["--set", f"{spec.mitm_name}={'true' if value else 'false'}"]
        else:
            args += ["--set", f"{spec.mitm_name}={value}"]
    return args


def settings_from_args(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> Settings:
    """Settings from the proxy flags (flag > env > default); exits 2 naming a bad option."""
    flags = {spec.name: getattr(args, spec.name, None) for spec in OPTIONS}
    try:
        return Settings.resolve(flags, os.environ if environ is None else environ)
    except ValueError as e:
        print(f"headroom: error: {e}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE) from None


def run_proxy(args: argparse.Namespace, environ: Mapping[str, str] | None = None,
              execv: Callable[[str, list[str]], Any] = os.execv) -> int:
    environ = os.environ if environ is None else environ
    settings = settings_from_args(args, environ)
    try:
        check_port_free(settings.host, settings.port)
        if settings.forward:
            check_port_free(settings.host, settings.forward_port, "forward port")
        argv = [mitmdump_path(), *proxy_args(settings, environ), *args.mitmdump_args]
    except (StartError, RuntimeError) as e:
        print(f"headroom proxy: error: {e}", file=sys.stderr)
        return EXIT_FAILURE
    from .console import print_banner, version

    print_banner(settings, version())
    sys.stdout.flush()
    sys.stderr.flush()
    execv(argv[0], argv)
    return 0  # only reached with a test double for execv


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="headroom", description=(
        "Context-optimisation proxy for LLM provider APIs (Anthropic, OpenAI)."))
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    proxy = sub.add_parser(
        "proxy", help="run the reverse proxy (127.0.0.1:8787 by default)",
        description="Run headroom in front of the Anthropic and OpenAI APIs. Every option is "
                    "also an environment variable and a headroom_* mitmproxy option; "
                    "precedence: flag > environment > default. Arguments after -- are "
                    "passed to mitmdump.")
    add_option_flags(proxy)
    proxy.set_defaults(func=run_proxy)
    from .cli_tools import add_subcommands

    add_subcommands(sub, proxy_argv=proxy_args, settings_from_args=settings_from_args,
                    add_proxy_flags=add_option_flags)
    from .demo import add_demo_command

    add_demo_command(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra: list[str] = []
    if argv[:1] == ["proxy"] and "--" in argv:  # `headroom run -- CMD` keeps its own --
        cut = argv.index("--")
        argv, extra = argv[:cut], argv[cut + 1:]
    args = build_parser().parse_args(argv)
    args.mitmdump_args = extra
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
