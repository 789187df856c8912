"""headroom_retrieve: the tool that answers markers, kept out of the client's sight.

Request side: `conversation.prepare_request` (tool injection, sticky per conversation;
carried exchanges re-inserted). Response side: `engine` runs a turn's rounds over a dialect
(`anthropic`, `openai_chat`, `openai_responses` and their `*_stream` splicers), answering
calls from the CCR store (`answers`); `relay` is the loopback server mitmproxy flows are
pointed at, with `http1` as its provider client. addons/retrieval.py wires it into mitmproxy.
"""
