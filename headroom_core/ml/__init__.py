"""Optional ML features (LLMLingua-2); heavy imports happen only when enabled.

Importing this package (or `llmlingua`) imports no torch, transformers or llmlingua: those load
in `LLMLinguaService`'s loading thread, and only when the option is on. The request pass lives in
`headroom_core.ml.prose_pass`.
"""

from .llmlingua import LLMLinguaService, Outcome, is_installed, resolve_device, startup_message

__all__ = ["LLMLinguaService", "Outcome", "is_installed", "resolve_device", "startup_message"]
