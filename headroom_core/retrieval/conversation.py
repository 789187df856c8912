"""Request side of retrieval: keep `headroom_retrieve` in a conversation once it was there, and
put carried exchanges (from turns that mixed retrieval with real tool calls) back in place.

Stickiness is derived first: a marker, or a `headroom_retrieve` call anywhere in the history,
means the tool is present, and marker renderings are deterministic, so this holds on every
instance and after restarts with no state. A small per-conversation record in storage covers
what the history alone cannot show (context fitting dropped every marker; Responses chains
whose history lives at the provider) and lists the carried exchanges to re-insert.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from typing import Any

from ..storage.base import Storage, StorageError
from ..wire.common import Endpoint
from .dialects import DIALECTS
from .tool import ENDPOINTS, append_tool, tools_define

logger = logging.getLogger("headroom")

MARKER_NEEDLE = "call headroom_retrieve(hash="
RECORD_TTL = 30 * 86400  # a conversation's record and carried exchanges
_MAX_CARRIES = 256  # per conversation record; the oldest fall off


def namespace(tenant: str) -> str:
    return "retrieval:" + tenant


def conversation_key(doc: dict, endpoint: Endpoint, tenant: str) -> str:
    """Who a request belongs to: its Responses chain, else its system prompt and first user
    message (hashed with the tenant; nothing readable is stored)."""
    if endpoint is Endpoint.OPENAI_RESPONSES and isinstance(doc.get("previous_response_id"), str):
        return "resp:" + doc["previous_response_id"]
    system, first_user = DIALECTS[endpoint].conversation_parts(doc)
    text = json.dumps([tenant, endpoint.value, system, first_user], ensure_ascii=False,
                      sort_keys=True, default=str)
    return "conv:" + hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def contains_marker(doc: dict, endpoint: Endpoint) -> bool:
    """Whether any string of the conversation holds a headroom marker (early exit)."""
    root = doc.get("input" if endpoint is Endpoint.OPENAI_RESPONSES else "messages")
    stack: list[Any] = [root]
    while stack:
        node = stack.pop()
        if type(node) is str:
            if MARKER_NEEDLE in node:
                return True
        elif isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return False


class ConversationStore:
    """Per-tenant records in a Storage namespace. Every failure reads as "no record": a broken
    store must never break a request (the derived signals still work)."""

    def __init__(self, storage: Storage | None) -> None:
        self.storage = storage

    def _get(self, tenant: str, key: str) -> dict | None:
        if self.storage is None:
            return None
        try:
            raw = self.storage.get(namespace(tenant), key)
            doc = json.loads(raw) if raw else None
        except (StorageError, ValueError, OSError) as e:
            logger.warning("headroom: retrieval record %s unreadable: %s", key[:12], e)
            return None
        return doc if isinstance(doc, dict) else None

    def _set(self, tenant: str, key: str, doc: dict) -> None:
        if self.storage is None:
            return
        try:
            self.storage.set(namespace(tenant), key, json.dumps(doc).encode(), ttl=RECORD_TTL)
        except (StorageError, OSError) as e:
            logger.warning("headroom: retrieval record %s not saved: %s", key[:12], e)

    def record(self, tenant: str, key: str) -> dict:
        return self._get(tenant, key) or {}

    def save_record(self, tenant: str, key: str, record: dict) -> None:
        self._set(tenant, key, record)

    def carried(self, tenant: str, call_id: str) -> dict | None:
        return self._get(tenant, "carry:" + call_id)

    def add_carry(self, tenant: str, key: str, call_id: str, exchange: dict) -> None:
        """Remember an exchange to re-insert next to client call `call_id`."""
        self._set(tenant, "carry:" + call_id, exchange)
        record = self.record(tenant, key)
        carries = [c for c in record.get("carry", []) if c != call_id] + [call_id]
        self._set(tenant, key, {**record, "tool": True, "carry": carries[-_MAX_CARRIES:]})

    def link_response(self, tenant: str, key: str, response_id: str) -> None:
        """A Responses turn produced `response_id`: a request chaining on it continues this
        conversation (same record, under the key such a request will compute)."""
        record = self.record(tenant, key)
        self._set(tenant, "resp:" + response_id, {**record, "tool": True})


@dataclass(frozen=True)
class Preparation:
    """What retrieval did to a request on its way out."""

    tool: bool  # our headroom_retrieve is in the request: retrieval calls must be answered
    changed: bool  # the document was changed (tool appended, exchanges re-inserted)
    conversation: str = ""  # the conversation record's key
    carried: int = 0  # exchanges re-inserted
    note: str = ""  # why retrieval is not offered, when it is not

    def as_metadata(self) -> dict[str, Any]:
        out: dict[str, Any] = {"tool": self.tool}
        if self.carried:
            out["carried_in"] = self.carried
        if self.note:
            out["note"] = self.note
        return out


def prepare_request(doc: Any, endpoint: Endpoint, tenant: str, store: ConversationStore | None,
                    conversation: str | None = None, markers: bool | None = None) -> Preparation:
    """Re-insert carried exchanges and add the tool when the conversation needs it.

    Call it on the document as it will be forwarded (after compression), with `conversation`
    computed before context fitting could drop the first messages. `markers`: whether the
    caller knows the document holds a marker (None: look).
    """
    if endpoint not in ENDPOINTS or not isinstance(doc, dict):
        return Preparation(False, False)
    if tools_define(doc, endpoint):
        return Preparation(False, False, note="the client defines its own headroom_retrieve")
    if endpoint is Endpoint.OPENAI_CHAT and doc.get("n") not in (None, 1):
        return Preparation(False, False, note="n > 1: retrieval is not offered")
    if endpoint is Endpoint.OPENAI_CHAT and "functions" in doc:
        # Legacy function calling cannot be mixed with `tools`.
        return Preparation(False, False, note="legacy `functions`: retrieval is not offered")
    dialect = DIALECTS[endpoint]
    key = conversation or conversation_key(doc, endpoint, tenant)
    record = store.record(tenant, key) if store is not None else {}
    changed, carried = False, 0
    for call_id in record.get("carry", []):
        exchange = store.carried(tenant, call_id) if store is not None else None
        if exchange and dialect.reinsert(doc, call_id, exchange):
            changed, carried = True, carried + 1
    needed = (bool(record.get("tool")) or carried > 0
              or (markers if markers is not None else contains_marker(doc, endpoint))
              or dialect.history_calls_tool(doc))
    if not needed:
        return Preparation(False, changed, key, carried)
    if append_tool(doc, endpoint):
        changed = True
    if store is not None and not record.get("tool"):
        store.save_record(tenant, key, {**record, "tool": True})
    return Preparation(True, changed, key, carried)
