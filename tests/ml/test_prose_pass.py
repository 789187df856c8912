"""The LLMLingua-2 request pass on real request bodies, with the tiny local model."""

from __future__ import annotations

import copy
import json

import pytest

from headroom_core.ccr import CCRStore
from headroom_core.compression.markers import find_markers
from headroom_core.ml.llmlingua import LLMLinguaService
from headroom_core.ml.prose_pass import code_rate, compress_prose, forced_strings, query_terms
from headroom_core.settings import Settings
from headroom_core.storage.memory import MemoryStorage
from headroom_core.tokens import count_text
from headroom_core.wire import Endpoint, parse_request

pytestmark = pytest.mark.ml

TENANT = "t-test"
QUESTION = "Why did the checkout deployment fail, and what does the runbook say?"
FACTS = ("PaymentService.retry()", "/var/log/payments/migrate.log", "OPS-1234", "2.3.1",
         "https://wiki.example.com/runbooks/db", "orders_index_v2")


@pytest.fixture
def ccr():
    return CCRStore(MemoryStorage())


@pytest.fixture
def settings():
    return Settings(llmlingua=True, llmlingua_rate="0.3")


def _notes(make_prose) -> str:
    """Markdown notes: prose around the facts a model would need to quote back."""
    return ("# Incident notes\n\n" + make_prose(4, seed=3)
            + "\n\nThe checkout deployment failed when PaymentService.retry() looped; see "
              "/var/log/payments/migrate.log and https://wiki.example.com/runbooks/db. Ticket "
              "OPS-1234 tracks the rollback to 2.3.1 and the missing orders_index_v2.\n\n"
            + make_prose(4, seed=4) + "\n")


def _anthropic(tool_text: str, *, tool: str = "fetch_notes", is_error: bool = False,
               extra: list | None = None) -> dict:
    result = {"type": "tool_result", "tool_use_id": "call_1", "content": tool_text}
    if is_error:
        result["is_error"] = True
    return {"model": "claude-sonnet-4-5", "max_tokens": 512, "messages": [
        {"role": "user", "content": QUESTION},
        {"role": "assistant", "content": [
            {"type": "tool_use", "id": "call_1", "name": tool, "input": {"query": "checkout"}}]},
        {"role": "user", "content": [result]},
        *(extra or []),
    ]}


def _tool_text(doc: dict) -> str:
    return doc["messages"][2]["content"][0]["content"]


async def _run(doc, service, ccr, settings, **kw):
    req = parse_request(doc, Endpoint.ANTHROPIC_MESSAGES)
    return await compress_prose(req, tenant=TENANT, ccr=ccr, service=service, settings=settings,
                                deadline_s=kw.pop("deadline_s", 60), **kw)


async def test_prose_tool_output_is_compressed_with_facts_kept_and_original_retrievable(
        lingua_service, ccr, settings, make_prose):
    notes = _notes(make_prose)
    doc = _anthropic(notes)
    records = await _run(doc, lingua_service, ccr, settings)
    assert [r.outcome for r in records] == ["compressed"]
    rendering = _tool_text(doc)
    assert count_text(rendering) < 0.6 * count_text(notes)
    for fact in FACTS:
        assert fact in rendering
    assert rendering.startswith("# ")  # markdown shape kept
    (digest,) = find_markers(rendering)
    assert digest == records[0].hash
    assert ccr.get(TENANT, digest).text == notes
    transform = records[0].transform()
    assert (transform.kind, transform.target, transform.hash) == ("llmlingua", "tool_result", digest)


async def test_rate_option_changes_the_kept_share(lingua_service, ccr, make_prose):
    notes = _notes(make_prose)
    kept = {}
    for rate in ("0.2", "0.6"):
        doc = _anthropic(notes)
        records = await _run(doc, lingua_service, ccr, Settings(llmlingua=True, llmlingua_rate=rate))
        kept[rate] = records[0].tokens_after / records[0].tokens_before
    assert kept["0.6"] - kept["0.2"] > 0.2


@pytest.mark.parametrize("text", [
    json.dumps([{"id": i, "state": "open", "title": f"issue {i} about the cache"} for i in range(80)]),
    "\n".join(f"2024-05-01T10:{i // 60:02d}:{i % 60:02d}Z INFO worker-{i % 4} processed batch {i}"
              for i in range(150)),
])
async def test_structured_outputs_stay_with_their_own_compressors(lingua_service, ccr, settings,
                                                                  text):
    doc = _anthropic(text)
    assert count_text(text) >= settings.min_tokens
    before = copy.deepcopy(doc)
    assert await _run(doc, lingua_service, ccr, settings) == []
    assert doc == before


