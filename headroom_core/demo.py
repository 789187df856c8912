"""`headroom demo`: headroom at work on a few realistic agent requests, with no API key.

Starts a fake provider and `headroom proxy` on loopback, sends an Anthropic, an OpenAI Chat
Completions and an OpenAI Responses request whose tool outputs an agent would really carry (an
incident log, issue-tracker JSON, code search hits, a test run, a file read, a short `git
status`), prints what reached the provider (tokens before and after, what was kept) and stops
everything. Token counts are tiktoken o200k_base over each output, and over each whole request.
"""

from __future__ import annotations

import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

KEY = "sk-demo-not-a-real-key"
QUESTION = "Checkout fails for order ord_7Q2KX since this morning. Find out why and fix it."
_SVC = ("api-gateway", "payments", "ledger", "cache", "worker")


# --- sample tool outputs (deterministic) ----------------------------------------------------

def incident_log(n: int = 2500) -> str:
    rng = random.Random(7)
    out = []
    for i in range(n):
        ts = f"2025-03-14T09:{i // 60 % 60:02d}:{i % 60:02d}.{rng.randint(0, 999):03d}Z"
        svc = rng.choice(_SVC)
        if i == 1717:
            out.append(f"{ts} ERROR [payments] charge failed order=ord_7Q2KX: ledger lock timeout after 30000ms")
            out += ["Traceback (most recent call last):",
                    '  File "/srv/payments/settle.py", line 88, in settle',
                    "    ledger.lock(order_id, timeout=30)",
                    "payments.ledger.LockTimeout: lock held by settle-batch-7 for 31s"]
        elif i == 2400:
            out.append(f"{ts} FATAL [ledger] settle-batch-7 deadlock detected; worker restarting")
        elif i % 97 == 0:
            out.append(f"{ts} WARN  [{svc}] slow request took {rng.randint(900, 3000)}ms")
        else:
            out.append(f"{ts} INFO  [{svc}] req_id=req-{rng.randrange(16**8):08x} method=GET "
                       f"path=/api/v1/orders/{rng.randint(1000, 99999)} status=200 "
                       f"latency_ms={rng.randint(3, 80)}")
    return "\n".join(out)


def issues_json(n: int = 80) -> str:
    rng = random.Random(8)
    labels = ["bug", "enhancement", "docs", "payments", "infra"]
    issues = []
    for k in range(n):
        number = 4650 + k
        issues.append({"number": number, "state": "closed" if k % 3 else "open",
                       "title": f"{rng.choice(['Flaky', 'Slow', 'Broken', 'Missing'])} "
                                f"{rng.choice(['refund', 'invoice', 'webhook', 'export'])} "
                                f"{rng.choice(['test', 'endpoint', 'retry', 'metric'])}",
                       "user": {"login": rng.choice(["ana", "bo", "cy", "dee"]), "type": "User"},
                       "labels": [{"name": rng.choice(labels)}], "comments": rng.randint(0, 9),
                       "created_at": f"2025-02-{1 + k % 28:02d}T10:00:00Z",
                       "url": f"https://api.github.com/repos/acme/payments/issues/{number}"})
    issues[61]["title"] = "Ledger lock timeout during settle-batch (ord_7Q2KX)"
    issues[61]["state"] = "open"
    return json.dumps(issues, separators=(",", ":"))


def search_hits(files: int = 45) -> str:
    rng = random.Random(9)
    out = []
    for f in range(files):
        path = f"src/{rng.choice(['payments', 'ledger', 'api', 'jobs'])}/module_{f:02d}.py"
        for line in sorted(rng.sample(range(10, 600), rng.randint(2, 7))):
            out.append(f"{path}:{line}:    timeout = config.get(\"lock_timeout\", {rng.randint(5, 60)})")
    out.insert(40, "src/ledger/locks.py:88:    LOCK_TIMEOUT_S = 30  # settle-batch holds the lock")
    return "\n".join(out)


