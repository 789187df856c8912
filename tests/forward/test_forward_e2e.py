"""Forward mode end to end: `headroom proxy --forward` as a real process on loopback.

A local HTTPS "provider" (certificate for `localhost`, from a test CA) is registered with
`--intercept-host localhost`; mitmproxy is told to trust the test CA upstream. A second HTTPS
server on 127.0.0.1 (another CA) stands for any other host. Clients trust the project CA only
through what `headroom certs` prints.
"""

from __future__ import annotations

import json
import shutil
import socket
import ssl
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from mitmproxy import io as mio

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))

from headroom_core import certs  # noqa: E402
from proxy_runner import HEADROOM, ProxyProcess, clean_env, free_port  # noqa: E402
from tls_fixtures import HTTPSServer, LocalCA, issue_cert, make_ca  # noqa: E402

pytestmark = pytest.mark.e2e


@dataclass
class World:
    tmp: Path
    provider_ca: LocalCA
    provider: HTTPSServer  # https://localhost:<port>, intercepted
    other_ca: LocalCA
    other: HTTPSServer  # https://127.0.0.1:<port>, tunnelled


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("forward")
    provider_ca, other_ca = make_ca(tmp, "provider CA"), make_ca(tmp, "other host CA")
    provider = HTTPSServer(*issue_cert(provider_ca, tmp, ["localhost"])).start()
    other = HTTPSServer(*issue_cert(other_ca, tmp, ["127.0.0.1"])).start()
    yield World(tmp, provider_ca, provider, other_ca, other)
    provider.stop()
    other.stop()


@dataclass
class Proxy:
    process: ProxyProcess
    forward_port: int
    data_dir: Path
    flows_file: Path

    def flows(self) -> list:
        self.process.stop()  # mitmproxy writes -w files completely only at exit
        with open(self.flows_file, "rb") as f:
            return list(mio.FlowReader(f).stream())


@pytest.fixture
def proxy(world, tmp_path):
    forward_port = free_port()
    flows_file = tmp_path / "flows.mitm"
    argv = [HEADROOM, "proxy", "--forward", "--port", str(free_port()),
            "--forward-port", str(forward_port), "--data-dir", str(tmp_path / "data"),
            "--intercept-host", "localhost", "--min-tokens", "50", "--no-cache",
            "--", "--set", f"ssl_verify_upstream_trusted_ca={world.provider_ca.cert_path}",
            "-w", str(flows_file)]
    process = ProxyProcess(argv, forward_port, tmp_path / "proxy.log")
    yield Proxy(process, forward_port, tmp_path / "data", flows_file)
    process.stop()


