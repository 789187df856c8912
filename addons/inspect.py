"""mitmweb inspection of what headroom changed: a mark, a one-line comment, two content views.

Two addons, placed around the optimiser in `addons/headroom.py`'s list:
- `CaptureOriginal` (first): keeps the client's original request body in
  `flow.metadata["headroom_original"]` for the most recent flows only, and refuses flows aimed at
  the web UI's own port.
- `Annotate` (last): turns `flow.metadata["headroom"]` into a comment such as
  `-82% 41,230→7,402 tok · json×3 log×1 · cache miss` and marks flows whose request shrank.

Content views "headroom original" (the client's body) and "headroom diff" (a readable diff of
original → sent) work on mitmproxy 11 (`contentviews.View`) and 12 (`Contentview`).
"""

# No `from __future__ import annotations`: see addons/forward.py (mitmproxy script loading).
import difflib
import itertools
import logging
import weakref
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from mitmproxy import contentviews, ctx, http

from headroom_addons.inspect_text import readable_lines, shrank, summary_comment  # noqa: F401 (re-exported)

logger = logging.getLogger(__name__)

SUMMARY_KEY = "headroom"  # written by the optimiser (addons/headroom.py)
ORIGINAL_KEY = "headroom_original"  # bytes: the client's body, recent flows only
FORWARD_KEY = "headroom_forward"  # set by addons/forward.py: "intercepted" | "passthrough"
MARK = ":scissors:"
KEEP_ORIGINALS = 200  # flows whose original body is kept...
KEEP_ORIGINAL_BYTES = 64 << 20  # ...and at most this many bytes of them
MAX_WEB_FLOWS = 5000  # mitmweb's flow list is trimmed to the newest this many
MAX_DIFF_LINES = 40000  # per side; difflib is superlinear on huge inputs
LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}


def render_original(flow: Any, sent: bytes) -> str:
    """The client's original body, readable; the body itself when headroom changed nothing."""
    original = original_of(flow)
    if original is None:
        note = "(the original was not kept for this flow: it is older than the last " \
               f"{KEEP_ORIGINALS} flows, or headroom sent it unchanged)"
        return note + "\n\n" + "\n".join(readable_lines(sent))
    return "\n".join(readable_lines(original))


def render_diff(flow: Any, sent: bytes) -> str:
    """A unified diff of the readable original against the readable body that was sent."""
    meta = getattr(flow, "metadata", {}).get(SUMMARY_KEY) or {}
    head = summary_comment(meta) if isinstance(meta, Mapping) else ""
    original = original_of(flow)
    if original is None or original == sent:
        return (head + "\n\n" if head else "") + "headroom sent this request unchanged."
    a, b = readable_lines(original), readable_lines(sent)
    cut = len(a) > MAX_DIFF_LINES or len(b) > MAX_DIFF_LINES
    diff = difflib.unified_diff(a[:MAX_DIFF_LINES], b[:MAX_DIFF_LINES], "original (client)",
                                "sent (provider)", n=2, lineterm="")
    text = "\n".join(diff)
    if cut:
        text += f"\n(diff limited to the first {MAX_DIFF_LINES:,} lines of each side)"
    return (head + "\n\n" if head else "") + text


def decoded_body(message: http.Message) -> bytes | None:
    """get_content(strict=False), minus its header lookup when the body is not content-encoded."""
    if any(name.lower() == b"content-encoding" for name, _ in message.headers.fields):
        return message.get_content(strict=False)
    return message.raw_content


def original_of(flow: Any) -> bytes | None:
    value = getattr(flow, "metadata", {}).get(ORIGINAL_KEY)
    return value if isinstance(value, bytes) else None


# ---------------------------------------------------------------- content-view shim (11 vs 12)

VIEW_RENDERERS = {"headroom original": render_original, "headroom diff": render_diff}


def _is_request(message: Any, flow: Any) -> bool:
    return isinstance(flow, http.HTTPFlow) and message is flow.request