def test_run(n: int = 500) -> str:
    out = ["============================= test session starts =============================="]
    out += [f"tests/test_module_{i // 20:02d}.py::test_case_{i:03d} PASSED" for i in range(n)]
    out.insert(300, "tests/test_settle.py::test_settle_under_lock FAILED")
    out += ["=================================== FAILURES ===================================",
            "________________________ test_settle_under_lock ________________________",
            "E   payments.ledger.LockTimeout: lock held by settle-batch-7 for 31s",
            f"========================= 1 failed, {n} passed in 41.2s ========================="]
    return "\n".join(out)


def source_file() -> str:
    lines = ['"""Settlement of charges against the ledger."""', "", "import time", ""]
    for k in range(60):
        lines += [f"def step_{k}(order_id, ledger):", f'    """Step {k} of settlement."""',
                  f"    ledger.record(order_id, step={k})", "    return time.monotonic()", ""]
    return "\n".join(lines)


# --- the fake provider ----------------------------------------------------------------------

class _Provider(BaseHTTPRequestHandler):
    disable_nagle_algorithm = True  # else keep-alive requests stall ~40 ms each
    protocol_version = "HTTP/1.1"
    received: list[tuple[str, bytes]] = []

    def log_message(self, *args: Any) -> None:  # quiet: the demo prints its own table
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        self.received.append((self.path, body))
        model = json.loads(body).get("model", "")
        usage = {"input_tokens": 100, "output_tokens": 20}
        if self.path.endswith("/v1/messages"):
            doc = {"id": "msg_demo", "type": "message", "role": "assistant", "model": model,
                   "content": [{"type": "text", "text": "The ledger lock times out."}],
                   "stop_reason": "end_turn", "stop_sequence": None, "usage": usage}
        elif self.path.endswith("/v1/responses"):
            doc = {"id": "resp_demo", "object": "response", "status": "completed", "model": model,
                   "output": [{"type": "message", "role": "assistant", "content": [
                       {"type": "output_text", "text": "One test fails.", "annotations": []}]}],
                   "usage": {**usage, "total_tokens": 120}}
        else:
            doc = {"id": "chatcmpl-demo", "object": "chat.completion", "model": model,
                   "choices": [{"index": 0, "finish_reason": "stop", "message": {
                       "role": "assistant", "content": "Issue 4711 tracks it."}}],
                   "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120}}
        data = json.dumps(doc).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


# --- the requests ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Output:
    label: str
    tool: str
    args: dict
    text: str
    needles: tuple[str, ...] = ()


def _anthropic(outputs: list[Output]) -> dict:
    messages: list[dict] = [{"role": "user", "content": QUESTION}]
    for k, o in enumerate(outputs):
        messages.append({"role": "assistant", "content": [
            {"type": "tool_use", "id": f"toolu_{k}", "name": o.tool, "input": o.args}]})
        messages.append({"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": f"toolu_{k}", "content": o.text}]})
    return {"model": "claude-sonnet-4-5", "max_tokens": 1024, "messages": messages,
            "tools": [{"name": n, "input_schema": {"type": "object"}} for n in ("Bash", "Read")]}


def _chat(outputs: list[Output]) -> dict:
    messages: list[dict] = [{"role": "user", "content": QUESTION}]
    for k, o in enumerate(outputs):
        messages.append({"role": "assistant", "content": None, "tool_calls": [
            {"id": f"call_{k}", "type": "function",
             "function": {"name": o.tool, "arguments": json.dumps(o.args)}}]})
        messages.append({"role": "tool", "tool_call_id": f"call_{k}", "content": o.text})
    return {"model": "gpt-4o", "messages": messages, "tools": [
        {"type": "function", "function": {"name": o.tool, "parameters": {"type": "object"}}}
        for o in outputs]}


def _responses(outputs: list[Output]) -> dict:
    items: list[dict] = [{"role": "user", "content": QUESTION}]
    for k, o in enumerate(outputs):
        items += [{"type": "function_call", "call_id": f"call_{k}", "name": o.tool,
                   "arguments": json.dumps(o.args)},
                  {"type": "function_call_output", "call_id": f"call_{k}", "output": o.text}]
    return {"model": "gpt-4o", "input": items, "store": False, "tools": [
        {"type": "function", "name": o.tool, "parameters": {"type": "object"}} for o in outputs]}


