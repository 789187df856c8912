"""Anthropic Messages request bodies (/v1/messages and /v1/messages/count_tokens)."""

from __future__ import annotations

from .common import (MessagesRequest, StaleLocationError, ToolOutput, arguments_json,
                     content_text, replace_content_text, str_or_none)


class AnthropicRequest(MessagesRequest):
    """`system` (string or text blocks), `messages` with content strings or block lists;
    tool results are `tool_result` blocks in user messages, paired by `tool_use_id`."""

    def system_text(self) -> str:
        return content_text(self.doc.get("system"), "text")

    def tool_outputs(self) -> list[ToolOutput]:
        outputs: list[ToolOutput] = []
        calls: dict[str, tuple[str | None, str]] = {}  # tool_use id -> (name, input JSON)
        last_user_text = ""
        for i, message in enumerate(self.messages):
            if not isinstance(message, dict):
                continue
            content = message.get("content")
            role = message.get("role")
            if role == "assistant" and isinstance(content, list):
                for block in content:
                    if (isinstance(block, dict) and block.get("type") == "tool_use"
                            and type(block.get("id")) is str):
                        calls[block["id"]] = (str_or_none(block.get("name")),
                                              arguments_json(block.get("input")))
                continue
            if role != "user":
                continue
            if type(content) is str:
                last_user_text = content
                continue
            if not isinstance(content, list):
                continue
            texts_here: list[str] = []  # user text earlier in this same message
            for j, block in enumerate(content):
                if not isinstance(block, dict):
                    continue
                kind = block.get("type")
                if kind == "text" and type(block.get("text")) is str:
                    texts_here.append(block["text"])
                elif kind == "tool_result":
                    call_id = str_or_none(block.get("tool_use_id"))
                    name, args = calls.get(call_id, (None, "")) if call_id else (None, "")
                    outputs.append(ToolOutput(
                        location=("messages", i, j), message_index=i, tool_name=name,
                        tool_args=args, call_id=call_id,
                        text=content_text(block.get("content"), "text"),
                        is_error=block.get("is_error") is True,
                        query_context="\n".join(texts_here) if texts_here else last_user_text))
            if texts_here:
                last_user_text = "\n".join(texts_here)
        return outputs

    def replace_tool_output(self, out: ToolOutput, new_text: str) -> None:
        block = self._block(out.location)
        if block.get("type") != "tool_result" or str_or_none(block.get("tool_use_id")) != out.call_id:
            raise StaleLocationError(f"no tool_result for {out.call_id!r} at {out.location!r}")
        replace_content_text(block, "content", new_text, "text")

    def _block(self, location: tuple) -> dict:
        message = self._message(location, 1)
        content = message.get("content")
        j = location[2] if len(location) == 3 else None
        if (not isinstance(content, list) or type(j) is not int or not 0 <= j < len(content)
                or not isinstance(content[j], dict)):
            raise StaleLocationError(f"no content block at {location!r}")
        return content[j]
