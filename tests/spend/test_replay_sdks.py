"""The official SDKs' stream parsers accept replayed streams (runs where the SDKs are installed).

The SDKs are not project dependencies; this check ran against anthropic 2.14 and openai 3.57.
"""

from __future__ import annotations

import http.server
import json
import threading

import pytest

from headroom_core.spend.stream_assembly import replay_sse
from headroom_core.wire.common import Endpoint

import stream_samples as S



@pytest.fixture
def serve():
    """A loopback server answering every POST with the stream last given to `serve(stream)`."""
    current: dict[str, bytes] = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        disable_nagle_algorithm = True

        def do_POST(self):
            self.rfile.read(int(self.headers.get("content-length", 0)))
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
            self.send_header("content-length", str(len(current["stream"])))
            self.end_headers()
            self.wfile.write(current["stream"])

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()

    def set_stream(stream: bytes) -> str:
        current["stream"] = stream
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield set_stream
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("body", [S.ANTHROPIC_TEXT, S.ANTHROPIC_TOOLS_AND_THINKING])
def test_anthropic_sdk_accumulates_replay(body, serve):
    anthropic = pytest.importorskip("anthropic")
    client = anthropic.Anthropic(api_key="k", base_url=serve(replay_sse(Endpoint.ANTHROPIC_MESSAGES, body)))
    with client.messages.stream(model="m", max_tokens=5, messages=[{"role": "user", "content": "x"}]) as s:
        final = s.get_final_message().model_dump(exclude_unset=True)
    final.pop("stop_details", None)  # the SDK fills in fields newer than the sample
    assert final == body


def test_openai_sdks_accumulate_replays(serve):
    openai = pytest.importorskip("openai")
    chat = openai.OpenAI(api_key="k", base_url=serve(replay_sse(Endpoint.OPENAI_CHAT, S.CHAT_TEXT)) + "/v1")
    with chat.chat.completions.stream(model="m", messages=[{"role": "user", "content": "x"}]) as s:
        final = s.get_final_completion()
    assert final.choices[0].message.content == "The answer is 4."
    assert final.usage.total_tokens == S.CHAT_TEXT["usage"]["total_tokens"]
    resp = openai.OpenAI(api_key="k", base_url=serve(replay_sse(Endpoint.OPENAI_RESPONSES, S.RESPONSES)) + "/v1")
    with resp.responses.stream(model="m", input="x") as s:
        final = s.get_final_response()
    assert final.status == "completed" and final.output_text == S.RESPONSES["output"][1]["content"][0]["text"]
    assert json.loads(final.output[2].arguments) == {"q": "moon"}
