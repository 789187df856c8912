"""mitmproxy addons of headroom: thin adapters from flows to headroom_core."""