def scenarios() -> list[tuple[str, str, list[Output], Any]]:
    """(API, path, tool outputs, body builder) of the requests the demo sends."""
    return [
        ("Anthropic", "/v1/messages", [
            Output("incident log (kubectl logs)", "Bash",
                   {"command": "kubectl logs deploy/payments --since=1h"}, incident_log(),
                   ("order=ord_7Q2KX", "FATAL [ledger]", "LockTimeout")),
            Output("file read (Read)", "Read", {"file_path": "src/payments/settle.py"},
                   source_file())], _anthropic),
        ("OpenAI chat", "/v1/chat/completions", [
            Output("issue tracker JSON", "list_issues", {"repo": "acme/payments"}, issues_json(),
                   ('"number":4711',)),
            Output("code search (rg)", "search_code", {"pattern": "lock_timeout"},
                   search_hits())], _chat),
        ("OpenAI resp.", "/v1/responses", [
            Output("test run (pytest)", "run_tests", {"command": "pytest -q"}, test_run(),
                   ("test_settle_under_lock FAILED", "LockTimeout")),
            Output("git status", "shell", {"command": "git status"},
                   "On branch main\nnothing to commit, working tree clean")], _responses),
    ]


# --- running it -----------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_proxy(provider_url: str, data_dir: Path, log: Path) -> tuple[subprocess.Popen, str, Any]:
    port = _free_port()
    argv = [sys.executable, "-m", "headroom_core.cli", "proxy", "--host", "127.0.0.1",
            "--port", str(port), "--data-dir", str(data_dir), "--anthropic-api-url", provider_url,
            "--openai-api-url", provider_url + "/openai", "--no-cache", "--quiet"]
    # The user's own HEADROOM_* settings and proxies must not change what the demo shows.
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEADROOM_")
           and k.lower() not in ("http_proxy", "https_proxy", "all_proxy")}
    out = open(log, "wb")
    proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env)
    return proc, f"http://127.0.0.1:{port}", out