def view_priority(name: str, data: bytes, message: Any, flow: Any) -> float:
    """The diff is mitmweb's default view of a request headroom changed (above the JSON
    view's 1); otherwise, and for the original view, the views are picked by name only."""
    if name != "headroom diff" or not _is_request(message, flow):
        return -1
    original = original_of(flow)
    return 2 if original is not None and original != data else -1


if hasattr(contentviews, "Contentview"):  # mitmproxy >= 12

    class HeadroomView(contentviews.Contentview):
        def __init__(self, name: str) -> None:
            self._name = name

        @property
        def name(self) -> str:
            return self._name

        def prettify(self, data: bytes, metadata: Any) -> str:
            if not _is_request(metadata.http_message, metadata.flow):
                return "headroom views show requests only."
            return VIEW_RENDERERS[self._name](metadata.flow, data)

        def render_priority(self, data: bytes, metadata: Any) -> float:
            return view_priority(self._name, data, metadata.http_message, metadata.flow)

    def register_views() -> list[Any]:
        views = [HeadroomView(name) for name in VIEW_RENDERERS]
        for view in views:
            contentviews.add(view)
        return views

    def unregister_views(views: list[Any]) -> None:
        pass  # mitmproxy 12 has no removal; registering again replaces by name

else:  # mitmproxy 11

    class HeadroomView(contentviews.View):  # type: ignore[no-redef]
        def __init__(self, name: str) -> None:
            self.name = name

        def __call__(self, data: bytes, *, flow: Any = None, http_message: Any = None,
                     **unknown: Any) -> tuple[str, Any]:
            if not _is_request(http_message, flow):
                text = "headroom views show requests only."
            else:
                text = VIEW_RENDERERS[self.name](flow, data)
            return self.name, iter([[("text", line)] for line in text.split("\n")])

        def render_priority(self, data: bytes, *, flow: Any = None, http_message: Any = None,
                            **unknown: Any) -> float:
            return view_priority(self.name, data, http_message, flow)

    def register_views() -> list[Any]:
        views = [HeadroomView(name) for name in VIEW_RENDERERS]
        for view in views:
            old = contentviews.get(view.name)
            if old is not None:
                contentviews.remove(old)
            contentviews.add(view)
        return views

    def unregister_views(views: list[Any]) -> None:
        for view in views:
            if view in contentviews.views:
                contentviews.remove(view)


# ---------------------------------------------------------------- the addons

def aimed_at_web_ui(flow: http.HTTPFlow) -> bool:
    """True when mitmweb runs and the request targets its own UI port on this machine."""
    if "web_port" not in ctx.options or flow.request.port != ctx.options.web_port:
        return False
    host = flow.request.host.lower()
    return host in LOOPBACK or host == str(getattr(ctx.options, "web_host", "")).lower()


def refuse(flow: http.HTTPFlow) -> None:
    flow.response = http.Response.make(
        403, b"headroom: requests to the mitmweb UI through the proxy are refused\n",
        {"content-type": "text/plain"})
    flow.comment = "refused: aimed at the web UI's own port"


