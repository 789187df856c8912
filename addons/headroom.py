"""headroom as mitmproxy addons: `mitmdump -s addons/headroom.py --mode reverse:...@8787`.

mitmproxy sees one addon, `Headroom` (addons/suite.py: one node instead of ten keeps mitmproxy's
per-event dispatch cheap); its parts, in the order of the request path:
options -> forward-mode tunnelling -> capture of the original body (mitmweb) -> routing ->
local endpoints -> optimiser (admission, cache, compression) -> retrieval (tool, relay) ->
stream tap and accounting -> mitmweb annotation -> credential redaction (before mitmproxy saves
a flow). Each is a thin adapter over `headroom_core` (see ARCHITECTURE.md).
"""

# No `from __future__ import annotations`: mitmproxy loads this file as a script (not a
# registered module), and the addons it lists live in the headroom_addons package.
import os
import sys

try:
    import headroom_addons  # noqa: F401  (installed: pip install -e . maps addons/ to it)
except ImportError:  # a checkout without an install: load addons/ as that package
    import importlib.util

    _here = os.path.dirname(os.path.abspath(__file__))
    sys.path.insert(0, os.path.dirname(_here))  # headroom_core
    _spec = importlib.util.spec_from_file_location(
        "headroom_addons", os.path.join(_here, "__init__.py"), submodule_search_locations=[_here])
    headroom_addons = importlib.util.module_from_spec(_spec)
    sys.modules["headroom_addons"] = headroom_addons
    _spec.loader.exec_module(headroom_addons)

from headroom_addons.accounting import Accounting
from headroom_addons.endpoints import LocalEndpoints
from headroom_addons.forward import ForwardMode
from headroom_addons.inspect import Annotate, CaptureOriginal
from headroom_addons.optimiser import Optimiser
from headroom_addons.options import HeadroomOptions
from headroom_addons.redact import RedactCredentials
from headroom_addons.retrieval import Retrieval
from headroom_addons.routing import Routing
from headroom_addons.state import Shared
from headroom_addons.suite import EVENT_HOOKS, Headroom

shared = Shared()
_capture = CaptureOriginal()

# mitmproxy offers every event to this module too (it holds `addons`). Looking up a module
# attribute that is missing costs microseconds (Python formats an AttributeError each time),
# at least eight times per request; None is found at once and means "no hook" to mitmproxy.
globals().update(dict.fromkeys(EVENT_HOOKS, None))

headroom = Headroom([
    HeadroomOptions(shared),
    ForwardMode(),
    _capture,
    Routing(shared),
    LocalEndpoints(shared),
    Optimiser(shared),
    Retrieval(shared),
    Accounting(shared),
    Annotate(_capture),
    RedactCredentials(),
])
addons = [headroom]
