"""OpenAI Responses request bodies (/v1/responses)."""

from __future__ import annotations

from .common import (ProviderRequest, StaleLocationError, ToolOutput, arguments_json,
                     content_text, replace_content_text, replace_text_at, str_or_none,
                     user_text_parts)

_SYSTEM_ROLES = ("system", "developer")
_CALLS = {"function_call": "arguments", "custom_tool_call": "input"}  # item type -> its arguments
_OUTPUTS = ("function_call_output", "custom_tool_call_output")


class OpenAIResponsesRequest(ProviderRequest):
    """`instructions` plus `input`: a plain string, or a list of items (messages with roles,
    `function_call` / `function_call_output` pairs joined by `call_id`, reasoning, ...)."""

    messages_key = "input"  # `messages` is [] when input is a plain string: see user_texts
    max_tokens_keys = ("max_output_tokens",)

    def system_text(self) -> str:
        parts = []
        instructions = self.doc.get("instructions")
        if type(instructions) is str:
            parts.append(instructions)
        parts.extend(content_text(item.get("content"), "input_text") for item in self.messages
                     if isinstance(item, dict) and item.get("role") in _SYSTEM_ROLES)
        return "\n".join(parts)

    def tool_outputs(self) -> list[ToolOutput]:
        outputs: list[ToolOutput] = []
        calls: dict[str, tuple[str | None, str]] = {}  # call_id -> (name, arguments)
        last_user_text = ""
        for i, item in enumerate(self.messages):
            if not isinstance(item, dict):
                continue
            kind = str_or_none(item.get("type"))
            call_id = str_or_none(item.get("call_id"))
            if kind in _CALLS and call_id:
                name = str_or_none(item.get("name"))
                args = item.get(_CALLS[kind])
                calls[call_id] = (name, args if type(args) is str else arguments_json(args))
            elif kind in _OUTPUTS:
                name, args = calls.get(call_id, (None, "")) if call_id else (None, "")
                outputs.append(ToolOutput(
                    location=("input", i), message_index=i, tool_name=name, tool_args=args,
                    call_id=call_id, text=content_text(item.get("output"), "input_text"),
                    is_error=False, query_context=last_user_text))
            elif item.get("role") == "user" and kind in (None, "message"):
                text = content_text(item.get("content"), "input_text")
                if text:
                    last_user_text = text
        return outputs

    def replace_tool_output(self, out: ToolOutput, new_text: str) -> None:
        item = self._message(out.location, 1)
        if item.get("type") not in _OUTPUTS or str_or_none(item.get("call_id")) != out.call_id:
            raise StaleLocationError(f"no tool output for {out.call_id!r} at {out.location!r}")
        replace_content_text(item, "output", new_text, "input_text")

    def user_texts(self) -> list[tuple[tuple, str]]:
        raw = self.doc.get("input")
        if type(raw) is str:
            return [(("input",), raw)]
        return user_text_parts(self.messages, "input", "input_text")

    def replace_user_text(self, location: tuple, new_text: str) -> None:
        if location == ("input",):
            if type(self.doc.get("input")) is not str:
                raise StaleLocationError("input is no longer a plain string")
            self.doc["input"] = new_text
            return
        item = self._message(location, 1)
        if item.get("role") != "user":
            raise StaleLocationError(f"no user message at {location!r}")
        replace_text_at(item, location, new_text, "input_text")