class CaptureOriginal:
    """Keeps the client's original body on the most recent flows; refuses web-UI flows."""

    def __init__(self, keep: int = KEEP_ORIGINALS, keep_bytes: int = KEEP_ORIGINAL_BYTES) -> None:
        self.keep, self.keep_bytes = keep, keep_bytes
        self._kept: OrderedDict[str, tuple[weakref.ref, int]] = OrderedDict()
        self._bytes = 0
        self._views: list[Any] = []

    @property
    def kept_bytes(self) -> int:
        """Bytes of originals currently kept (bounded by `keep_bytes`)."""
        return self._bytes

    def load(self, loader: Any) -> None:
        self._views = register_views()

    def done(self) -> None:
        unregister_views(self._views)
        self._views = []

    def http_connect(self, flow: http.HTTPFlow) -> None:
        if aimed_at_web_ui(flow):
            refuse(flow)

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        if aimed_at_web_ui(flow):
            refuse(flow)

    def request(self, flow: http.HTTPFlow) -> None:
        if flow.response or flow.error or not flow.live:
            return
        if flow.request.method != "POST" or flow.metadata.get(FORWARD_KEY) == "passthrough":
            return  # headroom changes only provider POSTs; forward traffic to others is not ours
        body = decoded_body(flow.request)
        if not body:
            return
        flow.metadata[ORIGINAL_KEY] = body  # same object as the flow's: no copy until changed
        self._remember(flow, len(body))

    def _remember(self, flow: http.HTTPFlow, size: int) -> None:
        previous = self._kept.pop(flow.id, None)  # a replayed flow is captured again
        if previous:
            self._bytes -= previous[1]
        self._kept[flow.id] = (weakref.ref(flow), size)
        self._bytes += size
        while self._kept and (len(self._kept) > self.keep or self._bytes > self.keep_bytes):
            _, (ref, old_size) = self._kept.popitem(last=False)
            self._bytes -= old_size
            old = ref()
            if old is not None:
                old.metadata.pop(ORIGINAL_KEY, None)

    def forget_unchanged(self, flow: http.HTTPFlow) -> None:
        """Drop the copy when nothing changed: the body itself is the original."""
        # Most bodies go out as the very object captured: then there is nothing to decode.
        kept = flow.metadata.get(ORIGINAL_KEY)
        if kept is not None and (kept is flow.request.raw_content
                                 or kept == decoded_body(flow.request)):
            flow.metadata.pop(ORIGINAL_KEY, None)
            entry = self._kept.pop(flow.id, None)
            if entry:
                self._bytes -= entry[1]


class Annotate:
    """Comment and mark from `flow.metadata["headroom"]`; trims mitmweb's flow list."""

    def __init__(self, capture: CaptureOriginal, max_web_flows: int = MAX_WEB_FLOWS) -> None:
        self.capture = capture
        self.max_web_flows = max_web_flows

    def request(self, flow: http.HTTPFlow) -> None:
        # After the optimiser: an upstream rewritten to the UI port is refused too.
        if not flow.response and not flow.error and aimed_at_web_ui(flow):
            refuse(flow)

    def response(self, flow: http.HTTPFlow) -> None:
        self._annotate(flow)
        self._trim_view()

    def error(self, flow: http.HTTPFlow) -> None:
        self._annotate(flow)

    def _annotate(self, flow: http.HTTPFlow) -> None:
        self.capture.forget_unchanged(flow)
        meta = flow.metadata.get(SUMMARY_KEY)
        if not isinstance(meta, Mapping):
            return
        text = summary_comment(meta)
        if text and text not in flow.comment:
            # Keep a comment someone else wrote (a person in mitmweb, an error note).
            flow.comment = f"{text} · {flow.comment}" if flow.comment else text
        if shrank(meta) and not flow.marked:
            flow.marked = MARK

    def _trim_view(self) -> None:
        """Drop the oldest flows from mitmweb's list once it holds more than the cap.

        A long mitmweb session would otherwise keep every body forever. Trimming goes down to
        90 % of the cap so it runs once per many flows, not on every response.
        """
        view = getattr(ctx.master, "view", None)
        store = getattr(view, "_store", None)  # insertion-ordered by flow arrival (11 and 12)
        if store is None or view.store_count() <= self.max_web_flows:
            return
        excess = view.store_count() - int(self.max_web_flows * 0.9)
        # In-flight flows stay: View.remove would kill them.
        oldest = [f for f in itertools.islice(store.values(), excess)
                  if f.response or f.error or not f.live]
        view.remove(oldest)


capture_original = CaptureOriginal()
annotate = Annotate(capture_original)
addons = [capture_original, annotate]