@pytest.mark.parametrize("kw", [{"tool": "Read"}, {"is_error": True}])
async def test_exact_and_error_outputs_are_left_alone(lingua_service, ccr, settings, make_prose, kw):
    doc = _anthropic(_notes(make_prose), **kw)
    before = copy.deepcopy(doc)
    assert await _run(doc, lingua_service, ccr, settings) == []
    assert doc == before


async def test_code_gets_the_gentler_rate(lingua_service, ccr, settings):
    code = "\n".join(
        f"def handler_{i}(request, retries=3):\n"
        f"    \"\"\"Handle one request and return the response for the caller.\"\"\"\n"
        f"    response = send(request, timeout=30)\n"
        f"    if response.status != 200:\n"
        f"        return retry(request, retries - 1)\n"
        f"    return response.json()\n" for i in range(30))
    rates = []

    class Spy(LLMLinguaService):
        async def compress_detailed(self, text, **kw):
            rates.append(kw["rate"])
            return await lingua_service.compress_detailed(text, **kw)

    spy = Spy(lingua_service.model)
    spy._ready.set()
    await _run(_anthropic(code), spy, ccr, settings)
    assert rates == [pytest.approx(code_rate(0.3))]
    spy.close()


async def test_later_turns_replay_the_rendering_even_before_the_model_is_ready(
        lingua_service, ccr, settings, make_prose):
    notes = _notes(make_prose)
    turn1 = _anthropic(notes)
    await _run(turn1, lingua_service, ccr, settings)
    sent_rendering = _tool_text(turn1)
    # turn 2: the client re-sends the original, plus the model's answer and a new question
    turn2 = _anthropic(notes, extra=[
        {"role": "assistant", "content": "The rollback fixed it."},
        {"role": "user", "content": "Thanks. What about the index?"}])
    restarted = LLMLinguaService(lingua_service.model)  # a restart: model not loaded yet
    records = await _run(turn2, restarted, ccr, settings)
    assert [r.outcome for r in records] == ["replayed"]
    assert _tool_text(turn2) == sent_rendering
    restarted.close()


async def test_older_output_never_rendered_stays_as_sent(lingua_service, settings, make_prose):
    notes = _notes(make_prose)
    doc = _anthropic(notes, extra=[{"role": "assistant", "content": "Done."},
                                   {"role": "user", "content": "And now?"}])
    fresh_ccr = CCRStore(MemoryStorage())  # nothing remembered: it went out unchanged before
    assert await _run(doc, lingua_service, fresh_ccr, settings) == []
    assert _tool_text(doc) == notes


@pytest.mark.parametrize("case", ["not_ready", "timeout", "off"])
async def test_fail_open_leaves_the_request_unchanged(lingua_service, ccr, settings, make_prose,
                                                      case):
    doc = _anthropic(_notes(make_prose))
    before = copy.deepcopy(doc)
    service, kw = lingua_service, {}
    if case == "not_ready":
        service = LLMLinguaService(lingua_service.model)
    elif case == "timeout":
        kw["deadline_s"] = 0.0
    else:
        settings = settings.replace(llmlingua=False)
    records = await _run(doc, service, ccr, settings, **kw)
    assert doc == before
    assert [r.outcome for r in records] == ([] if case == "off" else [case])


async def test_pasted_document_keeps_the_users_instructions(lingua_service, ccr, settings,
                                                            make_prose):
    ask = "Please summarise the report below for the leadership review."
    closing = "Focus on the checkout failures only."
    document = f"{ask}\n\n{make_prose(30, seed=9)}\n\n{closing}"
    doc = {"model": "gpt-4o", "messages": [{"role": "user", "content": document}]}
    req = parse_request(doc, Endpoint.OPENAI_CHAT)
    records = await compress_prose(req, tenant=TENANT, ccr=ccr, service=lingua_service,
                                   settings=settings, deadline_s=60)
    assert [(r.target, r.outcome) for r in records] == [("user_text", "compressed")]
    sent = doc["messages"][0]["content"]
    assert sent.startswith(ask + "\n\n") and closing in sent
    assert ccr.get(TENANT, records[0].hash).text == document


def test_forced_strings_find_identifiers_and_query_terms():
    text = ("The Checkout deployment used PaymentService.retry() and orders_index_v2 from "
            "/var/log/app.log (see https://x.example.com/a?b=1). Ticket OPS-1234, v2.3.1, 40ms.")
    forced = forced_strings(text, "why did the checkout fail?")
    for s in ("PaymentService.retry()", "orders_index_v2", "/var/log/app.log", "OPS-1234",
              "https://x.example.com/a?b=1", "40ms", "Checkout"):
        assert s in forced
    assert query_terms("Why did the checkout fail, what is wrong?") == ["checkout", "fail", "wrong"]
