"""headroom's CPU per request inside mitmproxy, measured in one process: the figure that the
load of a shared machine disturbs least. Run by bench_proxy.py; alone:

    .venv/bin/python scripts/bench_dispatch.py [--rounds 20] [--requests 300] [--script PATH]

Two mitmproxy masters with mitmdump's default addons live in this process, one of them also
with `-s addons/headroom.py`; no sockets. A block hands N pre-built small Anthropic flows
through the four events mitmproxy's proxy core raises per request (requestheaders, request,
responseheaders, response, each followed by mitmproxy's update event), then waits for
headroom's accounting worker to finish them. Blocks of the two masters alternate (ABBA) on the
same thread, so a busy neighbour slows both alike; the CPU time of the whole process (all
threads) per request is compared block pair by block pair. What it leaves out is the same for
both: sockets, HTTP parsing, the upstream connection.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from mitmproxy import ctx, hooks, http, options
from mitmproxy.proxy.layers.http import (HttpRequestHeadersHook, HttpRequestHook,
                                         HttpResponseHeadersHook, HttpResponseHook)
from mitmproxy.proxy.mode_specs import ProxyMode
from mitmproxy.test import tflow, tutils
from mitmproxy.tools.dump import DumpMaster

ADDON = Path(__file__).resolve().parents[1] / "addons" / "headroom.py"
MODE = "reverse:http://127.0.0.1:9@8787"
BODY = json.dumps({"model": "claude-sonnet-4-5", "max_tokens": 64, "messages": [
    {"role": "user", "content": "Say hello in five words, please."}]}).encode()
REPLY = json.dumps({"id": "msg_1", "type": "message", "role": "assistant",
                    "model": "claude-sonnet-4-5", "content": [{"type": "text", "text": "Hi."}],
                    "stop_reason": "end_turn",
                    "usage": {"input_tokens": 14, "output_tokens": 3}}).encode()


def small_flow() -> tuple[http.HTTPFlow, http.Response]:
    headers = http.Headers([(b"Host", b"127.0.0.1:8787"), (b"content-type", b"application/json"),
                            (b"x-api-key", b"sk-bench"), (b"anthropic-version", b"2023-06-01"),
                            (b"content-length", str(len(BODY)).encode())])
    req = tutils.treq(method=b"POST", path=b"/v1/messages", host="127.0.0.1", port=9,
                      scheme=b"http", headers=headers, content=BODY, timestamp_start=time.time())
    flow = tflow.tflow(req=req)
    flow.client_conn.proxy_mode = ProxyMode.parse(MODE)
    resp = tutils.tresp(headers=http.Headers([(b"content-type", b"application/json"),
                                              (b"content-length", str(len(REPLY)).encode())]),
                        content=REPLY)
    return flow, resp


class Target:
    """One master; `core` is headroom's HeadroomCore when the script is loaded."""

    def __init__(self, master: DumpMaster, core=None) -> None:
        self.master, self.core = master, core

    @classmethod
    async def start(cls, script: str | None) -> "Target":
        tmp = tempfile.mkdtemp(prefix="headroom-dispatch-")
        opts = options.Options()
        master = DumpMaster(opts, with_termlog=False, with_dumper=False)
        opts.update(server=False, mode=[MODE], confdir=tmp, connection_strategy="lazy")
        core = None
        if script:
            opts.update(scripts=[script])
            for _ in range(400):  # mitmproxy loads scripts from its event loop
                if "headroom_data_dir" in opts:
                    break
                await asyncio.sleep(0.05)
            else:
                raise RuntimeError(f"{script} did not load")
            # As `headroom proxy --no-cache` runs in bench_proxy.py: the same request repeats.
            opts.update(headroom_data_dir=str(Path(tmp) / "data"), headroom_cache=False)
            loader = next(a for a in master.addons.chain if type(a).__name__ == "ScriptLoader")
            core = loader.addons[0].ns.shared.core
        await master.addons.trigger_event(hooks.RunningHook())
        return cls(master, core)

    async def block(self, n: int) -> float:
        """CPU microseconds per request over n requests."""
        ctx.master, ctx.options = self.master, self.master.options  # addons read ctx
        flows = [small_flow() for _ in range(n)]
        if self.core is not None:
            await self.core.flush()
        lifecycle = self.master.addons.handle_lifecycle
        t0 = time.process_time()
        for flow, resp in flows:
            await lifecycle(HttpRequestHeadersHook(flow))
            await lifecycle(HttpRequestHook(flow))
            flow.response = resp
            await lifecycle(HttpResponseHeadersHook(flow))
            await lifecycle(HttpResponseHook(flow))
        if self.core is not None:
            await self.core.flush()  # the accounting worker's share counts too
        return 1e6 * (time.process_time() - t0) / n


async def measure(script: str, rounds: int, requests: int) -> dict:
    plain = await Target.start(None)
    headroom = await Target.start(script)
    for target in (plain, headroom):  # warm-up: imports, the tokenizer, caches
        await target.block(requests)
    cpu: dict[str, list[float]] = {"plain": [], "headroom": []}
    for r in range(rounds):
        order = [("plain", plain), ("headroom", headroom)]
        for name, target in order if r % 2 == 0 else order[::-1]:
            cpu[name].append(await target.block(requests))
    added = [h - p for p, h in zip(cpu["plain"], cpu["headroom"])]
    return {"plain_us": cpu["plain"], "headroom_us": cpu["headroom"], "added_us": added,
            "added_median_us": statistics.median(added),
            "plain_median_us": statistics.median(cpu["plain"]),
            "headroom_median_us": statistics.median(cpu["headroom"])}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--requests", type=int, default=300, help="requests per block")
    parser.add_argument("--script", default=str(ADDON))
    args = parser.parse_args()
    result = asyncio.run(measure(args.script, args.rounds, args.requests))
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()
    os._exit(0)  # headroom's relay and worker threads need no orderly goodbye here


if __name__ == "__main__":
    main()
