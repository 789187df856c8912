"""LLMLingua-2 as an opt-in service: loads in the background, compresses off the event loop.

torch, transformers and llmlingua are imported only in the loading thread (or by
`resolve_device` when the option is on), never when this module is imported. One worker thread
runs the model — the tokenizer is not safe to share between threads, and on a small machine one
busy core is the most we take from the proxy's event loop. Every call is bounded:

- Size: texts over `max_chars` (default 64,000 characters, ~16k tokens) are skipped whole; a
  CPU needs ~6-21 s per 4k tokens with the real models, so larger texts cannot meet any request's
  budget. Texts under the bound are cut at line boundaries into pieces of `piece_chars`.
- Time: each call has a deadline. The worker checks it before every piece and gives up at the
  first piece boundary past it, so an abandoned call wastes at most one piece of work; the caller
  gets None at the deadline itself and sends the original (fail open). A partial result is never
  used: a rendering must not depend on how fast the machine was (DESIGN.md rule 2).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import importlib.util
import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from .protect import PLACEHOLDER, protect, restore, tidy

log = logging.getLogger("headroom.llmlingua")

INSTALL_HINT = "pip install 'headroom-proxy[llmlingua]'"
REQUIRED_MODULES = ("llmlingua", "transformers", "torch")
# llmlingua 0.2.2 picks its word-merging rules from the model *name*; other names fail per call.
SUPPORTED_NAME_PARTS = ("bert-base-multilingual-cased", "xlm-roberta-large")
DEFAULT_DEADLINE_S = 2.0
DEFAULT_MAX_CHARS = 64_000
DEFAULT_PIECE_CHARS = 6_000


def is_installed() -> bool:
    """Whether the llmlingua extra is importable, decided without importing anything heavy."""
    try:
        return all(importlib.util.find_spec(name) is not None for name in REQUIRED_MODULES)
    except (ImportError, ValueError):
        return False


def resolve_device(requested: str) -> str:
    """auto → cuda, then mps, then cpu. An explicit device that torch cannot see is an error."""
    import torch

    cuda = torch.cuda.is_available()
    mps = bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())
    if requested == "auto":
        return "cuda" if cuda else "mps" if mps else "cpu"
    if requested == "cuda" and not cuda:
        raise RuntimeError("--llmlingua-device cuda: torch sees no CUDA device")
    if requested == "mps" and not mps:
        raise RuntimeError("--llmlingua-device mps: torch sees no MPS device")
    if requested not in ("cuda", "mps", "cpu"):
        raise ValueError(f"--llmlingua-device: expected auto, cuda, cpu or mps, got {requested!r}")
    return requested


def startup_message(settings: Any, device: str | None = None) -> tuple[str, str]:
    """(level, text) for the start-up banner. `device`: the resolved one, if already known.

    With the option on and device auto, resolving imports torch (only then, and only to ask
    torch which accelerator it sees).
    """
    installed = is_installed()
    if settings.llmlingua and not installed:
        return ("warning", "WARNING: LLMLingua requested but not installed. "
                           f"Install with: {INSTALL_HINT}")
    if settings.llmlingua:
        if device is None:
            try:
                device = resolve_device(settings.llmlingua_device)
            except (RuntimeError, ValueError) as e:
                return ("warning", f"WARNING: LLMLingua enabled but unusable: {e}")
        return ("info", f"LLMLingua: ENABLED (device={device}, rate={settings.llmlingua_rate})")
    if installed:
        return ("info", "LLMLingua: available (enable with --llmlingua for ML compression)")
    return ("debug", f"LLMLingua: not installed (optional; {INSTALL_HINT})")


def _seed_tiktoken() -> None:
    """llmlingua's constructor asks tiktoken for cl100k_base: make that work offline."""
    from headroom_core.tokens import ensure_tiktoken_cache

    os.environ["TIKTOKEN_CACHE_DIR"] = ensure_tiktoken_cache()


@dataclass(frozen=True)
class Outcome:
    """What one `compress_detailed` call did: `text` is None whenever the original must go out."""

    text: str | None
    reason: str  # compressed | not_ready | empty | too_large | timeout | error | placeholders_lost
    seconds: float = 0.0


class _Abandoned(Exception):
    """The call's deadline passed or its caller went away; stop at this piece boundary."""


@dataclass
class _Job:
    deadline_at: float
    cancelled: threading.Event


