"""Context fitting: model windows, IntelligentContextManager / RollingWindow, sticky drops, TOIN.

    report = fit_request(req, tenant=t, ccr=ccr, state_storage=storage,
                         config=FitConfig.from_settings(settings), headers=headers,
                         toin=toin.view(t), compress_harder=engine_compress_harder(...))

Importing this package imports nothing heavy (no torch); compress_first is imported on its own
because it depends on the compression engine.
"""

from .manager import CompressHarder, ContextFitter, FitConfig, FitReport, drop_order, fit_request
from .policy import IntelligentContextManager, RollingWindow
from .scoring import ScoringConfig
from .toin import PatternStats, Toin, ToinHints, ToinView, output_signature
from .windows import ModelLimit, ModelWindows, output_reserve

__all__ = [
    "CompressHarder", "ContextFitter", "FitConfig", "FitReport", "drop_order", "fit_request",
    "IntelligentContextManager", "RollingWindow", "ScoringConfig", "PatternStats", "Toin",
    "ToinHints", "ToinView", "output_signature", "ModelLimit", "ModelWindows", "output_reserve",
]
