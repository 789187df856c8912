"""headroom core: transport-free optimisation, accounting and state. Never imports mitmproxy."""