def _wait_ready(proc: subprocess.Popen, url: str, client: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the proxy exited with status {proc.returncode}")
        try:
            if client.get(url + "/health").status_code == 200:
                return
        except Exception:  # not listening yet
            time.sleep(0.1)
    raise RuntimeError(f"the proxy did not answer within {timeout:.0f} s")


def _outputs_received(path: str, doc: dict) -> list[str]:
    if path == "/v1/messages":
        return [b["content"] for m in doc["messages"] if isinstance(m["content"], list)
                for b in m["content"] if b.get("type") == "tool_result"]
    if path == "/v1/chat/completions":
        return [m["content"] for m in doc["messages"] if m.get("role") == "tool"]
    return [i["output"] for i in doc["input"] if i.get("type") == "function_call_output"]


def _kept(o: Output, sent: str, min_tokens: int, before: int) -> str:
    from .compression.markers import find_markers
    from .compression.policy import tool_verdict

    if sent == o.text:
        verdict = tool_verdict(o.tool, json.dumps(o.args))
        if not verdict.compress:
            return f"untouched: {verdict.reason}"
        return f"untouched: under {min_tokens} tokens" if before < min_tokens else "untouched"
    markers = [ln for ln in sent.splitlines() if "[headroom: " in ln]
    first = markers[0].split("[headroom: ", 1)[1].split("; call headroom_retrieve", 1)[0]
    if o.text.lstrip()[:1] in "[{" or " matches in " in first:
        what = first  # items of JSON, matches of a search: the marker says it best
    else:
        total = o.text.count("\n") + 1
        what = f"{sum(1 for ln in sent.splitlines() if '[headroom: ' not in ln):,} of {total:,} lines kept"
    if o.needles:
        what += f"; key lines inline: {sum(1 for n in o.needles if n in sent)}/{len(o.needles)}"
    n = len(markers)
    return f"{what}; {n} marker{'s' if n > 1 else ''} → headroom_retrieve(hash=\"{find_markers(sent)[0][:6]}…\")"


def run_demo() -> int:
    import httpx
    from rich.console import Console
    from rich.table import Table

    from .settings import Settings
    from .tokens import count_request, count_text
    from .wire.common import Endpoint

    console = Console()
    endpoints = {"/v1/messages": Endpoint.ANTHROPIC_MESSAGES,
                 "/v1/chat/completions": Endpoint.OPENAI_CHAT, "/v1/responses": Endpoint.OPENAI_RESPONSES}
    headers = {"/v1/messages": {"x-api-key": KEY, "anthropic-version": "2023-06-01"}}
    min_tokens = Settings().min_tokens
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Provider)
    _Provider.received = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    provider_url = f"http://127.0.0.1:{server.server_address[1]}"
    table = Table(title="What reached the provider (tokens: tiktoken o200k_base)", show_lines=True)
    for name, kw in (("API", {}), ("tool output", {}), ("before", {"justify": "right"}),
                     ("after", {"justify": "right"}), ("saved", {"justify": "right"}),
                     ("what was kept", {"overflow": "fold"})):
        table.add_column(name, **kw)
    totals = [0, 0]
    with tempfile.TemporaryDirectory(prefix="headroom-demo-") as tmp:
        console.print(f"[bold]headroom demo[/bold]: fake provider at {provider_url}, starting "
                      "`headroom proxy` in front of it (loopback only, no API key needed)…")
        proc, url, log = _start_proxy(provider_url, Path(tmp) / "data", Path(tmp) / "proxy.log")
        try:
            with httpx.Client(trust_env=False, timeout=60) as client:
                _wait_ready(proc, url, client)
                for api, path, outputs, build in scenarios():
                    body = json.dumps(build(outputs)).encode()
                    resp = client.post(url + path, content=body, headers={
                        "content-type": "application/json",
                        **headers.get(path, {"authorization": f"Bearer {KEY}"})})
                    if resp.status_code != 200:
                        raise RuntimeError(f"{api}: HTTP {resp.status_code}: {resp.text[:200]}")
                    doc = json.loads(_Provider.received[-1][1])
                    for o, sent in zip(outputs, _outputs_received(path, doc)):
                        b, a = count_text(o.text), count_text(sent)
                        table.add_row(api, o.label, f"{b:,}", f"{a:,}", f"{1 - a / b:.0%}",
                                      _kept(o, sent, min_tokens, b))
                    totals[0] += count_request(json.loads(body), endpoints[path])
                    totals[1] += count_request(doc, endpoints[path])
                stats = client.get(url + "/stats").json()
        except Exception as e:
            log.close()
            tail = (Path(tmp) / "proxy.log").read_text(errors="replace")[-2000:]
            console.print(f"[red]headroom demo failed:[/red] {e}\n{tail}")
            return 1
        finally:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=15)
            log.close()
            server.shutdown()
            server.server_close()
    console.print(table)
    saved = 1 - totals[1] / totals[0]
    console.print(f"Whole requests: [bold]{totals[0]:,} → {totals[1]:,} tokens "
                  f"({saved:.0%} saved)[/bold]; the proxy's /stats: "
                  f"{stats['tokens']['saved']:,} tokens saved over "
                  f"{stats['requests']['total']} requests ({stats['tokens']['savings_percent']}%).")
    console.print("Every omission is marked in place; the originals stay in the local CCR store, "
                  "and the model gets them back by calling headroom_retrieve (answered by the "
                  "proxy, never seen by your client). Try it for real: `headroom proxy`, then "
                  "ANTHROPIC_BASE_URL=http://localhost:8787.")
    return 0 if saved > 0 else 1


def add_demo_command(subparsers: Any) -> None:
    """Register `headroom demo` on the `headroom` command's subparsers."""
    p = subparsers.add_parser("demo", help="see headroom compress realistic agent requests "
                                           "against a local fake provider (no API key)")
    p.set_defaults(func=lambda args: run_demo())


if __name__ == "__main__":
    sys.exit(run_demo())
