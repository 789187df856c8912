"""Optional ML features (LLMLingua-2); heavy imports happen only when enabled."""
