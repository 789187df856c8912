"""OpenAI Chat Completions request bodies (/v1/chat/completions)."""

from __future__ import annotations

from .common import (MessagesRequest, StaleLocationError, ToolOutput, arguments_json,
                     content_text, replace_content_text, str_or_none)

_SYSTEM_ROLES = ("system", "developer")


class OpenAIChatRequest(MessagesRequest):
    """`messages` with roles; tool results are role "tool" messages paired by `tool_call_id`
    with the assistant's `tool_calls` (legacy: role "function" after a `function_call`)."""

    max_tokens_keys = ("max_completion_tokens", "max_tokens")

    def system_text(self) -> str:
        return "\n".join(content_text(m.get("content"), "text") for m in self.messages
                         if isinstance(m, dict) and m.get("role") in _SYSTEM_ROLES)

    def tool_names(self) -> list[str]:
        names: list[str] = []
        for tool in self.tools:
            if isinstance(tool, dict):
                spec = tool.get("function") or tool.get("custom")  # {"type": "custom", ...}
                if isinstance(spec, dict) and type(spec.get("name")) is str:
                    names.append(spec["name"])
        functions = self.doc.get("functions")  # the pre-tools spelling
        if isinstance(functions, list):
            names.extend(f["name"] for f in functions
                         if isinstance(f, dict) and type(f.get("name")) is str)
        return names

    def tool_outputs(self) -> list[ToolOutput]:
        outputs: list[ToolOutput] = []
        calls: dict[str, tuple[str | None, str]] = {}  # tool_call id -> (name, arguments)
        last_function_call: tuple[str | None, str] = (None, "")
        last_user_text = ""
        for i, message in enumerate(self.messages):
            if not isinstance(message, dict):
                continue
            role = str_or_none(message.get("role"))
            if role == "assistant":
                tool_calls = message.get("tool_calls")
                for call in tool_calls if isinstance(tool_calls, list) else ():
                    if isinstance(call, dict) and type(call.get("id")) is str:
                        calls[call["id"]] = _name_and_arguments(call.get("function") or call.get("custom"))
                if isinstance(message.get("function_call"), dict):
                    last_function_call = _name_and_arguments(message["function_call"])
            elif role == "user":
                text = content_text(message.get("content"), "text")
                if text:
                    last_user_text = text
            elif role in ("tool", "function"):
                if role == "tool":
                    call_id = str_or_none(message.get("tool_call_id"))
                    name, args = calls.get(call_id, (None, "")) if call_id else (None, "")
                else:
                    call_id = None
                    name = str_or_none(message.get("name"))
                    args = last_function_call[1] if last_function_call[0] == name else ""
                outputs.append(ToolOutput(
                    location=("messages", i), message_index=i, tool_name=name, tool_args=args,
                    call_id=call_id, text=content_text(message.get("content"), "text"),
                    is_error=False, query_context=last_user_text))
        return outputs

    def replace_tool_output(self, out: ToolOutput, new_text: str) -> None:
        message = self._message(out.location, 1)
        if message.get("role") not in ("tool", "function") or str_or_none(message.get("tool_call_id")) != out.call_id:
            raise StaleLocationError(f"no tool message for {out.call_id!r} at {out.location!r}")
        replace_content_text(message, "content", new_text, "text")


def _name_and_arguments(function: object) -> tuple[str | None, str]:
    if not isinstance(function, dict):
        return None, ""
    name = str_or_none(function.get("name"))
    args = function.get("arguments", function.get("input"))
    return name, args if type(args) is str else arguments_json(args)

