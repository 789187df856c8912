"""Realistic tool outputs for the compression benchmark and tests, each with its needles.

Every generator is deterministic (a seeded `random.Random`), so a benchmark run is repeatable.
A needle is a line or value the user needs: an error line, a stack frame, an id the user asks
about. The benchmark counts a needle as kept when it appears in the rendering, or when a marker
of the rendering names a CCR entry whose original contains it.
JSON outputs are compact (as tools and APIs send them), not pretty-printed.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta

_WORDS = ("order payment invoice customer session cache token user account report shipment refund "
          "ledger queue worker batch export import schedule metric alert webhook build deploy").split()
_PROSE = ("the service returns a stale value when the cache is warmed before the config reloads so "
          "requests that arrive during the window see old prices and the retry logic makes it worse "
          "because each attempt re-reads the same entry we should invalidate on reload and add a test "
          "that covers the race between the loader and the first request after startup").split()


@dataclass(frozen=True)
class Workload:
    name: str
    text: str
    tool_name: str
    tool_args: dict
    query: str  # the user's request before the tool call
    needles: tuple[str, ...]
    files: tuple[str, ...] = ()  # for search: every file that must stay listed
    protected: bool = False
    notes: str = ""


@dataclass
class _Clock:
    t: datetime = field(default_factory=lambda: datetime(2025, 3, 14, 9, 0, 0))

    def tick(self, rng: random.Random, ms: int = 400) -> str:
        self.t += timedelta(milliseconds=rng.randint(1, ms))
        return self.t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{self.t.microsecond // 1000:03d}Z"


def _hex(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789abcdef") for _ in range(n))


def _sentence(rng: random.Random, lo: int, hi: int) -> str:
    start = rng.randrange(len(_PROSE))
    n = rng.randint(lo, hi)
    return " ".join(_PROSE[(start + k) % len(_PROSE)] for k in range(n))


def incident_log(seed: int = 1, lines: int = 4000) -> Workload:
    rng = random.Random(seed)
    clock = _Clock()
    asked = f"req-{_hex(rng, 10)}"
    out = [f"{clock.tick(rng)} INFO  [main] Starting payments-service v2.14.3 (commit 9f3c2ab) on host pay-7f9c",
           f"{clock.tick(rng)} INFO  [main] Loaded config from /etc/payments/config.yaml (profile=prod)",
           f"{clock.tick(rng)} INFO  [db] Connected to postgres://payments-db:5432/payments (pool max=50)",
           f"{clock.tick(rng)} INFO  [http] Listening on 0.0.0.0:8080"]
    fatal_at = int(lines * 0.83)
    needles = []
    while len(out) < lines:
        i = len(out)
        ts = clock.tick(rng)
        r = rng.random()
        if i == fatal_at:
            fatal = f"{ts} FATAL [payments] unrecoverable state: ledger mismatch for order ORD-88412 (expected 129900, got 128900)"
            out.append(fatal)
            trace = ["java.lang.IllegalStateException: ledger mismatch for order ORD-88412",
                     "\tat com.acme.payments.Ledger.reconcile(Ledger.java:212)",
                     "\tat com.acme.payments.Ledger.commit(Ledger.java:148)",
                     "\tat com.acme.payments.ChargeService.settle(ChargeService.java:97)",
                     "\tat com.acme.payments.ChargeService.lambda$charge$3(ChargeService.java:61)",
                     "\tat java.base/java.util.concurrent.CompletableFuture$AsyncSupply.run(CompletableFuture.java:1768)",
                     "\tat java.base/java.lang.Thread.run(Thread.java:1583)",
                     "Caused by: java.sql.SQLException: deadlock detected while waiting for ShareLock on transaction 91822",
                     "\tat org.postgresql.core.v3.QueryExecutorImpl.receiveErrorResponse(QueryExecutorImpl.java:2725)",
                     "\tat com.acme.payments.LedgerDao.update(LedgerDao.java:77)",
                     "\t... 5 more"]
            out.extend(trace)
            needles += [fatal, trace[1], trace[7]]
            out.append(f"{clock.tick(rng)} INFO  [main] Shutting down payments-service (reason=fatal error)")
        elif i in (int(lines * 0.4), int(lines * 0.41)):
            out.append(f"{ts} INFO  [api-gateway] req_id={asked} method=POST path=/api/v1/charges status=202 latency_ms={rng.randint(20, 90)} user=u{rng.randint(1000, 9999)}")
            needles.append(out[-1])
        elif r < 0.50:
            out.append(f"{ts} INFO  [api-gateway] req_id=req-{_hex(rng, 10)} method=GET path=/api/v1/orders/{rng.randint(10000, 99999)} status=200 latency_ms={rng.randint(3, 180)} user=u{rng.randint(1000, 9999)}")
        elif r < 0.68:
            out.append(f"{ts} DEBUG [cache] hit key=order:{rng.randint(10000, 99999)} ttl={rng.randint(5, 300)}s")
        elif r < 0.78:
            out.append(f"{ts} INFO  [consumer] committed offset={rng.randint(10**6, 10**7)} partition={rng.randint(0, 11)} topic=orders")
        elif r < 0.86:
            out.append(f"{ts} INFO  [db] pool stats active={rng.randint(1, 50)} idle={rng.randint(0, 20)} waiting=0")
        elif r < 0.93:
            out.append(f"{ts} INFO  [api-gateway] req_id=req-{_hex(rng, 10)} method=GET path=/healthz status=200 latency_ms={rng.randint(1, 3)} user=-")
        elif r < 0.985:
            out.append(f"{ts} INFO  [scheduler] job settle-batch-{rng.randint(100, 999)} finished in {rng.randint(100, 5000)}ms (processed={rng.randint(0, 400)})")
        elif r < 0.995:
            out.append(f"{ts} WARN  [db] slow query took {rng.randint(900, 4000)}ms: SELECT * FROM ledger WHERE order_id = $1")
        else:
            err = f"{ts} ERROR [payments] charge failed for order ORD-{rng.randint(10000, 99999)}: upstream timeout after 30000ms"
            out.append(err)
            needles.append(err)
    return Workload("incident log", "\n".join(out), "Bash",
                    {"command": "kubectl logs deploy/payments --since=2h"},
                    f"Payments went down this morning. What happened, and what about request {asked}?",
                    tuple(needles))


def code_search(seed: int = 2, hits: int = 100) -> Workload:
    rng = random.Random(seed)
    dirs = ["src/payments", "src/payments/providers", "src/orders", "src/common", "src/api/handlers",
            "tests/payments", "tests/orders", "scripts"]
    files = sorted({f"{rng.choice(dirs)}/{rng.choice(_WORDS)}_{rng.choice(_WORDS)}.py" for _ in range(30)})
    weights = [rng.randint(1, 12) for _ in files]
    templates = ["    retry_count = config.get(\"retry_count\", {n})",
                 "        for attempt in range(self.retry_count):",
                 "    def retry_{w}(self, {w}_id: str, attempts: int = {n}) -> bool:",
                 "        logger.warning(\"retry %s for {w} %s\", attempt, {w}_id)",
                 "from ..common.retry import RetryPolicy, retry_with_backoff",
                 "        policy = RetryPolicy(max_attempts={n}, backoff_ms={n}00)",
                 "    assert client.retry_count == {n}",
                 "            return retry_with_backoff(lambda: self._send({w}), policy)",
                 "# TODO(retry): drop the legacy retry path once {w} v2 ships"]
    rows: list[tuple[str, int, str]] = []
    for _ in range(hits - 1):
        path = rng.choices(files, weights)[0]
        text = rng.choice(templates).format(n=rng.randint(2, 9), w=rng.choice(_WORDS))
        rows.append((path, rng.randint(1, 600), text))
    needle_row = (files[len(files) // 2], 42, "    max_backoff_ms = int(os.environ.get(\"RETRY_MAX_BACKOFF_MS\", 30000))  # retry cap")
    rows.append(needle_row)
    rows.sort(key=lambda r: (r[0], r[1]))
    listed = tuple(sorted({r[0] for r in rows}))
    text = "\n".join(f"{p}:{n}:{t}" for p, n, t in rows)
    return Workload("code search (100 hits)", text, "Grep", {"pattern": "retry", "path": "src tests scripts"},
                    "Where do we cap the retry backoff (max_backoff_ms)?",
                    (f"{needle_row[0]}:{needle_row[1]}:{needle_row[2]}".split(":", 2)[2],), files=listed)


def _gh_user(rng: random.Random, login: str, uid: int) -> dict:
    base = f"https://api.github.com/users/{login}"
    return {"login": login, "id": uid, "node_id": f"MDQ6VXNlcj{_hex(rng, 8)}", "avatar_url": f"https://avatars.githubusercontent.com/u/{uid}?v=4",
            "gravatar_id": "", "url": base, "html_url": f"https://github.com/{login}", "followers_url": base + "/followers",
            "following_url": base + "/following{/other_user}", "gists_url": base + "/gists{/gist_id}",
            "starred_url": base + "/starred{/owner}{/repo}", "subscriptions_url": base + "/subscriptions",
            "organizations_url": base + "/orgs", "repos_url": base + "/repos", "events_url": base + "/events{/privacy}",
            "received_events_url": base + "/received_events", "type": "User", "user_view_type": "public", "site_admin": False}


def issue_json(seed: int = 3, n: int = 100) -> Workload:
    rng = random.Random(seed)
    repo = "https://api.github.com/repos/acme/gateway"
    logins = [f"{rng.choice(_WORDS)}-{rng.choice(_WORDS)}{rng.randint(1, 99)}" for _ in range(25)]
    label_pool = [{"id": 1000 + k, "node_id": f"LA_{_hex(rng, 10)}", "url": f"{repo}/labels/{name}", "name": name,
                   "color": _hex(rng, 6), "default": k == 0, "description": desc}
                  for k, (name, desc) in enumerate([("bug", "Something isn't working"), ("enhancement", "New feature"),
                                                    ("flaky", "Fails intermittently"), ("p1", "High priority"),
                                                    ("docs", "Documentation")])]
    items = []
    needle_number = 4711
    for k in range(n):
        number = 4800 - k * 3 if k != min(57, n // 2) else needle_number
        login = rng.choice(logins)
        closed = rng.random() < 0.35
        created = datetime(2025, 1, 1) + timedelta(hours=rng.randint(0, 1800))
        title = (f"Flaky websocket reconnect drops queued messages after {rng.randint(2, 9)}s" if number == needle_number
                 else f"{rng.choice(_WORDS).title()} {rng.choice(_WORDS)} {rng.choice(['fails', 'is slow', 'returns 500', 'leaks memory', 'needs docs', 'should retry'])} when {rng.choice(_WORDS)} {rng.choice(_WORDS)}")
        items.append({
            "url": f"{repo}/issues/{number}", "repository_url": repo, "labels_url": f"{repo}/issues/{number}/labels{{/name}}",
            "comments_url": f"{repo}/issues/{number}/comments", "events_url": f"{repo}/issues/{number}/events",
            "html_url": f"https://github.com/acme/gateway/issues/{number}", "id": 2_800_000_000 + rng.randint(0, 10**8),
            "node_id": f"I_kwDO{_hex(rng, 14)}", "number": number, "title": title,
            "user": _gh_user(rng, login, 10_000 + logins.index(login)),
            "labels": rng.sample(label_pool, rng.randint(0, 2)), "state": "closed" if closed else "open", "locked": False,
            "assignee": None, "assignees": [], "milestone": None, "comments": rng.randint(0, 14),
            "created_at": created.strftime("%Y-%m-%dT%H:%M:%SZ"), "updated_at": (created + timedelta(hours=rng.randint(1, 300))).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "closed_at": (created + timedelta(hours=rng.randint(1, 300))).strftime("%Y-%m-%dT%H:%M:%SZ") if closed else None,
            "author_association": rng.choice(["MEMBER", "CONTRIBUTOR", "NONE", "COLLABORATOR"]), "type": None,
            "active_lock_reason": None, "sub_issues_summary": {"total": 0, "completed": 0, "percent_completed": 0},
            "body": _sentence(rng, 30, 90) + ("\n\nSteps: reconnect the client while the queue holds 3 messages." if number == needle_number else ""),
            "closed_by": None,
            "reactions": {"url": f"{repo}/issues/{number}/reactions", "total_count": rng.randint(0, 5), "+1": rng.randint(0, 5),
                          "-1": 0, "laugh": 0, "hooray": 0, "confused": 0, "heart": 0, "rocket": 0, "eyes": 0},
            "timeline_url": f"{repo}/issues/{number}/timeline", "performed_via_github_app": None,
            "state_reason": "completed" if closed else None})
    text = json.dumps(items, separators=(",", ":"))
    return Workload("issue-tracker JSON", text, "mcp__github__list_issues", {"owner": "acme", "repo": "gateway", "state": "all"},
                    "Is there an issue about the websocket reconnect dropping messages? I think it was #4711.",
                    ('"number":4711', "Flaky websocket reconnect drops queued messages"))


def db_rows(seed: int = 4, n: int = 1000) -> Workload:
    rng = random.Random(seed)
    countries = ["US", "DE", "FR", "GB", "NL", "SE", "ES", "IT", "PL", "BR", "IN", "JP", "CA", "AU", "MX"]
    rows = []
    needles = []
    asked = f"cus_{_hex(rng, 14)}"
    for k in range(n):
        status = rng.choices(["paid", "pending", "refunded"], [90, 7, 3])[0]
        if k in (211, 640, 877):
            status = "failed"
        customer = asked if k == 503 else f"cus_{_hex(rng, 14)}"
        row = {"id": 90_000 + k, "customer_id": customer, "email": f"{rng.choice(_WORDS)}.{rng.randint(1, 999)}@example.com",
               "status": status, "plan": rng.choice(["starter", "team", "enterprise"]), "currency": "usd",
               "amount_cents": int(rng.lognormvariate(8, 0.6)), "country": rng.choice(countries),
               "created_at": (datetime(2025, 2, 1) + timedelta(minutes=k * 7)).strftime("%Y-%m-%d %H:%M:%S"),
               "failure_reason": "card_declined" if status == "failed" else None}
        rows.append(row)
        if status == "failed" or k == 503:
            needles.append(json.dumps(row, separators=(",", ":")).split(",", 1)[0] + ",")
    text = json.dumps(rows, separators=(",", ":"))
    return Workload("database rows", text, "postgres_query",
                    {"sql": "SELECT * FROM charges WHERE created_at > now() - interval '7 days' ORDER BY id"},
                    f"Show me this week's charges. Anything odd with customer {asked}?", tuple(needles))


def test_output(seed: int = 5, n: int = 800) -> Workload:
    rng = random.Random(seed)
    mods = [f"tests/test_{w}.py" for w in rng.sample(_WORDS, 12)]
    out = ["============================= test session starts ==============================",
           "platform linux -- Python 3.11.7, pytest-8.3.4, pluggy-1.5.0 -- /srv/app/.venv/bin/python",
           "cachedir: .pytest_cache", "rootdir: /srv/app", "configfile: pyproject.toml",
           "plugins: asyncio-0.24.0, cov-5.0.0", f"collected {n} items", ""]
    failing = {int(n * 0.12): "test_refund_partial_amount", int(n * 0.51): "test_ledger_reconcile_rounding",
               int(n * 0.91): "test_webhook_signature_rotation"}
    names = []
    for k in range(n):
        mod = mods[k * len(mods) // n]
        name = failing.get(k) or f"test_{rng.choice(_WORDS)}_{rng.choice(_WORDS)}_{k}"
        param = f"[{rng.choice(['sqlite', 'postgres'])}]" if rng.random() < 0.3 else ""
        status = "FAILED" if k in failing else rng.choices(["PASSED", "SKIPPED"], [97, 3])[0]
        out.append(f"{mod}::{name}{param} {status}{' ' * 8}[{(k + 1) * 100 // n:3d}%]")
        names.append((mod, name, param))
    out += ["", "=================================== FAILURES ==================================="]
    needles = []
    for k, name in failing.items():
        mod, _, param = names[k]
        out += [f"_________________________ {name}{param} _________________________", "",
                "    def " + name + "(client, ledger):", "        order = make_order(amount=1299)",
                f"        result = ledger.{name[5:]}(order)",
                ">       assert result.total == 1299",
                f"E       AssertionError: assert {1299 - rng.randint(1, 99)} == 1299",
                f"E        +  where {1200 + k % 99} = Result(total={1200 + k % 99}, currency='usd').total", "",
                f"{mod}:{rng.randint(20, 400)}: AssertionError"]
        needles.append(out[-4])
    out += ["=========================== short test summary info ============================"]
    for k, name in failing.items():
        mod, _, param = names[k]
        out.append(f"FAILED {mod}::{name}{param} - AssertionError: assert ...")
        needles.append(out[-1])
    out.append(f"============ 3 failed, {n - 3 - 20} passed, 20 skipped in 48.31s ============")
    return Workload("test-runner output", "\n".join(out), "Bash", {"command": "pytest -v"},
                    "Run the test suite and fix what fails.", tuple(needles))


def large_diff(seed: int = 6, files: int = 14) -> Workload:
    rng = random.Random(seed)
    out: list[str] = []
    needles: list[str] = []
    for f in range(files):
        path = f"src/{rng.choice(_WORDS)}/{rng.choice(_WORDS)}_{f}.py"
        out += [f"diff --git a/{path} b/{path}", f"index {_hex(rng, 7)}..{_hex(rng, 7)} 100644", f"--- a/{path}", f"+++ b/{path}"]
        line = 1
        for _ in range(rng.randint(2, 5)):
            line += rng.randint(10, 80)
            ctx = 10  # as from `git diff -U10`
            body = []
            for c in range(ctx):
                body.append(f"     {rng.choice(_WORDS)}_{c} = compute_{rng.choice(_WORDS)}({rng.choice(_WORDS)}, {rng.randint(1, 99)})")
            removed = [f"-    {rng.choice(_WORDS)} = legacy_{rng.choice(_WORDS)}({rng.randint(1, 9)})" for _ in range(rng.randint(1, 4))]
            added = [f"+    {rng.choice(_WORDS)} = modern_{rng.choice(_WORDS)}({rng.randint(1, 9)}, strict=True)" for _ in range(rng.randint(1, 5))]
            tail = [f"     return {rng.choice(_WORDS)}_{c}" for c in range(ctx)]
            out.append(f"@@ -{line},{ctx * 2 + len(removed)} +{line},{ctx * 2 + len(added)} @@ def {rng.choice(_WORDS)}_handler(request):")
            out += [" " + b[1:] for b in body] + removed + added + [" " + t[1:] for t in tail]
            needles += removed + added
    out += ["diff --git a/src/old_name.py b/src/new_name.py", "similarity index 92%", "rename from src/old_name.py",
            "rename to src/new_name.py", "index 1a2b3c4..5d6e7f8 100644", "--- a/src/old_name.py", "+++ b/src/new_name.py",
            "@@ -1,3 +1,3 @@", " import os", "-import sys", "+import sys, json", " "]
    out += ["diff --git a/assets/logo.png b/assets/logo.png", "index 3e4f5a6..7b8c9d0 100644",
            "Binary files a/assets/logo.png and b/assets/logo.png differ",
            "diff --git a/bin/deploy.sh b/bin/deploy.sh", "old mode 100644", "new mode 100755",
            "diff --git a/VERSION b/VERSION", "index 0a1b2c3..4d5e6f7 100644", "--- a/VERSION", "+++ b/VERSION",
            "@@ -1 +1 @@", "-2.14.2", "\\ No newline at end of file", "+2.14.3", "\\ No newline at end of file"]
    needles += ["rename from src/old_name.py", "rename to src/new_name.py", "Binary files a/assets/logo.png and b/assets/logo.png differ",
                "old mode 100644", "new mode 100755", "\\ No newline at end of file", "-2.14.2", "+2.14.3", "+import sys, json"]
    return Workload("large diff (-U10)", "\n".join(out) + "\n", "Bash", {"command": "git diff -U10 main...HEAD"},
                    "Review the changes on this branch.", tuple(dict.fromkeys(needles)))


def file_read(seed: int = 7, lines: int = 600) -> Workload:
    rng = random.Random(seed)
    out = ['"""Settlement of charges against the ledger."""', "", "from __future__ import annotations", "",
           "import logging", "from dataclasses import dataclass", "", "log = logging.getLogger(__name__)", ""]
    while len(out) < lines:
        name = f"{rng.choice(_WORDS)}_{rng.choice(_WORDS)}_{len(out)}"
        out += [f"def {name}(ledger, order, *, strict: bool = False) -> int:", f'    """Settle {name.split("_")[0]} orders."""']
        for _ in range(rng.randint(4, 14)):
            out.append(f"    {rng.choice(_WORDS)} = ledger.{rng.choice(_WORDS)}(order.{rng.choice(_WORDS)}, {rng.randint(0, 99)})")
        out += ["    return 0", ""]
    text = "\n".join(f"{i + 1:6d}\t{line}" for i, line in enumerate(out))
    return Workload("file read (protected)", text, "Read", {"file_path": "/srv/app/payments/settle.py"},
                    "Open settle.py.", (out[10],), protected=True, notes="exact-output tool: left alone by design")


ALL = (incident_log, code_search, issue_json, db_rows, test_output, large_diff, file_read)
