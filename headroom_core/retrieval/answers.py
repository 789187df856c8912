"""Synthetic tool results for `headroom_retrieve` calls, answered from the CCR store.

A call never raises: a bad argument, an unknown or expired hash, or another tenant's hash all
become a plain tool result that tells the model how to recover (DESIGN.md rules 4 and 9: the
store is namespaced by tenant, so another tenant's hash is simply not found).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Protocol

QUERY_LIMIT = 20  # matching parts returned for a `query`

_HASH_PREFIX = re.compile(r"^(?:hash\s*[=:]\s*)?[\"'`]?", re.I)


class OriginalStore(Protocol):
    """What retrieval needs of the CCR store (headroom_core.ccr.CCRStore satisfies it)."""

    def get(self, tenant: str, hash: str) -> Any: ...  # an entry with `.text`, or None

    def query(self, tenant: str, hash: str, query: str, limit: int) -> str | None: ...


@dataclass(frozen=True)
class RetrieveCall:
    """One `headroom_retrieve` call as the model made it."""

    call_id: str
    arguments: str  # the call's arguments as JSON text, as the model wrote them


@dataclass(frozen=True)
class Answer:
    """The synthetic result for one call."""

    call_id: str
    hash: str  # "" when the arguments named none
    text: str  # the tool result the model reads
    found: bool
    bytes: int  # size of the retrieved original text (0 on a miss)


def parse_arguments(arguments: str) -> tuple[str, str]:
    """(hash, query) from the call's JSON arguments; ("", "") when unusable."""
    try:
        args = json.loads(arguments) if arguments.strip() else {}
    except ValueError:
        return "", ""
    if not isinstance(args, dict):
        return "", ""
    raw_hash = args.get("hash")
    raw_query = args.get("query")
    digest = normalise_hash(raw_hash) if isinstance(raw_hash, str) else ""
    query = raw_query.strip() if isinstance(raw_query, str) else ""
    return digest, query


def normalise_hash(text: str) -> str:
    """Forgive what models add around a hash: `hash=`, quotes, whitespace, upper case."""
    text = _HASH_PREFIX.sub("", text.strip())
    return text.strip("\"'` \t\r\n…").lower()


def miss_text(digest: str) -> str:
    return (f"headroom_retrieve: the original for hash \"{digest}\" is not available: it is "
            "unknown, has expired, or belongs to another API key. To see the full content "
            "again, run the tool that produced it once more (for a file, read the file again).")


def answer_call(store: OriginalStore | None, tenant: str, call: RetrieveCall) -> Answer:
    """The tool result for `call`, looked up in `tenant`'s namespace only."""
    digest, query = parse_arguments(call.arguments)
    if not digest:
        return Answer(call.call_id, "", "headroom_retrieve: expected arguments like "
                      "{\"hash\": \"<hash copied from a headroom marker>\", \"query\": "
                      "\"<optional words>\"}; the call gave no usable hash.", False, 0)
    entry = store.get(tenant, digest) if store is not None else None
    text = getattr(entry, "text", None)
    if not isinstance(text, str):
        return Answer(call.call_id, digest, miss_text(digest), False, 0)
    if not query:
        return Answer(call.call_id, digest, text, True, len(text.encode("utf-8")))
    part = store.query(tenant, digest, query, QUERY_LIMIT)
    if part is None:  # expired between the two calls
        return Answer(call.call_id, digest, miss_text(digest), False, 0)
    if not part.strip():
        part = (f"headroom_retrieve: nothing in the original for hash \"{digest}\" matches "
                f"{query!r}. Call headroom_retrieve again without `query` for the whole original "
                f"({len(text)} characters).")
        return Answer(call.call_id, digest, part, True, 0)
    return Answer(call.call_id, digest, part, True, len(part.encode("utf-8")))
