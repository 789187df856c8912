"""Final response bodies in the three formats, as providers return them unstreamed (test data)."""

from __future__ import annotations

ANTHROPIC_TEXT = {
    "id": "msg_01XFDUDYJgAACzvnptvVoYEL", "type": "message", "role": "assistant",
    "model": "claude-sonnet-4-5-20250929",
    "content": [{"type": "text", "text": "Hello! How can I help — today? ✓\nLine two."}],
    "stop_reason": "end_turn", "stop_sequence": None,
    "usage": {"input_tokens": 12, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0,
              "output_tokens": 14, "service_tier": "standard"},
}

ANTHROPIC_TOOLS_AND_THINKING = {
    "id": "msg_02", "type": "message", "role": "assistant", "model": "claude-opus-4-1-20250805",
    "content": [
        {"type": "thinking", "thinking": "The user wants the weather; call the tool.",
         "signature": "EqQBCgIYAhIM1gbcDa9GJwZA2b3h"},
        {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix/LafPsn4a"},
        {"type": "text", "text": "Let me check.",
         "citations": [{"type": "char_location", "cited_text": "sunny", "document_index": 0,
                        "document_title": None, "start_char_index": 0, "end_char_index": 5}]},
        {"type": "tool_use", "id": "toolu_01A", "name": "get_weather",
         "input": {"location": "San Francisco, CA", "unit": "celsius", "days": 3, "ratio": 0.5,
                   "nested": {"a": [1, 2, {"b": None}]}}},
        {"type": "tool_use", "id": "toolu_01B", "name": "noop", "input": {}},
    ],
    "stop_reason": "tool_use", "stop_sequence": None,
    "usage": {"input_tokens": 472, "cache_creation_input_tokens": 100,
              "cache_read_input_tokens": 2000, "output_tokens": 89},
}

CHAT_TEXT = {
    "id": "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG", "object": "chat.completion",
    "created": 1741570283, "model": "gpt-4o-2024-08-06",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "The answer is 4.",
                                         "refusal": None, "annotations": []},
                 "logprobs": None, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 1117, "completion_tokens": 46, "total_tokens": 1163,
              "prompt_tokens_details": {"cached_tokens": 1024, "audio_tokens": 0},
              "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                                            "accepted_prediction_tokens": 0,
                                            "rejected_prediction_tokens": 0}},
    "service_tier": "default", "system_fingerprint": "fp_fc9f1d7035",
}

CHAT_TOOL_CALLS_TWO_CHOICES = {
    "id": "chatcmpl-2", "object": "chat.completion", "created": 1741570300, "model": "gpt-4.1",
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": None, "refusal": None,
                                 "tool_calls": [
                                     {"id": "call_a", "type": "function",
                                      "function": {"name": "get_weather",
                                                   "arguments": "{\"city\": \"Paris\"}"}},
                                     {"id": "call_b", "type": "function",
                                      "function": {"name": "get_time", "arguments": "{}"}}],
                                 "annotations": []},
         "logprobs": None, "finish_reason": "tool_calls"},
        {"index": 1, "message": {"role": "assistant", "content": "Plain answer.", "refusal": None,
                                 "annotations": []},
         "logprobs": {"content": [{"token": "Plain", "logprob": -0.1, "bytes": [80],
                                   "top_logprobs": []}], "refusal": None},
         "finish_reason": "length"},
    ],
    "usage": {"prompt_tokens": 50, "completion_tokens": 20, "total_tokens": 70},
    "system_fingerprint": None,
}

RESPONSES = {
    "id": "resp_67ccd2bed1ec8190b14f964abc0542670bb6a6b452d3795b", "object": "response",
    "created_at": 1741476542, "status": "completed", "error": None, "incomplete_details": None,
    "instructions": None, "max_output_tokens": None, "model": "gpt-5-2025-08-07",
    "output": [
        {"id": "rs_1", "type": "reasoning", "summary": [{"type": "summary_text", "text": "Thought."}]},
        {"id": "msg_67ccd2bf17f0819081ff3bb2cf6508e6", "type": "message", "status": "completed",
         "role": "assistant",
         "content": [{"type": "output_text", "text": "In a peaceful grove beneath a silver moon…",
                      "annotations": [], "logprobs": []}]},
        {"id": "fc_1", "type": "function_call", "status": "completed", "call_id": "call_1",
         "name": "lookup", "arguments": "{\"q\": \"moon\"}"},
    ],
    "parallel_tool_calls": True, "previous_response_id": None,
    "reasoning": {"effort": "medium", "summary": None}, "store": True, "temperature": 1.0,
    "text": {"format": {"type": "text"}}, "tool_choice": "auto", "tools": [], "top_p": 1.0,
    "truncation": "disabled",
    "usage": {"input_tokens": 36, "input_tokens_details": {"cached_tokens": 0},
              "output_tokens": 87, "output_tokens_details": {"reasoning_tokens": 0},
              "total_tokens": 123},
    "user": None, "metadata": {},
}
