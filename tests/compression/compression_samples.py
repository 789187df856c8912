"""Realistic tool outputs for the compressor tests, written the way the tools print them.

Each builder returns (text, must_survive): the lines (or substrings) a rendering has to keep
inline. Builders are deterministic (seeded) so failures reproduce.
"""

from __future__ import annotations

import json
import random

WORDS = ("order payment invoice customer session cache token user account report shipment refund "
         "ledger queue worker batch export import schedule metric alert webhook build deploy").split()


def _hex(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789abcdef") for _ in range(n))


def kubectl_pods(n: int = 300) -> tuple[str, list[str]]:
    rng = random.Random(11)
    rows = ["NAME                                READY   STATUS             RESTARTS       AGE"]
    bad = {40: ("0/1", "CrashLoopBackOff", "17 (2m ago)"), 120: ("0/1", "Pending", "0"),
           200: ("0/1", "Error", "3 (10m ago)"), 260: ("1/2", "ImagePullBackOff", "0")}
    survive = [rows[0]]
    for i in range(n):
        name = f"{rng.choice(WORDS)}-{_hex(rng, 9)}-{_hex(rng, 5)}"
        ready, status, restarts = bad.get(i, ("1/1", "Running", "0"))
        row = f"{name:<36}{ready:<8}{status:<19}{restarts:<15}{rng.randint(1, 30)}d"
        rows.append(row)
        if i in bad:
            survive.append(row)
    return "\n".join(rows), survive


def klog_with_panic(n: int = 1500) -> tuple[str, list[str]]:
    rng = random.Random(12)
    out = []
    survive = []
    for i in range(n):
        ts = f"0314 09:{i // 60 % 60:02d}:{i % 60:02d}.{rng.randint(0, 999999):06d}"
        if i == 700:
            line = f"E{ts}       1 reconciler.go:88] failed to sync deployment default/api: context deadline exceeded"
            survive.append(line)
        elif i % 3 == 0:
            line = f"I{ts}       1 controller.go:{rng.randint(100, 300)}] Syncing deployment default/{rng.choice(WORDS)}-{_hex(rng, 6)}"
        else:
            line = f"I{ts}       1 cache.go:54] cache hit for key default/{rng.choice(WORDS)} in {rng.randint(1, 900)}µs"
        out.append(line)
    panic = ["panic: runtime error: invalid memory address or nil pointer dereference",
             "[signal SIGSEGV: segmentation violation code=0x1 addr=0x0 pc=0x4a3b2c]", "",
             "goroutine 1 [running]:",
             "main.(*Reconciler).sync(0x0, {0xc0001a2b3c, 0x4})",
             "\t/app/reconciler.go:88 +0x1d",
             "main.main()",
             "\t/app/main.go:42 +0x65"]
    out += panic
    survive += [panic[0], panic[3], panic[4], panic[5], panic[7]]
    return "\n".join(out), survive


def nginx_access(n: int = 2000) -> tuple[str, list[str]]:
    rng = random.Random(13)
    out = []
    survive = []
    for i in range(n):
        status = 502 if i in (333, 1444) else rng.choice([200, 200, 200, 304])
        line = (f'172.18.0.{rng.randint(2, 250)} - - [14/Mar/2025:09:{i // 60 % 60:02d}:{i % 60:02d} +0000] '
                f'"GET /api/v1/{rng.choice(WORDS)}s/{rng.randint(1, 9999)} HTTP/1.1" {status} {rng.randint(100, 9000)} "-" "Mozilla/5.0"')
        out.append(line)
        if status == 502:
            survive.append(line)
    return "\n".join(out), survive


def docker_build_failure() -> tuple[str, list[str]]:
    rng = random.Random(14)
    out = ['#0 building with "default" instance using docker driver', "",
           "#1 [internal] load build definition from Dockerfile", "#1 transferring dockerfile: 1.23kB done", "#1 DONE 0.0s",
           "#2 [internal] load metadata for docker.io/library/node:20-alpine", "#2 DONE 1.2s",
           "#5 [3/7] COPY package.json package-lock.json ./", "#5 DONE 0.1s", "#6 [4/7] RUN npm ci"]
    t = 0.5
    for _ in range(220):
        t += rng.random()
        pkg = f"{rng.choice(WORDS)}-{rng.choice(WORDS)}@{rng.randint(1, 9)}.{rng.randint(0, 20)}.{rng.randint(0, 9)}"
        out.append(f"#6 {t:.3f} npm WARN deprecated {pkg}: This package is no longer supported.")
    err = ["#6 48.213 npm ERR! code ERESOLVE", "#6 48.214 npm ERR! ERESOLVE unable to resolve dependency tree",
           "#6 48.214 npm ERR! Found: react@18.2.0", "#6 48.215 npm ERR! Could not resolve dependency:",
           '#6 48.215 npm ERR! peer react@"^17.0.0" from legacy-widget@2.3.1', "#6 ERROR: process \"/bin/sh -c npm ci\" did not complete successfully: exit code: 1",
           "------", " > [4/7] RUN npm ci:", "------",
           'ERROR: failed to solve: process "/bin/sh -c npm ci" did not complete successfully: exit code: 1']
    out += err
    return "\n".join(out), [err[0], err[1], err[4], err[5], err[-1]]


def pytest_quiet() -> tuple[str, list[str]]:
    rng = random.Random(15)
    out = ["============================= test session starts ==============================",
           "platform linux -- Python 3.12.3, pytest-8.2.0, pluggy-1.5.0", "rootdir: /repo", "collected 2400 items", ""]
    for k in range(40):
        dots = "".join(rng.choice("....................s") for _ in range(60))
        if k == 17:
            dots = dots[:30] + "F" + dots[31:]
        out.append(f"tests/unit/test_{WORDS[k % len(WORDS)]}_{k}.py {dots} [{(k + 1) * 100 // 40:3d}%]")
    fail = ["=================================== FAILURES ===================================",
            "_________________________________ test_parse_date _________________________________", "",
            "    def test_parse_date():", ">       assert parse_date('2025-02-30') is None",
            "E       ValueError: day is out of range for month", "", "src/dates.py:41: ValueError",
            "=========================== short test summary info ============================",
            "FAILED tests/unit/test_schedule_17.py::test_parse_date - ValueError: day is out of range for month",
            "================= 1 failed, 2350 passed, 49 skipped in 31.02s =================="]
    out += fail
    return "\n".join(out), [fail[4], fail[5], fail[7], fail[9], fail[10]]


def cargo_build_error() -> tuple[str, list[str]]:
    rng = random.Random(16)
    out = ["    Updating crates.io index"]
    for _ in range(160):
        out.append(f"   Compiling {rng.choice(WORDS)}-{rng.choice(WORDS)} v{rng.randint(0, 3)}.{rng.randint(0, 30)}.{rng.randint(0, 9)}")
    warn = ["warning: unused variable: `retries`", "  --> src/client.rs:88:13", "   |",
            "88 |         let retries = 3;", "   |             ^^^^^^^ help: if this is intentional, prefix it with an underscore: `_retries`", ""]
    err = ["error[E0308]: mismatched types", "  --> src/ledger.rs:42:5", "   |",
           "40 | fn total(&self) -> u64 {", "   |                    --- expected `u64` because of return type",
           "41 |     let sum: i64 = self.entries.iter().sum();", "42 |     sum", "   |     ^^^ expected `u64`, found `i64`", "",
           "error: could not compile `ledger` (lib) due to 1 previous error; 1 warning emitted"]
    out += warn + err
    return "\n".join(out), [warn[0], err[0], err[1], err[6], err[7], err[-1]]


def npm_install() -> tuple[str, list[str]]:
    rng = random.Random(17)
    out = []
    for _ in range(180):
        out.append(f"npm WARN deprecated {rng.choice(WORDS)}@{rng.randint(1, 5)}.{rng.randint(0, 9)}.{rng.randint(0, 9)}: Use {rng.choice(WORDS)} instead")
    tail = ["", "added 1342 packages, and audited 1343 packages in 41s", "", "212 packages are looking for funding",
            "  run `npm fund` for details", "", "7 vulnerabilities (2 low, 3 moderate, 2 high)", "",
            "To address all issues, run:", "  npm audit fix"]
    out += tail
    return "\n".join(out), [tail[1], tail[6]]


def github_workflow_runs(n: int = 60) -> tuple[str, list[str]]:
    rng = random.Random(18)
    runs = []
    survive = []
    for k in range(n):
        conclusion = "failure" if k in (7, 41) else "success"
        run = {"id": 9_000_000_000 + k * 17, "name": "CI", "node_id": f"WFR_{_hex(rng, 16)}", "head_branch": rng.choice(["main", "dev", f"feat/{rng.choice(WORDS)}"]),
               "head_sha": _hex(rng, 40), "path": ".github/workflows/ci.yml", "display_title": f"{rng.choice(WORDS).title()} {rng.choice(WORDS)}",
               "run_number": 4000 + k, "event": "push", "status": "completed", "conclusion": conclusion, "workflow_id": 5550001,
               "url": f"https://api.github.com/repos/acme/app/actions/runs/{9_000_000_000 + k * 17}",
               "created_at": f"2025-03-{1 + k % 28:02d}T10:{k % 60:02d}:00Z", "run_attempt": 1,
               "actor": {"login": rng.choice(WORDS), "id": rng.randint(1000, 9999), "type": "User", "site_admin": False}}
        runs.append(run)
        if conclusion == "failure":
            survive.append(f'"id":{run["id"]}')
    return json.dumps({"total_count": n, "workflow_runs": runs}, separators=(",", ":")), survive


def ripgrep(n_files: int = 40, heading: bool = False) -> tuple[str, list[str]]:
    rng = random.Random(19)
    files = sorted({f"src/{rng.choice(WORDS)}/{rng.choice(WORDS)}_{k}.ts" for k in range(n_files)})
    out = []
    for f in files:
        hits = sorted(rng.sample(range(1, 500), rng.randint(1, 8)))
        if heading:
            out.append(f)
        for h in hits:
            text = f"  const {rng.choice(WORDS)}Timeout = config.timeoutMs ?? {rng.randint(1, 9)}000;"
            if f == files[5] and h == hits[0]:
                text = "  const gracefulShutdownTimeout = config.timeoutMs ?? 30000; // drain window"
            out.append(f"{h}:{text}" if heading else f"{f}:{h}:{text}")
        if heading:
            out.append("")
    return "\n".join(out), ["gracefulShutdownTimeout = config.timeoutMs ?? 30000"] + files


def git_diff_special() -> tuple[str, list[str]]:
    rng = random.Random(20)
    out = []
    changed = []
    for f in range(4):
        path = f"src/{WORDS[f]}.py"
        out += [f"diff --git a/{path} b/{path}", f"index {_hex(rng, 7)}..{_hex(rng, 7)} 100644", f"--- a/{path}", f"+++ b/{path}"]
        ctx = [f"     {WORDS[(f + c) % len(WORDS)]}_{c} = helper({c})" for c in range(20)]
        minus = [f"-    value = old_{WORDS[f]}()", "--- not a header, a removed line"]
        plus = [f"+    value = new_{WORDS[f]}(strict=True)"]
        out.append(f"@@ -10,{40 + len(minus)} +10,{40 + len(plus)} @@ def {WORDS[f]}():")
        out += [" " + c[1:] for c in ctx] + minus + plus + [" " + c[1:] for c in ctx]
        changed += minus + plus
    special = ["diff --git a/src/old_name.py b/src/new_name.py", "similarity index 92%", "rename from src/old_name.py",
               "rename to src/new_name.py", "diff --git a/assets/logo.png b/assets/logo.png", "index 3e4f5a6..7b8c9d0 100644",
               "Binary files a/assets/logo.png and b/assets/logo.png differ", "diff --git a/bin/run.sh b/bin/run.sh",
               "old mode 100644", "new mode 100755", "diff --git a/VERSION b/VERSION", "index 0a1b2c3..4d5e6f7 100644",
               "--- a/VERSION", "+++ b/VERSION", "@@ -1 +1 @@", "-1.4.2", "\\ No newline at end of file", "+1.4.3",
               "\\ No newline at end of file"]
    out += special
    return "\n".join(out) + "\n", changed + special


def python_source(n_funcs: int = 30) -> tuple[str, list[str]]:
    rng = random.Random(21)
    out = ['"""Ledger reconciliation jobs."""', "", "from __future__ import annotations", "", "import logging",
           "from dataclasses import dataclass", "", "MAX_BATCH = 500", "log = logging.getLogger(__name__)", "", "",
           "@dataclass(frozen=True)", "class Entry:", "    account: str", "    cents: int", "", ""]
    survive = ["from dataclasses import dataclass", "import logging", "MAX_BATCH = 500", "class Entry:", "class Reconciler:"]
    out += ["class Reconciler:", '    """Match ledger entries to bank lines."""', ""]
    for k in range(n_funcs):
        name = f"{rng.choice(WORDS)}_{rng.choice(WORDS)}_{k}"
        sig = f"    def {name}(self, entries: list[Entry], *, strict: bool = False) -> int:"
        doc = f'        """Reconcile {name.split("_")[0]} entries; return how many matched."""'
        out += [sig, doc]
        for _ in range(rng.randint(8, 20)):
            out.append(f"        {rng.choice(WORDS)} = self.{rng.choice(WORDS)}(entries, {rng.randint(0, 99)})")
        out += ["        return 0", ""]
        survive += [sig, doc]
    out += ["", "def main() -> None:", "    Reconciler().run()", "", 'if __name__ == "__main__":', "    main()"]
    survive += ['if __name__ == "__main__":']
    return "\n".join(out), survive


def typescript_source(n_funcs: int = 25) -> tuple[str, list[str]]:
    rng = random.Random(22)
    out = ['import { Router } from "express";', 'import type { Order, Payment } from "../types";', "",
           "export interface RetryPolicy {", "  maxAttempts: number;", "  backoffMs: number;", "}", "",
           "const DEFAULT_POLICY: RetryPolicy = { maxAttempts: 3, backoffMs: 200 };", "",
           "export class PaymentService {", "  constructor(private readonly router: Router) {}", ""]
    survive = ['import { Router } from "express";', "export interface RetryPolicy {", "  maxAttempts: number;",
               "const DEFAULT_POLICY: RetryPolicy = { maxAttempts: 3, backoffMs: 200 };", "export class PaymentService {"]
    for k in range(n_funcs):
        name = f"{rng.choice(WORDS)}{rng.choice(WORDS).title()}{k}"
        sig = f"  async {name}(order: Order, policy: RetryPolicy = DEFAULT_POLICY): Promise<Payment> {{"
        out += [f"  /** Settle {name}. */", sig]
        for _ in range(rng.randint(8, 18)):
            out.append(f"    const {rng.choice(WORDS)} = await this.{rng.choice(WORDS)}(order, {rng.randint(0, 99)});")
        out += ["    return payment;", "  }", ""]
        survive.append(sig)
    out += ["}", "", "export function createService(router: Router): PaymentService {", "  return new PaymentService(router);", "}"]
    survive.append("export function createService(router: Router): PaymentService {")
    return "\n".join(out), survive


def psql_rows(n: int = 600) -> tuple[str, list[str]]:
    rng = random.Random(23)
    out = ["  id   |      customer_id       |   status   | amount_cents | currency |     created_at",
           "-------+------------------------+------------+--------------+----------+---------------------"]
    survive = list(out)
    for k in range(n):
        status = "failed" if k in (77, 401) else rng.choice(["paid"] * 12 + ["pending", "refunded"])
        row = f" {50000 + k:5d} | cus_{_hex(rng, 18)} | {status:<10} | {rng.randint(500, 90000):12d} | usd      | 2025-03-{1 + k % 28:02d} 10:{k % 60:02d}:00"
        out.append(row)
        if status == "failed":
            survive.append(row)
    out.append(f"({n} rows)")
    survive.append(out[-1])
    return "\n".join(out), survive


def csv_export(n: int = 800) -> tuple[str, list[str]]:
    rng = random.Random(24)
    out = ["order_id,sku,quantity,unit_price,state,warehouse"]
    survive = [out[0]]
    for k in range(n):
        state = "rejected" if k == 555 else rng.choice(["shipped", "shipped", "shipped", "packed"])
        row = f"ORD-{100000 + k},SKU-{rng.randint(100, 999)},{rng.randint(1, 5)},{rng.randint(100, 9999) / 100:.2f},{state},{rng.choice(['AMS', 'FRA', 'DUB'])}"
        out.append(row)
        if state == "rejected":
            survive.append(row)
    return "\n".join(out), survive


def markdown_table(n: int = 150) -> tuple[str, list[str]]:
    rng = random.Random(25)
    out = ["| service | version | health | p99 ms |", "|---|---|---|---|"]
    survive = list(out)
    for k in range(n):
        health = "degraded" if k == 90 else "ok"
        row = f"| {rng.choice(WORDS)}-{k} | 2.{rng.randint(0, 30)}.{rng.randint(0, 9)} | {health} | {rng.randint(20, 300)} |"
        out.append(row)
        if health == "degraded":
            survive.append(row)
    return "\n".join(out), survive


def rg_json(n_files: int = 40) -> tuple[str, list[str]]:
    rng = random.Random(26)
    files = sorted({f"src/{rng.choice(WORDS)}/mod_{k}.rs" for k in range(n_files)})
    out = []
    for f in files:
        out.append(json.dumps({"type": "begin", "data": {"path": {"text": f}}}, separators=(",", ":")))
        for _ in range(rng.randint(1, 6)):
            n = rng.randint(1, 900)
            out.append(json.dumps({"type": "match", "data": {
                "path": {"text": f}, "lines": {"text": f"    let retry = Backoff::new({n});\n"}, "line_number": n,
                "absolute_offset": n * 40, "submatches": [{"match": {"text": "retry"}, "start": 8, "end": 13}]}},
                separators=(",", ":")))
        out.append(json.dumps({"type": "end", "data": {"path": {"text": f}, "binary_offset": None,
                                                       "stats": {"matches": 3, "searches": 1}}}, separators=(",", ":")))
    return "\n".join(out), files


def json_hits(n: int = 150) -> tuple[str, list[str]]:
    rng = random.Random(27)
    files = [f"lib/{w}/{x}.ex" for w in WORDS[:6] for x in ("server", "client", "codec")]
    hits = [{"path": rng.choice(files), "line": rng.randint(1, 700), "preview": f"  def handle_retry({rng.choice(WORDS)}, opts) do"}
            for _ in range(n)]
    hits[99]["preview"] = "  @max_backoff_ms 30_000  # cap for every retry"
    return json.dumps(hits, separators=(",", ":")), sorted({h["path"] for h in hits}) + ["@max_backoff_ms 30_000"]


def error_burst_log(n: int = 3000) -> tuple[str, list[str]]:
    """Thousands of lines, a burst of one error naming a different user each time, one FATAL."""
    rng = random.Random(28)
    users = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy"]
    out = []
    survive = []
    for i in range(n):
        ts = f"2025-03-14 09:{i // 60 % 60:02d}:{i % 60:02d},{i % 1000:03d}"
        if 1800 <= i < 2100 and i % 3 == 0:
            out.append(f"{ts} ERROR auth - token refresh failed for user {rng.choice(users)}: upstream returned 503")
        elif i == 2500:
            out.append(f"{ts} CRITICAL db - replica lag exceeded 300s, failing over to standby")
            survive.append(out[-1])
        else:
            out.append(f"{ts} INFO web - GET /api/{rng.choice(WORDS)}s/{rng.randint(1, 9999)} 200 in {rng.randint(1, 90)}ms")
    first_error = next(line for line in out if " ERROR " in line)
    return "\n".join(out), survive + [first_error, out[0], out[-1]]


def go_test(n: int = 1500) -> tuple[str, list[str]]:
    out = []
    for k in range(n):
        t = f"Test{WORDS[k % len(WORDS)].title()}{k}"
        out.append(f"=== RUN   {t}")
        if k == n // 2:
            out += ["    ledger_test.go:88: expected 200, got 500", f"--- FAIL: {t} (0.01s)"]
            must = out[-2:]
        else:
            out.append(f"--- PASS: {t} (0.00s)")
    out += ["FAIL", "FAIL\tgithub.com/acme/app/payments\t2.314s", "ok  \tgithub.com/acme/app/orders\t0.812s"]
    return "\n".join(out), must + out[-2:]


def jest(n: int = 600) -> tuple[str, list[str]]:
    rng = random.Random(29)
    out = [" PASS  src/utils/format.test.ts", " FAIL  src/api/client.test.ts"]
    out += [f"    ✓ formats {WORDS[k % len(WORDS)]} value {k} ({rng.randint(1, 9)} ms)" for k in range(n)]
    fail = ["    ✕ retries on 503 (12 ms)", "", "  ● client › retries on 503", "",
            "    expect(received).toBe(expected) // Object.is equality", "", "    Expected: 3", "    Received: 1", "",
            "      41 |     await client.get('/x');", "    > 42 |     expect(calls).toBe(3);", "         |                   ^", "",
            "      at Object.<anonymous> (src/api/client.test.ts:42:19)", "",
            "Test Suites: 1 failed, 23 passed, 24 total", f"Tests:       1 failed, {n} passed, {n + 1} total", "Time:        8.123 s"]
    out += fail
    return "\n".join(out), [fail[0], fail[2], fail[7], fail[13], fail[16]]


def unittest_run(n: int = 800) -> tuple[str, list[str]]:
    out = [f"test_{WORDS[k % len(WORDS)]}_{k} (tests.test_{WORDS[k % 7]}.{WORDS[k % 5].title()}Tests.test_{WORDS[k % len(WORDS)]}_{k}) ... ok"
           for k in range(n)]
    out[n // 2] = "test_refund_444 (tests.test_refund.RefundTests.test_refund_444) ... FAIL"
    tail = ["", "=" * 70, "FAIL: test_refund_444 (tests.test_refund.RefundTests.test_refund_444)", "-" * 70,
            "Traceback (most recent call last):", '  File "/app/tests/test_refund.py", line 31, in test_refund_444',
            "    self.assertEqual(refund.total, 1299)", "AssertionError: 1200 != 1299", "", "-" * 70,
            f"Ran {n} tests in 3.211s", "", "FAILED (failures=1)"]
    out += tail
    return "\n".join(out), [out[n // 2], tail[2], tail[5], tail[7], tail[-1]]


def json_logs(n: int = 3000) -> tuple[str, list[str]]:
    rng = random.Random(30)
    out = []
    for k in range(n):
        rec = {"ts": f"2025-03-14T09:{k // 60 % 60:02d}:{k % 60:02d}.{k % 1000:03d}Z", "level": "info", "msg": "request completed",
               "route": f"/api/{WORDS[k % len(WORDS)]}", "status": 200, "duration_ms": rng.randint(1, 200),
               "trace_id": "%032x" % rng.getrandbits(128)}
        if k == n * 3 // 4:
            rec = {"ts": "2025-03-14T09:37:02.222Z", "level": "fatal", "msg": "unhandled rejection",
                   "err": {"type": "TypeError", "message": "Cannot read properties of undefined (reading 'id')",
                           "stack": "TypeError: Cannot read properties of undefined (reading 'id')\n    at settle (/app/dist/ledger.js:212:19)"}}
        out.append(json.dumps(rec, separators=(",", ":")))
    return "\n".join(out), [out[n * 3 // 4], out[0], out[-1]]


def logfmt(n: int = 3000) -> tuple[str, list[str]]:
    rng = random.Random(31)
    out = [f'ts=2025-03-14T09:{k // 60 % 60:02d}:{k % 60:02d}Z level=info msg="handled request" method=GET '
           f'path=/api/{WORDS[k % len(WORDS)]} status=200 dur={rng.randint(1, 90)}ms' for k in range(n)]
    out[100] = 'ts=2025-03-14T09:01:40Z level=error msg="db query failed" err="pq: deadlock detected" query=UpdateLedger'
    out[2000] = 'ts=2025-03-14T09:33:20Z level=info msg="handled request" method=POST path=/api/charges status=502 dur=30001ms'
    return "\n".join(out), [out[100], out[2000]]


def kubectl_pods_json(n: int = 80) -> tuple[str, list[str]]:
    rng = random.Random(32)
    items = []
    for k in range(n):
        bad = k == n // 3
        items.append({"apiVersion": "v1", "kind": "Pod",
                      "metadata": {"name": f"api-{k:04x}", "namespace": "prod", "labels": {"app": "api"}, "uid": "%032x" % rng.getrandbits(128)},
                      "spec": {"containers": [{"name": "api", "image": "acme/api:2.1"}], "nodeName": f"node-{k % 5}"},
                      "status": {"phase": "Failed" if bad else "Running", "containerStatuses": [{
                          "name": "api", "ready": not bad, "restartCount": 7 if bad else 0,
                          "state": {"terminated": {"reason": "OOMKilled", "exitCode": 137}} if bad else {"running": {"startedAt": "2025-03-14T08:00:00Z"}}}]}})
    return json.dumps({"apiVersion": "v1", "items": items, "kind": "List"}, separators=(",", ":")), [f'"name":"api-{n // 3:04x}"', "OOMKilled"]
