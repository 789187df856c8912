"""Each compressor on realistic tool outputs: what must survive inline, what the result is."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

import compression_samples as S
from headroom_core.compression import code, diff, json_array, logs, search, table, text
from headroom_core.compression.base import CompressContext
from headroom_core.compression.detect import detect_kind
from headroom_core.compression.dispatch import compress_text
from headroom_core.compression.markers import find_markers
from headroom_core.tokens import count_text

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import workloads as W  # noqa: E402

HASH = "0123456789abcdef"


def ctx(query: str = "", harder: bool = False) -> CompressContext:
    return CompressContext(hash=HASH, query=query, harder=harder)


CASES = [
    # (sample builder, expected kind, query, minimum saving)
    (S.kubectl_pods, "table", "", 0.7),
    (S.klog_with_panic, "log", "", 0.9),
    (S.nginx_access, "log", "", 0.9),
    (S.docker_build_failure, "log", "", 0.5),
    (S.pytest_quiet, "log", "", 0.5),
    (S.cargo_build_error, "log", "", 0.7),
    (S.npm_install, "log", "", 0.5),
    (S.github_workflow_runs, "json", "", 0.7),
    (S.ripgrep, "search", "where is gracefulShutdownTimeout set", 0.6),
    (lambda: S.ripgrep(heading=True), "search", "gracefulShutdownTimeout", 0.6),
    (S.git_diff_special, "diff", "", 0.3),
    (S.python_source, "code", "", 0.4),
    (S.typescript_source, "code", "", 0.4),
    (S.psql_rows, "table", "", 0.9),
    (S.csv_export, "table", "", 0.9),
    (S.markdown_table, "table", "", 0.7),
    (S.rg_json, "search", "", 0.7),
    (S.json_hits, "json", "where is max_backoff_ms", 0.6),
    (S.error_burst_log, "log", "", 0.95),
    (S.go_test, "log", "", 0.9),
    (S.jest, "log", "", 0.8),
    (S.unittest_run, "log", "", 0.8),
    (S.json_logs, "log", "", 0.95),
    (S.logfmt, "log", "", 0.95),
    (S.kubectl_pods_json, "json", "", 0.7),
]


@pytest.mark.parametrize("build,kind,query,saving", CASES, ids=lambda v: getattr(v, "__name__", None) if callable(v) else None)
def test_realistic_output_keeps_what_matters(build, kind, query, saving):
    original, must = build()
    assert detect_kind(original).name == kind
    r = compress_text(original, ctx(query))
    assert r is not None
    missing = [m for m in must if m not in r.text]
    assert not missing, f"lost inline: {missing[:3]}"
    assert HASH in find_markers(r.text), "an omission without a marker naming the hash"
    assert r.omitted.count > 0
    before, after = count_text(original), count_text(r.text)
    assert after <= before * (1 - saving), f"saved only {1 - after / before:.0%}"


@pytest.mark.parametrize("gen", [W.incident_log, W.code_search, W.issue_json, W.db_rows, W.test_output, W.large_diff])
def test_benchmark_workloads_keep_their_needles(gen):
    w = gen()
    r = compress_text(w.text, ctx(w.query + "\n" + json.dumps(w.tool_args)))
    assert r is not None
    assert [n for n in w.needles if n not in r.text] == []
    for path in w.files:
        assert path in r.text


def test_json_stays_json_with_markers_as_string_elements():
    original, _ = S.github_workflow_runs()
    r = json_array.compress(original, ctx())
    doc = json.loads(r.text)
    runs = doc["workflow_runs"]
    assert isinstance(runs[0], str) and runs[0].startswith("[headroom: ")
    assert doc["total_count"] == 60
    kept = [x for x in runs if isinstance(x, dict)]
    assert {x["conclusion"] for x in kept} >= {"failure", "success"}
    # constant fields are stated once in the summary and left out of the items
    assert "status" not in kept[0] and '"completed"' in runs[0]


def test_json_kept_items_are_byte_identical_to_the_original():
    items = []
    for i in range(60):
        error = '"boom"' if i == 7 else "null"
        items.append('{"id": %d, "v": %d.10, "name": "caf\\u00e9 %d", "unit": 1.50, "error": %s}' % (i, i, i, error))
    original = "[" + ", ".join(items) + "]"
    r = json_array.compress(original, ctx())
    # kept items as written (number literals, escapes, spacing), less the constant field
    assert items[0].replace(', "unit": 1.50', "") in r.text
    assert '"v": 7.10' in r.text and "unit=1.50" in r.text
    assert json.loads(r.text)[0].startswith("[headroom: ")
    assert any(isinstance(x, dict) and x.get("error") == "boom" for x in json.loads(r.text))


def test_json_duplicates_and_small_arrays():
    assert json_array.compress(json.dumps([{"a": 1}] * 5), ctx()) is None  # too few items
    r = json_array.compress(json.dumps([{"a": 1, "b": "x" * 40}] * 200), ctx())
    assert r is not None and "exact duplicates" in r.text
    json.loads(r.text)


def test_json_string_value_holding_a_log_is_compressed_in_place():
    log, _ = S.klog_with_panic()
    original = json.dumps({"exit_code": 2, "stdout": log, "stderr": ""})
    r = json_array.compress(original, ctx())
    doc = json.loads(r.text)
    assert doc["exit_code"] == 2 and "panic: runtime error" in doc["stdout"]
    assert HASH in find_markers(doc["stdout"])


def test_logs_keep_whole_python_traceback_and_first_last_lines():
    lines = [f"2025-03-14 09:00:{i % 60:02d},{i:03d} INFO worker: processed job {i} in {i % 97}ms" for i in range(600)]
    trace = ["2025-03-14 09:10:00,000 ERROR worker: job 601 crashed", "Traceback (most recent call last):",
             '  File "/app/worker.py", line 88, in run', "    result = handler(job)",
             '  File "/app/handlers.py", line 12, in handler', "    return 1 / job.weight",
             "ZeroDivisionError: division by zero"]
    original = "\n".join(lines[:300] + trace + lines[300:])
    r = logs.compress(original, ctx())
    for line in trace + [lines[0], lines[-1]]:
        assert line in r.text
    assert "omitted" in r.text and r.omitted.unit == "lines"


def test_logs_collapse_repeats_into_counted_markers():
    original = "\n".join(f"2025-03-14T09:00:{i % 60:02d}Z INFO GET /health 200 {i % 7}ms" for i in range(3000))
    r = logs.compress(original, ctx())
    assert r.omitted.count > 2900
    assert "2990× 'INFO GET /health * *ms'" in r.text or "× 'INFO GET /health" in r.text


def test_repeated_errors_are_collapsed_but_distinct_errors_all_kept():
    rows = []
    for i in range(2000):
        rows.append(f"2025-03-14T09:00:00Z INFO tick {i}")
        if i % 10 == 0:
            rows.append(f"2025-03-14T09:00:00Z ERROR db connection refused (attempt {i})")
    distinct = [f"2025-03-14T09:30:00Z ERROR unique failure kind {w}" for w in S.WORDS[:8]]
    original = "\n".join(rows[:1000] + distinct + rows[1000:])
    r = logs.compress(original, ctx())
    assert all(d in r.text for d in distinct)
    assert "ERROR" in r.text and r.text.count("connection refused") < 20
    assert "of them" in r.text  # omitted ERROR lines are counted in the markers


def test_search_lists_every_file_with_its_count():
    original, must = S.ripgrep()
    r = search.compress(original, ctx())
    files = must[1:]
    for f in files:
        assert f in r.text
    assert "matches in" in r.text.splitlines()[0]


def test_diff_never_drops_a_changed_line_and_reads_hunks_by_count():
    original, must = S.git_diff_special()
    r = diff.compress(original, ctx())
    for line in must:
        assert line in r.text
    assert "unchanged lines omitted" in r.text
    assert "--- not a header, a removed line" in r.text


def test_diff_without_long_context_is_left_alone():
    small = "diff --git a/x b/x\n--- a/x\n+++ b/x\n@@ -1,3 +1,3 @@\n a\n-b\n+c\n d\n"
    assert diff.compress(small, ctx()) is None


def test_code_keeps_signatures_in_order():
    original, must = S.python_source()
    r = code.compress(original, ctx(), "python")
    positions = [r.text.index(m) for m in must if m.startswith("    def ")]
    assert positions == sorted(positions)
    assert "body of" in r.text


def test_table_keeps_header_and_problem_rows():
    original, must = S.kubectl_pods()
    r = table.compress(original, ctx())
    assert r.text.splitlines()[0] == must[0]
    assert "Running" in r.text.splitlines()[1]  # the status counts, stated once


def test_text_collapses_repeats_only():
    para = ("The build cache was invalidated because the lockfile changed.\nRe-running all steps from the "
            "base image, which takes a few minutes on a cold runner.\nNo action is needed unless this repeats.")
    lines = ["progress 1%"] + [f"Downloading layer {i}/400 ({i * 3} MB)" for i in range(400)] + ["", para, "", "x", "", para, ""]
    original = "\n".join(lines)
    r = text.compress(original, ctx())
    assert "Downloading layer 0/400" in r.text and "Downloading layer 399/400" in r.text
    assert "repeat of the paragraph at line" in r.text
    assert r.text.count(para) == 1
    words = set(original.split())
    assert set(r.text.split()) - words <= set(" ".join(find_markers(r.text)).split()) | set(
        " ".join(line for line in r.text.splitlines() if line.startswith("[headroom: ")).split())


def test_harder_renders_shorter():
    w = W.incident_log(lines=1500)
    normal = compress_text(w.text, ctx(w.query))
    harder = compress_text(w.text, ctx(w.query, harder=True))
    assert len(harder.text) < len(normal.text)
    assert [n for n in w.needles if n not in harder.text] == []


def test_html_is_shown_as_text():
    page = ("<!doctype html><html><head><title>Release notes</title><style>body{color:red}</style>"
            "<script>var x = 1;</script></head><body>" + "".join(
                f"<div class='item'><a href='https://example.com/{i}'>Item {i}</a><p>Changed the retry policy for queue {i}.</p></div>"
                for i in range(40)) + "</body></html>")
    r = compress_text(page, ctx())
    assert r.kind == "html"
    assert "Release notes" in r.text and "Changed the retry policy for queue 39." in r.text
    assert "<div" not in r.text and "color:red" not in r.text and "var x" not in r.text


def test_json_hits_list_every_file_in_the_summary():
    original, must = S.json_hits()
    r = json_array.compress(original, ctx())
    summary = json.loads(r.text)[0]
    assert "every file with its count" in summary
    for path in must[:-1]:
        assert f"{path} (" in summary


def test_rows_as_arrays_keep_their_shape():
    doc = {"columns": ["id", "status", "amount"],
           "rows": [[i, "failed" if i == 444 else "ok", i % 97] for i in range(1000)]}
    r = json_array.compress(json.dumps(doc), ctx())
    out = json.loads(r.text)
    assert out["columns"] == doc["columns"] and [444, "failed", 444 % 97] in out["rows"]
    assert all(len(x) == 3 for x in out["rows"] if isinstance(x, list))


def test_objects_used_as_maps_of_records_are_cut_like_arrays():
    packages = {f"node_modules/pkg-{k}": {"version": f"1.{k}.0", "license": "GPL-3.0" if k == 77 else "MIT",
                                          "integrity": "sha512-" + "ab" * 40} for k in range(300)}
    original = json.dumps({"name": "app", "lockfileVersion": 3, "packages": packages}, indent=2)
    r = json_array.compress(original, ctx("which package is GPL licensed"))
    doc = json.loads(r.text)
    assert doc["name"] == "app" and doc["lockfileVersion"] == 3
    out = doc["packages"]
    assert out["_headroom"].startswith("[headroom: ") and "of 300 members omitted" in out["_headroom"]
    assert out["node_modules/pkg-77"]["license"] == "GPL-3.0"
    assert any(k.startswith("_headroom_omitted_") for k in out)
    assert r.text.count('"node_modules/pkg-0": {') == 1  # kept members as written (indentation included)


def test_code_keeps_the_body_the_request_asks_about():
    original, _ = S.python_source()
    name = next(line.split("def ")[1].split("(")[0] for line in original.splitlines() if "def " in line and "_7(" in line)
    r = code.compress(original, ctx(f"why does {name} return 0?"), "python")
    lines = original.splitlines()
    start = next(i for i, line in enumerate(lines) if f"def {name}(" in line)
    body = lines[start + 2:start + 6]
    assert all(line in r.text for line in body)
    assert f"body of {name}:" not in r.text
