"""One client turn that may need `headroom_retrieve` answered: rounds, continuations, splicing.

Transport-free except for awaiting the two callables it is given: `open_upstream(body)` makes
a provider call with the turn's headers (the relay passes one over its HTTP/1.1 client) and
`send(bytes)` writes to the client. Blocking work (store lookups, parsing and writing the request document)
runs in worker threads so the event loop keeps serving every other flow.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from dataclasses import dataclass, field
from typing import AsyncIterator, Awaitable, Callable, Protocol

from .. import jsonfmt
from ..errors import provider_error
from ..sse import SSEParser
from ..wire.common import Endpoint
from .answers import Answer, OriginalStore, RetrieveCall, answer_call, parse_arguments
from .common import Next, RoundFacts, TurnOutcome, next_step
from .conversation import ConversationStore
from .dialects import DIALECTS, Dialect, Splicer
from .tool import TOOL_NAME

logger = logging.getLogger("headroom")

PING_INTERVAL_S = 1.0
REUSE_WAIT_S = 0.01
_NO_STORE = re.compile(rb'"store"\s*:\s*false')


class UpstreamReply(Protocol):
    """A provider response whose head has arrived; the body is read on demand."""

    status: int
    headers: list[tuple[str, str]]

    def aiter_bytes(self) -> AsyncIterator[bytes]: ...

    async def aread(self) -> bytes: ...

    async def aclose(self) -> None: ...


OpenUpstream = Callable[[bytes], Awaitable[UpstreamReply]]
Send = Callable[[bytes], Awaitable[None]]
# (tenant, hash, query) of an original the model retrieved; e.g. TOIN learning from it.
OnRetrieved = Callable[[str, str, str], None]


@dataclass
class Turn:
    """Everything one turn needs to answer retrieval calls."""

    endpoint: Endpoint
    tenant: str
    request_body: bytes  # as forwarded for the first round
    originals: OriginalStore | None
    conversations: ConversationStore | None = None
    conversation: str = ""
    max_rounds: int = 3
    outcome: TurnOutcome = field(default_factory=TurnOutcome)
    on_retrieved: OnRetrieved | None = None
    _doc: dict | None = None

    @property
    def dialect(self) -> Dialect:
        return DIALECTS[self.endpoint]

    async def next_request(self, facts: RoundFacts) -> bytes:
        """Answer the round's calls and write the next round's request, in one worker-thread
        hop (the document grows round by round)."""
        last = self.outcome.rounds + 1 >= self.max_rounds

        def build() -> tuple[list[Answer], bytes]:
            answers = [answer_call(self.originals, self.tenant, c) for c in facts.calls]
            doc = self._doc if self._doc is not None else jsonfmt.loads(self.request_body)
            self._doc = self.dialect.continuation(doc, facts, answers, last)
            return answers, jsonfmt.dumps(self._doc, jsonfmt.detect_style(self.request_body))

        answers, body = await asyncio.to_thread(build)
        self._report(facts.calls, answers)
        self.outcome.add_answers(answers)
        self.outcome.rounds += 1
        return body

    def _report(self, calls: tuple[RetrieveCall, ...], answers: list[Answer]) -> None:
        """Tell `on_retrieved` about the originals found, in a worker thread the turn does not
        wait for: learning must neither delay the continuation nor fail it."""
        hook = self.on_retrieved
        found = [(a.hash, parse_arguments(c.arguments)[1]) for c, a in zip(calls, answers) if a.found]
        if hook is None or not found:
            return

        def report() -> None:
            for digest, query in found:
                try:
                    hook(self.tenant, digest, query)
                except Exception:
                    logger.exception("headroom: recording a retrieval failed")

        asyncio.get_running_loop().run_in_executor(None, report)

    async def carry(self, facts: RoundFacts) -> None:
        """A mixed round: answer now, and remember the exchange for the client's next request
        (keyed by the round's first client call, which that request will carry)."""
        conversations, key = self.conversations, self.conversation
        if conversations is not None and conversations.storage is None:
            conversations = None

        def store() -> list[Answer]:
            answers = [answer_call(self.originals, self.tenant, c) for c in facts.calls]
            if conversations is not None and key:
                conversations.add_carry(self.tenant, key, facts.real_calls[0],
                                        self.dialect.carry_record(facts, answers))
            return answers

        answers = await asyncio.to_thread(store)
        self._report(facts.calls, answers)
        self.outcome.add_answers(answers)
        if conversations is None or not key:
            self.outcome.stopped = "mixed with client tool calls and no state store to carry it"
        else:
            self.outcome.carried += len(answers)

    async def link(self, response_id: str | None) -> None:
        """Responses: a request chaining on this turn's response belongs to this conversation."""
        if (self.endpoint is Endpoint.OPENAI_RESPONSES and response_id and self.conversations
                and self.conversation and not _NO_STORE.search(self.request_body)):
            await asyncio.to_thread(self.conversations.link_response, self.tenant,
                                    self.conversation, response_id)

    def stop(self, step: Next, facts: RoundFacts) -> str | None:
        """The stop reason to show when calls were dropped (None: the provider's own)."""
        if step is Next.STOP:
            self.outcome.stopped = ("retrieval round limit reached"
                                    if facts.complete and facts.stop == self.dialect.continuable
                                    else f"the round ended with {facts.stop!r}")
            return self.dialect.stop_after_dropping(facts)
        return None


def error_message(status: int, body: bytes) -> str:
    """A short, key-free description of a failed continuation."""
    text = body[:300].decode("utf-8", "replace").replace("\n", " ")
    text = text.replace(TOOL_NAME, "retrieval tool")  # the client never hears of it
    where = f"upstream {status}" if status else "upstream unreachable"
    return f"headroom: a follow-up call to the provider failed ({where}): {text}"


def error_type(body: bytes, default: str) -> str:
    """The provider's own error type when its body names one (overloaded_error, ...)."""
    try:
        err = json.loads(body).get("error")
    except (ValueError, AttributeError):
        return default
    kind = err.get("type") if isinstance(err, dict) else None
    return kind if isinstance(kind, str) and kind else default


# --- non-streamed ---------------------------------------------------------------------------

async def buffered_turn(turn: Turn, first_body: bytes, open_upstream: OpenUpstream
                        ) -> tuple[int, list[tuple[str, str]] | None, bytes]:
    """(status, headers or None for the first reply's, body) for the client."""
    try:
        doc = await asyncio.to_thread(jsonfmt.loads, first_body)
    except ValueError:
        return 200, None, first_body
    if not isinstance(doc, dict):
        return 200, None, first_body
    dialect = turn.dialect
    facts = dialect.round_of_body(doc)
    step = next_step(facts, dialect.continuable, turn.outcome.rounds, turn.max_rounds)
    if step is Next.DONE:
        await turn.link(facts.response_id)
        return 200, None, first_body
    responses, rounds = [doc], [facts]
    while step is Next.CONTINUE:
        body = await turn.next_request(facts)
        try:
            reply = await open_upstream(body)
        except Exception as e:  # unreachable provider, TLS failure, timeout
            turn.outcome.error = f"continuation failed: {type(e).__name__}"
            err = provider_error(turn.endpoint.provider, 502, error_message(0, repr(e).encode()))
            return 502, list(err.headers), err.body
        try:
            data = await reply.aread()
        finally:
            await reply.aclose()
        if reply.status != 200:
            turn.outcome.error = f"continuation answered {reply.status}"
            return reply.status, reply.headers, data
        doc = await asyncio.to_thread(jsonfmt.loads, data)
        facts = dialect.round_of_body(doc if isinstance(doc, dict) else {})
        responses.append(doc)
        rounds.append(facts)
        step = next_step(facts, dialect.continuable, turn.outcome.rounds, turn.max_rounds)
    if step is Next.CARRY:
        await turn.carry(facts)
    override = turn.stop(step, facts)
    await turn.link(facts.response_id)
    final = dialect.client_body(responses, rounds, override)
    return 200, None, jsonfmt.dumps(final, jsonfmt.detect_style(first_body))


# --- streamed -------------------------------------------------------------------------------

class _Stream:
    """The client side of a streamed turn: sends, and pings while a call is withheld."""

    def __init__(self, send: Send, splicer: Splicer, interval: float) -> None:
        self._send = send
        self.splicer = splicer
        self.interval = interval
        self.between_rounds = False
        self._loop = asyncio.get_running_loop()
        self._last = self._loop.time()

    async def send(self, parts: list[bytes]) -> None:
        data = b"".join(parts)
        if data:
            self.between_rounds = False
            self._last = self._loop.time()
            await self._send(data)

    async def pinger(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            quiet = self._loop.time() - self._last
            if (self.splicer.withholding or self.between_rounds) and quiet >= self.interval * 0.9:
                self._last = self._loop.time()
                await self._send(self.splicer.ping)


async def _drain_and_close(reply: UpstreamReply, chunks: AsyncIterator[bytes]) -> None:
    """Read what follows the terminal event, so the connection can be reused, then close."""
    try:
        async with asyncio.timeout(5):
            async for _ in chunks:
                pass
    except Exception:
        pass
    finally:
        with contextlib.suppress(Exception):
            await reply.aclose()


async def _pump(reply: UpstreamReply, stream: _Stream) -> AsyncIterator[bytes]:
    """Feed one round's events through the splicer until its terminal event or the end."""
    parser = SSEParser()
    splicer = stream.splicer
    chunks = reply.aiter_bytes().__aiter__()
    async for chunk in chunks:
        out: list[bytes] = []
        for ev in parser.feed(chunk):
            out += splicer.feed(ev)
        await stream.send(out)  # one write per chunk received, not one per event
        if splicer.round_done:
            return chunks
    for ev in parser.close():
        await stream.send(splicer.feed(ev))
    return chunks


def is_event_stream(headers: list[tuple[str, str]]) -> bool:
    return any(k.lower() == "content-type" and "text/event-stream" in v.lower() for k, v in headers)


_DRAINING: set[asyncio.Task] = set()  # referenced until done (the loop keeps weak refs only)


def _close_later(reply: UpstreamReply, chunks: AsyncIterator[bytes]) -> asyncio.Task:
    task = asyncio.create_task(_drain_and_close(reply, chunks))
    _DRAINING.add(task)
    task.add_done_callback(_DRAINING.discard)
    return task


async def streamed_turn(turn: Turn, first: UpstreamReply, open_upstream: OpenUpstream,
                        send: Send, ping_interval: float = PING_INTERVAL_S) -> None:
    """Relay an event stream to `send`, answering retrieval calls in place.

    Cancelling it (the client went away) closes every upstream stream it opened and makes
    no further provider call.
    """
    dialect = turn.dialect
    stream = _Stream(send, dialect.splicer(), ping_interval)
    splicer = stream.splicer
    pinger = asyncio.create_task(stream.pinger())
    reply: UpstreamReply | None = first
    closing: list[asyncio.Task] = []
    try:
        while True:
            chunks = await _pump(reply, stream)
            if not splicer.round_done:
                await stream.send(splicer.abort())
                return
            closing.append(_close_later(reply, chunks))
            reply = None
            facts = splicer.end_round()
            step = next_step(facts, dialect.continuable, turn.outcome.rounds, turn.max_rounds)
            if step is not Next.CONTINUE:
                if step is Next.CARRY:
                    await turn.carry(facts)
                override = turn.stop(step, facts)
                await turn.link(facts.response_id)
                await stream.send(splicer.finish(override))
                return
            stream.between_rounds = True
            body = await turn.next_request(facts)
            if not closing[-1].done():
                # The round's connection frees once its last bytes are read (they follow the
                # terminal event at once): reusing it spares the continuation a TLS handshake.
                await asyncio.wait({closing[-1]}, timeout=REUSE_WAIT_S)
            splicer.begin_round()
            try:
                reply = await open_upstream(body)
            except Exception as e:  # unreachable provider, TLS failure, timeout
                turn.outcome.error = f"continuation failed: {type(e).__name__}"
                await stream.send(splicer.fail(502, error_message(0, repr(e).encode()),
                                               dialect.error_type))
                return
            if reply.status != 200 or not is_event_stream(reply.headers):
                data = await reply.aread()
                turn.outcome.error = f"continuation answered {reply.status}"
                await stream.send(splicer.fail(reply.status, error_message(reply.status, data),
                                               error_type(data, dialect.error_type)))
                return
    except BaseException:
        for task in closing:
            task.cancel()
        raise
    finally:
        pinger.cancel()
        if reply is not None:
            with contextlib.suppress(Exception):
                await reply.aclose()