def big_request() -> dict:
    """An Anthropic request whose last tool result is a long, repetitive JSON array."""
    rows = [{"id": i, "path": f"src/module_{i}.py", "status": "ok", "score": 0.5,
             "message": "no issues found in this file"} for i in range(300)]
    return {"model": "claude-sonnet-4-5", "max_tokens": 64, "messages": [
        {"role": "user", "content": "Check the repository."},
        {"role": "assistant", "content": [
            {"type": "tool_use", "id": "toolu_1", "name": "scan", "input": {"path": "."}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": json.dumps(rows)}]},
    ]}


def test_provider_host_is_intercepted_optimised_and_accounted(world, proxy):
    ca = certs.ca_info(proxy.data_dir / "certs")
    bundle = certs.combined_bundle(ca.path)
    sent = json.dumps(big_request()).encode()
    with httpx.Client(proxy=f"http://127.0.0.1:{proxy.forward_port}", verify=bundle,
                      trust_env=False, timeout=30) as client:
        r = client.post(f"https://localhost:{world.provider.port}/v1/messages", content=sent,
                        headers={"x-api-key": "sk-test", "anthropic-version": "2023-06-01",
                                 "content-type": "application/json"})
    assert r.status_code == 200 and r.json()["type"] == "message"
    method, path, received = world.provider.received[-1]
    assert (method, path) == ("POST", "/v1/messages")  # the real host, path unchanged

    (flow,) = [f for f in proxy.flows() if getattr(f, "request", None) is not None
               and f.request.path == "/v1/messages"]
    assert flow.request.host == "localhost" and flow.request.port == world.provider.port
    assert flow.client_conn.proxy_mode.type_name == "regular"
    assert flow.metadata["headroom_forward"] == "intercepted"
    meta = flow.metadata["headroom"]
    assert (meta["provider"], meta["endpoint"]) == ("anthropic", "anthropic.messages")
    # what reached the provider is what headroom says it sent
    assert received == flow.request.get_content()
    # accounted: the request's console line (provider, model, tokens, status)
    lines = [ln for ln in proxy.process.log.read_text().splitlines()
             if ln.startswith("anthropic  claude-sonnet-4-5  ")]
    assert len(lines) == 1 and "  200  " in lines[0] and " tok" in lines[0]
    # optimised like a reverse-mode request: smaller, annotated, the original kept for mitmweb
    assert 0 < meta["tokens_after"] < meta["tokens_before"]
    assert len(received) < len(sent)
    assert flow.comment.startswith("-") and " tok · json×" in flow.comment and flow.marked
    assert flow.metadata["headroom_original"] == sent


def test_other_https_host_keeps_its_own_certificate(world, proxy):
    with socket.create_connection(("127.0.0.1", proxy.forward_port), timeout=10) as raw:
        target = f"127.0.0.1:{world.other.port}"
        raw.sendall(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
        assert raw.recv(4096).startswith(b"HTTP/1.1 200")
        # Trust ONLY the other host's own CA: a mitmproxy-forged certificate would fail here.
        context = ssl.create_default_context(cafile=str(world.other_ca.cert_path))
        with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            cert = x509.load_der_x509_certificate(tls.getpeercert(binary_form=True))
            tls.sendall(b"GET /hello HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            reply = b""
            while chunk := tls.recv(65536):
                reply += chunk
    assert cert.issuer.rfc4514_string() == "CN=other host CA"
    assert reply.startswith(b"HTTP/1.1 200") and b'"echo": "/hello"' in reply
    assert ("GET", "/hello", b"") in world.other.received
    # the tunnelled exchange never became an HTTP flow
    assert not [f for f in proxy.flows() if getattr(f, "request", None) is not None
                and f.request.path == "/hello"]


CLIENT = textwrap.dedent("""
    import json, ssl, sys, urllib.request, httpx
    url = sys.argv[1]
    body = json.dumps({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}).encode()
    req = urllib.request.Request(url, data=body, headers={"content-type": "application/json",
                                                          "authorization": "Bearer sk-test"})
    with urllib.request.urlopen(req, timeout=30) as r:          # stdlib: https_proxy + SSL_CERT_FILE
        print("urllib", r.status, json.load(r)["object"])
    with httpx.Client(timeout=30) as c:                           # SDK stack: trust_env
        r = c.post(url, content=body, headers={"content-type": "application/json"})
        print("httpx", r.status_code, r.json()["object"])
""")


def pasted(proxy: Proxy) -> str:
    """What `headroom certs` prints for this proxy (run as a user would run it)."""
    printed = subprocess.run([HEADROOM, "certs", "--data-dir", str(proxy.data_dir),
                              "--forward-port", str(proxy.forward_port)],
                             capture_output=True, text=True, env=clean_env(), check=True).stdout
    assert certs.ca_info(proxy.data_dir / "certs").sha256 in printed
    return printed


def run_pasted(printed: str, command: str) -> subprocess.CompletedProcess:
    """Exactly what a person does: paste the printed lines into a shell, then run the tool."""
    return subprocess.run(["bash", "-c", printed + "\n" + command], capture_output=True,
                          text=True, env=clean_env(), timeout=60)


def test_pasted_certs_output_makes_python_clients_trust_the_proxy(world, proxy, tmp_path):
    script = tmp_path / "client.py"
    script.write_text(CLIENT)
    url = f"https://localhost:{world.provider.port}/v1/chat/completions"
    done = run_pasted(pasted(proxy), f"exec {sys.executable} {script} {url}")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:2] == ["urllib 200 chat.completion", "httpx 200 chat.completion"]
    # and without those lines the same client does not trust the proxy's certificate
    bare = subprocess.run([sys.executable, str(script), url], capture_output=True, text=True,
                          env=clean_env(https_proxy=f"http://127.0.0.1:{proxy.forward_port}"),
                          timeout=60)
    assert bare.returncode != 0 and "CERTIFICATE_VERIFY_FAILED" in bare.stderr


CHAT = json.dumps({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]})


@pytest.mark.skipif(not shutil.which("curl"), reason="curl is not installed")
def test_pasted_certs_output_makes_curl_trust_the_proxy(world, proxy):
    url = f"https://localhost:{world.provider.port}/v1/chat/completions"
    curl = f"curl -sS -X POST -H 'content-type: application/json' -d '{CHAT}' {url}"
    done = run_pasted(pasted(proxy), curl)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["object"] == "chat.completion"
    assert run_pasted("", f"https_proxy=http://127.0.0.1:{proxy.forward_port} {curl}").returncode == 60


# Node 20 has no HTTPS_PROXY support of its own: open the CONNECT tunnel by hand, then let
# tls.connect verify the certificate against Node's roots plus NODE_EXTRA_CA_CERTS.
NODE_CLIENT = r"""
const http = require('http'), tls = require('tls');
const proxy = new URL(process.env.HTTPS_PROXY), [host, port, body] = process.argv.slice(2);
http.request({host: proxy.hostname, port: proxy.port, method: 'CONNECT', path: `${host}:${port}`})
  .on('connect', (res, socket) => {
    const s = tls.connect({socket, servername: host}, () => s.write(
      `POST /v1/chat/completions HTTP/1.1\r\nHost: ${host}:${port}\r\n` +
      `content-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n` +
      `connection: close\r\n\r\n${body}`));
    let out = '';
    s.on('data', d => out += d).on('end', () => console.log('node', out.split('\r\n')[0]));
    s.on('error', e => { console.error(e.code || e.message); process.exit(1); });
  }).end();
"""


@pytest.mark.skipif(not shutil.which("node"), reason="node is not installed")
def test_pasted_certs_output_makes_node_trust_the_proxy(world, proxy, tmp_path):
    script = tmp_path / "client.js"
    script.write_text(NODE_CLIENT)
    node = f"node {script} localhost {world.provider.port} '{CHAT}'"
    done = run_pasted(pasted(proxy), node)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "node HTTP/1.1 200 OK"
    bare = run_pasted(f"export HTTPS_PROXY=http://127.0.0.1:{proxy.forward_port}", node)
    assert bare.returncode == 1 and bare.stderr.strip() == "UNABLE_TO_VERIFY_LEAF_SIGNATURE"


def test_headroom_run_sets_proxy_and_trust(world, proxy):
    url = f"https://localhost:{world.provider.port}/v1/chat/completions"
    done = subprocess.run(
        [HEADROOM, "run", "--data-dir", str(proxy.data_dir), "--forward-port",
         str(proxy.forward_port), "--", sys.executable, "-c", CLIENT, url],
        capture_output=True, text=True, env=clean_env(), timeout=60)
    assert done.returncode == 0, done.stderr
    assert "urllib 200 chat.completion" in done.stdout
