"""LLMLinguaService on the real llmlingua code path with a tiny local model."""

from __future__ import annotations

import asyncio
import os
import shutil
import time

import pytest

from headroom_core.ml.llmlingua import LLMLinguaService, resolve_device
from headroom_core.settings import Settings
from headroom_core.tokens import count_text

pytestmark = pytest.mark.ml


def _share(original: str, compressed: str) -> float:
    return count_text(compressed) / count_text(original)


async def test_rate_sets_the_kept_share(lingua_service, make_prose):
    text = make_prose()
    low = await lingua_service.compress(text, rate=0.2, deadline_s=60)
    high = await lingua_service.compress(text, rate=0.5, deadline_s=60)
    assert low is not None and high is not None
    assert abs(_share(text, low) - 0.2) < 0.1
    assert abs(_share(text, high) - 0.5) < 0.1
    assert _share(text, high) - _share(text, low) > 0.2


async def test_service_rate_is_the_default_and_settings_reach_the_service(lingua_service, make_prose,
                                                                         tiny_model_dir):
    text = make_prose(4)
    assert lingua_service.rate == 0.3
    by_default = await lingua_service.compress(text, deadline_s=60)
    assert by_default == await lingua_service.compress(text, rate=0.3, deadline_s=60)
    assert by_default != await lingua_service.compress(text, rate=0.6, deadline_s=60)
    settings = Settings(llmlingua=True, llmlingua_rate="0.45", llmlingua_device="cpu",
                        llmlingua_model=str(tiny_model_dir))
    built = LLMLinguaService.from_settings(settings)
    assert (built.model, built.requested_device, built.rate) == (str(tiny_model_dir), "cpu", 0.45)
    built.close()


async def test_deterministic_and_structure_kept(lingua_service, make_prose):
    text = "## Notes\n\n" + make_prose(3) + "\n\n- first point\n- second point\n"
    first = await lingua_service.compress(text, deadline_s=60)
    assert first == await lingua_service.compress(text, deadline_s=60)
    assert first.startswith("## ")
    assert first.count("\n") == text.count("\n")
    assert "\n- " in first


async def test_forced_strings_survive_verbatim(lingua_service, make_prose):
    forced = ["PaymentService.retry()", "/var/log/payments/migrate.log", "OPS-1234", "2.3.1",
              "https://wiki.example.com/runbooks/db"]
    text = make_prose(3, seed=1) + (
        " The PaymentService.retry() call failed; see /var/log/payments/migrate.log and "
        "https://wiki.example.com/runbooks/db, ticket OPS-1234, rolled back to 2.3.1. "
    ) + make_prose(3, seed=2)
    out = await lingua_service.compress(text, force_tokens=forced, deadline_s=60)
    assert out is not None and count_text(out) < count_text(text)
    for s in forced:
        assert s in out


async def test_too_large_is_skipped_without_work(lingua_service):
    outcome = await lingua_service.compress_detailed("word " * (lingua_service.max_chars // 4))
    assert (outcome.text, outcome.reason) == (None, "too_large")


async def test_deadline_returns_none_and_the_worker_recovers(lingua_service, make_prose):
    big = make_prose(100)
    assert len(big) < lingua_service.max_chars
    outcome = await lingua_service.compress_detailed(big, deadline_s=0.2)
    assert (outcome.text, outcome.reason) == (None, "timeout")
    # the abandoned call stops at its next piece boundary: a later call still completes
    assert await lingua_service.compress(make_prose(2), deadline_s=60) is not None


async def _small_request_round_trip() -> bytes:
    """A tiny request/response over loopback TCP, served on the same event loop."""
    async def handle(reader, writer):
        data = await reader.readline()
        writer.write(b"ok " + data)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"ping\n")
        await writer.drain()
        answer = await reader.readline()
        writer.close()
        return answer
    finally:
        server.close()
        await server.wait_closed()


async def test_event_loop_keeps_serving_during_a_large_compression(lingua_service, make_prose):
    big = make_prose(110)
    ticks: list[float] = []
    stop = asyncio.Event()

    async def ticker():
        while not stop.is_set():
            ticks.append(time.monotonic())
            await asyncio.sleep(0.01)

    tick_task = asyncio.create_task(ticker())
    compression = asyncio.create_task(lingua_service.compress(big, deadline_s=120))
    await asyncio.sleep(0.05)  # the worker has started on the big text
    answer = await _small_request_round_trip()
    small_done_while_compressing = not compression.done()
    started = time.monotonic()
    result = await compression
    stop.set()
    await tick_task
    assert answer == b"ok ping\n"
    assert result is not None
    assert small_done_while_compressing
    during = [t for t in ticks if t >= started]
    # the loop ticked all along: no gap anywhere near the compression's own length
    gaps = [b - a for a, b in zip(during, during[1:])]
    assert len(during) > 10 and max(gaps) < 0.5


async def test_not_loaded_service_passes_everything():
    service = LLMLinguaService("/nowhere/bert-base-multilingual-cased", "cpu", 0.3)
    outcome = await service.compress_detailed("some text worth compressing")
    assert (service.ready, outcome.text, outcome.reason) == (False, None, "not_ready")
    service.close()


@pytest.mark.parametrize("model,needle", [
    ("/nonexistent/dir/bert-base-multilingual-cased", "model directory not found"),
    ("microsoft/llmlingua-2-bert-base-multilingual-cased-meetingbank", ""),  # hub name, offline
])
async def test_missing_model_reports_not_ready_without_raising(model, needle, ml_installed):
    messages: list[str] = []
    service = LLMLinguaService(model, "cpu", 0.3, progress=messages.append)
    service.start_loading()
    assert service.wait_loaded(120)
    assert not service.ready
    assert service.load_error and needle in service.load_error
    assert any("failed to load" in m for m in messages)
    assert await service.compress("text that stays as it is", deadline_s=1) is None
    service.close()


def test_unsupported_model_name_is_a_load_error(tiny_model_dir, tmp_path):
    other = tmp_path / "minilm-token-classifier"
    shutil.copytree(tiny_model_dir, other, copy_function=os.link)  # same files, another name
    service = LLMLinguaService(str(other), "cpu", 0.3, progress=lambda m: None)
    service.start_loading()
    assert service.wait_loaded(120)
    assert not service.ready and "xlm-roberta-large" in service.load_error
    service.close()


def test_device_auto_resolves_to_cpu_here(tiny_model_dir, lingua_service):
    import torch

    if torch.cuda.is_available():
        assert resolve_device("auto") == "cuda"
        return
    assert resolve_device("auto") == "cpu"
    assert lingua_service.device == "cpu"
    with pytest.raises(RuntimeError, match="no CUDA device"):
        resolve_device("cuda")