class LLMLinguaService:
    """One LLMLingua-2 model for the whole process, used through `compress` from async code."""

    def __init__(self, model: str, device: str = "auto", rate: float = 0.3, *,
                 max_chars: int = DEFAULT_MAX_CHARS, piece_chars: int = DEFAULT_PIECE_CHARS,
                 progress: Callable[[str], None] | None = None) -> None:
        self.model = model
        self.requested_device = device
        self.rate = float(rate)
        self.max_chars = max_chars
        self.piece_chars = piece_chars
        self.device: str | None = None  # resolved once loading starts
        self.load_error: str | None = None
        self.load_seconds: float | None = None
        self.cpu_threads: int | None = None  # torch intra-op threads when running on the CPU
        self._progress = progress or (lambda msg: log.info("%s", msg))
        self._compressor: Any = None
        self._ready = threading.Event()
        self._done = threading.Event()  # loading finished, either way
        self._thread: threading.Thread | None = None
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="headroom-llmlingua")
        self.counts: dict[str, int] = {}
        self._counts_lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Any, **kw: Any) -> "LLMLinguaService":
        return cls(settings.llmlingua_model, settings.llmlingua_device,
                   float(settings.llmlingua_rate), **kw)

    # --- loading -------------------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    @property
    def state(self) -> str:
        """"idle" (not started), "loading", "ready" or "failed" (`load_error` says why)."""
        if self._ready.is_set():
            return "ready"
        if self._done.is_set():
            return "failed"
        return "idle" if self._thread is None else "loading"

    def start_loading(self) -> None:
        """Load the model in a daemon thread; returns at once. Calling it twice does nothing."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._load, name="headroom-llmlingua-load",
                                        daemon=True)
        self._thread.start()

    def wait_loaded(self, timeout: float | None = None) -> bool:
        """Block until loading ended (ready or failed); True if it ended. For scripts and tests."""
        return self._done.wait(timeout)

    def _load(self) -> None:
        started = time.monotonic()
        try:
            self._compressor = self._build_compressor()
            self.load_seconds = time.monotonic() - started
            self._ready.set()
            self._progress(f"LLMLingua: model ready on {self.device} in {self.load_seconds:.1f} s")
        except Exception as e:  # anything: the proxy runs on without LLMLingua
            # one line: hub errors come with several, and this one goes to a console and logs
            self.load_error = " ".join(f"{type(e).__name__}: {e}".split())
            self._progress(f"LLMLingua: model failed to load ({self.load_error}); "
                           "requests pass without it")
        finally:
            self._done.set()

    def _build_compressor(self) -> Any:
        if not is_installed():
            raise ModuleNotFoundError(f"llmlingua is not installed ({INSTALL_HINT})")
        local = _looks_like_path(self.model)
        if local and not Path(self.model).expanduser().is_dir():
            raise FileNotFoundError(f"model directory not found: {self.model}")
        name = str(Path(self.model).expanduser().resolve()) if local else self.model
        if not any(part in Path(name).name for part in SUPPORTED_NAME_PARTS):
            raise ValueError(f"llmlingua 0.2.2 supports LLMLingua-2 models whose name contains "
                             f"{' or '.join(SUPPORTED_NAME_PARTS)}; got {Path(name).name!r}")
        self._progress("LLMLingua: importing torch and transformers")
        try:
            import torch
        except ImportError as e:  # present on disk but broken: say what to reinstall
            raise ModuleNotFoundError(f"torch could not be imported ({e}); {INSTALL_HINT}") from e

        self.device = resolve_device(self.requested_device)
        if self.device == "cpu":
            # Leave one core to the proxy's event loop on small machines.
            self.cpu_threads = max(1, (os.cpu_count() or 2) - 1)
            torch.set_num_threads(self.cpu_threads)
        _seed_tiktoken()
        try:
            from llmlingua import PromptCompressor
            from transformers.utils import logging as hf_logging
        except ImportError as e:
            raise ModuleNotFoundError(f"llmlingua could not be imported ({e}); {INSTALL_HINT}") from e

        hf_logging.set_verbosity_error()  # "sequence longer than 512" is llmlingua's normal case
        hf_logging.disable_progress_bar()  # our own progress lines say what is happening
        self._progress(f"LLMLingua: loading {name} on {self.device}")
        # trust_remote_code off: llmlingua turns it on by default, which would run code from the
        # model repository. A local directory never touches the hub.
        config: dict[str, Any] = {"trust_remote_code": False}
        if local:
            config["local_files_only"] = True
        try:
            compressor = PromptCompressor(model_name=name, device_map=self.device,
                                          model_config=config, use_llmlingua2=True)
        except OSError as e:
            if local:
                raise
            raise OSError(f"{name!r} is no local directory, and the Hugging Face hub did not "
                          f"give it ({e})") from e
        compressor.model.eval()
        return compressor

    # --- compression ---------------------------------------------------------------------------

    async def compress(self, text: str, *, rate: float | None = None,
                       force_tokens: Sequence[str] = (),
                       deadline_s: float = DEFAULT_DEADLINE_S) -> str | None:
        """The compressed text, or None (not ready, too large, timeout, error): send the original."""
        return (await self.compress_detailed(text, rate=rate, force_tokens=force_tokens,
                                             deadline_s=deadline_s)).text

    async def compress_detailed(self, text: str, *, rate: float | None = None,
                                force_tokens: Sequence[str] = (),
                                deadline_s: float = DEFAULT_DEADLINE_S) -> Outcome:
        """Like `compress`, also saying why nothing came back (for logs, metrics and comments)."""
        if not self.ready:
            return self._count(Outcome(None, "not_ready"))
        if not text.strip():
            return self._count(Outcome(None, "empty"))
        if len(text) > self.max_chars:
            return self._count(Outcome(None, "too_large"))
        started = time.monotonic()
        job = _Job(deadline_at=started + deadline_s, cancelled=threading.Event())
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._executor, self._run, job, text,
                                      self.rate if rate is None else float(rate),
                                      tuple(force_tokens))
        try:
            result = await asyncio.wait_for(future, timeout=max(0.0, deadline_s))
        except (asyncio.TimeoutError, _Abandoned):
            return self._count(Outcome(None, "timeout", time.monotonic() - started))
        except Exception as e:
            log.warning("LLMLingua: compression failed (%s: %s); original kept", type(e).__name__, e)
            return self._count(Outcome(None, "error", time.monotonic() - started))
        finally:
            job.cancelled.set()  # a no-op when it finished; stops an abandoned one early
        reason = "compressed" if result is not None else "placeholders_lost"
        return self._count(Outcome(result, reason, time.monotonic() - started))

    def compress_blocking(self, text: str, *, rate: float | None = None,
                          force_tokens: Sequence[str] = ()) -> str | None:
        """The same work on the calling thread, unbounded in time (benchmarks, batch use)."""
        if not self.ready:
            raise RuntimeError(self.load_error or "LLMLingua model is not loaded")
        job = _Job(deadline_at=float("inf"), cancelled=threading.Event())
        return self._run(job, text, self.rate if rate is None else float(rate), tuple(force_tokens))

    def _run(self, job: _Job, text: str, rate: float, force: tuple[str, ...]) -> str | None:
        if self.cpu_threads is not None:
            import torch  # already loaded; OpenMP keeps its thread count per calling thread

            if torch.get_num_threads() != self.cpu_threads:
                torch.set_num_threads(self.cpu_threads)
        out: list[str] = []
        for piece in split_pieces(text, self.piece_chars):
            if job.cancelled.is_set() or time.monotonic() > job.deadline_at:
                raise _Abandoned()
            compressed = self._compress_piece(piece, rate, force)
            if compressed is None:
                return None
            out.append(compressed)
        return "".join(out)

    def _compress_piece(self, piece: str, rate: float, force: tuple[str, ...]) -> str | None:
        protected = protect(piece, force)
        # llmlingua weighs words by their cl100k tokens; so do we, to aim at the prose's share.
        encode = self._compressor.oai_tokenizer.encode
        prose_tokens = len(encode(protected.text.replace(PLACEHOLDER, " ")))
        if prose_tokens == 0:
            return piece
        result = self._compressor.compress_prompt_llmlingua2(
            [protected.text],
            rate=model_rate(rate, prose_tokens, len(protected.spans) * len(encode(PLACEHOLDER))),
            force_tokens=[PLACEHOLDER],
            chunk_end_tokens=[".", "\n", PLACEHOLDER],
        )
        return restore(tidy(result["compressed_prompt"]), protected)

    def _count(self, outcome: Outcome) -> Outcome:
        with self._counts_lock:
            self.counts[outcome.reason] = self.counts.get(outcome.reason, 0) + 1
        return outcome

    def close(self) -> None:
        """Stop the worker (pending calls are dropped; a running piece finishes in the background)."""
        self._executor.shutdown(wait=False, cancel_futures=True)


def model_rate(rate: float, prose_tokens: int, forced_tokens: int) -> float:
    """The rate to ask llmlingua for so that `rate` of the *prose* survives.

    llmlingua keeps a share of all words, weighted by their tokens, and our placeholders always
    survive; asked for `rate` as is, a text with much structure would keep the placeholders and
    almost no words. Solve kept = rate·P + F over P + F.
    """
    total = prose_tokens + forced_tokens
    return min(1.0, (rate * prose_tokens + forced_tokens) / total) if total else 1.0


def split_pieces(text: str, limit: int) -> list[str]:
    """Cut `text` into consecutive pieces of at most `limit` characters, at line breaks if possible,
    else after a sentence, else at a blank; joined back they give `text` exactly."""
    pieces: list[str] = []
    start = 0
    while len(text) - start > limit:
        window = text[start:start + limit]
        for sep in ("\n", ". ", " "):
            at = window.rfind(sep)
            if at > limit // 4:  # a cut too near the start would make many tiny pieces
                cut = at + len(sep)
                break
        else:
            cut = limit
        pieces.append(text[start:start + cut])
        start += cut
    pieces.append(text[start:])
    return [p for p in pieces if p]


def _looks_like_path(model: str) -> bool:
    """A local directory (absolute, ./, ~/, or existing) rather than a hub name like org/name."""
    return model.startswith((".", "~")) or os.path.isabs(model) or os.path.isdir(model)
