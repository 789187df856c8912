"""The `headroom_retrieve` tool: its definition in each provider's shape, and finding it.

The definition is a constant: every turn of every conversation that carries it carries the same
bytes, so the provider's cached prefix (tools come first) stays valid once it was added.
"""

from __future__ import annotations

import copy
from typing import Any

from ..wire.common import Endpoint

TOOL_NAME = "headroom_retrieve"

DESCRIPTION = (
    "Retrieve original content that headroom shortened. Tool outputs and older messages may "
    "contain a marker like [headroom: ... call headroom_retrieve(hash=\"<hash>\") for the rest]; "
    "the omitted text is kept under that hash. Call this tool with the hash copied from such a "
    "marker when the omitted part matters to the task. Pass `query` to get only the parts that "
    "match it instead of the whole original. Never guess a hash."
)

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "hash": {"type": "string", "description": "The hash shown in the marker."},
        "query": {"type": "string",
                  "description": "Optional words to search for; only matching parts are returned."},
    },
    "required": ["hash"],
}

ENDPOINTS = (Endpoint.ANTHROPIC_MESSAGES, Endpoint.OPENAI_CHAT, Endpoint.OPENAI_RESPONSES)


def definition(endpoint: Endpoint) -> dict[str, Any]:
    """A fresh copy of the tool in the shape `endpoint` expects."""
    schema = copy.deepcopy(SCHEMA)
    if endpoint is Endpoint.ANTHROPIC_MESSAGES:
        return {"name": TOOL_NAME, "description": DESCRIPTION, "input_schema": schema}
    if endpoint is Endpoint.OPENAI_CHAT:
        return {"type": "function",
                "function": {"name": TOOL_NAME, "description": DESCRIPTION, "parameters": schema}}
    if endpoint is Endpoint.OPENAI_RESPONSES:
        # Responses treats function tools as strict unless told otherwise, and strict mode
        # would make the optional `query` mandatory.
        return {"type": "function", "name": TOOL_NAME, "description": DESCRIPTION,
                "parameters": schema, "strict": False}
    raise ValueError(f"no headroom_retrieve definition for {endpoint.value}")


def tool_name_of(tool: Any, endpoint: Endpoint) -> str | None:
    """The name a tools[] entry declares, in any of the three shapes (None when it has none)."""
    if not isinstance(tool, dict):
        return None
    if endpoint is Endpoint.OPENAI_CHAT:
        fn = tool.get("function")
        name = fn.get("name") if isinstance(fn, dict) else None
    else:
        name = tool.get("name")
    return name if type(name) is str else None


def tools_define(doc: dict, endpoint: Endpoint, name: str = TOOL_NAME) -> bool:
    tools = doc.get("tools")
    if not isinstance(tools, list):
        return False
    return any(tool_name_of(t, endpoint) == name for t in tools)


def append_tool(doc: dict, endpoint: Endpoint) -> bool:
    """Add our definition at the end of `doc["tools"]`; False when a tool of that name is there.

    A `tools` key that is present but not a list is left alone (the provider will judge it).
    """
    tools = doc.get("tools")
    if tools is None:
        doc["tools"] = [definition(endpoint)]
        return True
    if not isinstance(tools, list) or tools_define(doc, endpoint):
        return False
    tools.append(definition(endpoint))
    return True
