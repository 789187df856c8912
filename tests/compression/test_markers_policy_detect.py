"""The marker format, the exact-output policy, and content detection."""

from __future__ import annotations

import json

import pytest

import compression_samples as S
from headroom_core.compression import severity
from headroom_core.compression.detect import detect_kind
from headroom_core.compression.markers import find_markers, has_marker, make_marker
from headroom_core.compression.policy import command_is_exact, tool_verdict

H = "3f9c0a1b2c3d4e5f"


def test_marker_is_one_line_naming_tool_and_hash():
    m = make_marker("88 of 100 items omitted — errors kept\nand more", H)
    assert m == ('[headroom: 88 of 100 items omitted — errors kept and more; '
                 'call headroom_retrieve(hash="3f9c0a1b2c3d4e5f") for the rest]')
    assert find_markers(f"a\n{m}\nb {m}") == [H]
    assert has_marker(m) and not has_marker("[headroom: nothing here]")


def test_markers_are_found_inside_json_strings():
    doc = json.dumps([make_marker("3 items omitted", H), {"a": 1}, make_marker("x", "a" * 64)])
    assert find_markers(doc) == [H, "a" * 64]


@pytest.mark.parametrize("bad", ["", "3F9C0A1B2C3D4E5F", "3f9c", "g" * 16])
def test_marker_rejects_bad_hashes(bad):
    with pytest.raises(ValueError):
        make_marker("x", bad)


@pytest.mark.parametrize("tool,args,compress", [
    ("Read", '{"file_path": "a.py"}', False),
    ("read_file", "{}", False),
    ("LS", "{}", False),
    ("Glob", '{"pattern": "**/*.py"}', False),
    ("Bash", '{"command": "cat foo.py"}', False),
    ("Bash", '{"command": "cd src && git status"}', False),
    ("Bash", '{"command": "sed -n 10,80p app.py"}', False),
    ("Bash", '{"command": "git show HEAD:app.py"}', False),
    ("Bash", '{"command": "head -100 big.log | tail -20"}', False),
    ("shell", '{"command": ["bash", "-lc", "ls -la"]}', False),
    ("Bash", '{"command": "grep -rn retry src | head -50"}', True),
    ("Bash", '{"command": "pytest -q"}', True),
    ("Bash", '{"command": "kubectl logs deploy/api"}', True),
    ("Bash", '{"command": "git diff main"}', True),
    ("Grep", '{"pattern": "retry"}', True),
    ("WebFetch", '{"url": "https://example.com"}', True),
    ("mcp__github__list_issues", '{"state": "open"}', True),
    (None, "", True),
    ("headroom_retrieve", '{"hash": "x"}', False),
])
def test_exact_output_tools_are_protected(tool, args, compress):
    assert tool_verdict(tool, args).compress is compress


def test_protect_and_compress_overrides():
    assert not tool_verdict("kubectl_logs", "{}", protect_tools=["kubectl_logs"]).compress
    assert tool_verdict("Read", "{}", compress_tools=["Read"]).compress
    assert tool_verdict("Bash", '{"command": "cat app.log"}', compress_tools=["cat"]).compress
    assert not tool_verdict("Bash", '{"command": "mytool --dump"}', protect_tools=["mytool"]).compress
    assert not tool_verdict("headroom_retrieve", "{}", compress_tools=["headroom_retrieve"]).compress


def test_command_parsing_handles_env_wrappers_and_bad_quotes():
    assert command_is_exact("FOO=1 sudo cat /etc/hosts")
    assert command_is_exact("cat 'unterminated")
    assert not command_is_exact("")
    assert not command_is_exact("npm test; cat out.txt")


@pytest.mark.parametrize("build,kind", [
    (S.kubectl_pods, "table"), (S.klog_with_panic, "log"), (S.nginx_access, "log"),
    (S.docker_build_failure, "log"), (S.pytest_quiet, "log"), (S.cargo_build_error, "log"),
    (S.npm_install, "log"), (S.github_workflow_runs, "json"), (S.ripgrep, "search"),
    (S.git_diff_special, "diff"), (S.python_source, "code"), (S.typescript_source, "code"),
])
def test_detect_kind_of_realistic_outputs(build, kind):
    assert detect_kind(build()[0]).name == kind


@pytest.mark.parametrize("text,kind,language", [
    ('{"a": [1, 2, 3]}', "json", None),
    ("[1, 2", "text", None),
    ('{"level":"info","msg":"a"}\n{"level":"error","msg":"b"}\n' * 5, "log", None),
    ("<!DOCTYPE html><html><body><p>x</p></body></html>", "html", None),
    ("Just a few sentences of prose.\nNothing structured here at all.", "text", None),
    ("", "text", None),
    (S.python_source()[0], "code", "python"),
    (S.typescript_source()[0], "code", "typescript"),
])
def test_detect_kind_small_cases(text, kind, language):
    k = detect_kind(text)
    assert (k.name, k.language if kind == "code" else None) == (kind, language)


@pytest.mark.parametrize("line,level", [
    ("2025-03-14 ERROR db down", severity.ERROR),
    ("2025-03-14 INFO completed with 0 errors", severity.NORMAL),
    ("INFO retry budget errors=0 failed=0", severity.NORMAL),
    ("E0314 09:00:00.1 1 x.go:1] boom", severity.ERROR),
    ("F0314 09:00:00.1 1 x.go:1] boom", severity.FATAL),
    ("npm ERR! code ERESOLVE", severity.ERROR),
    ("npm WARN deprecated x@1.0.0", severity.WARN),
    ("java.lang.IllegalStateException: boom", severity.ERROR),
    ("thread 'main' panicked at src/main.rs:2:5", severity.FATAL),
    ("level=info msg=\"handled\" path=/healthz", severity.NORMAL),
    ("just a line", severity.NORMAL),
])
def test_severity_of_lines(line, level):
    assert severity.severity(line) == level


def test_every_hint_word_passes_the_prefilter():
    for hint in severity._HINTS:
        assert severity._hint_in(hint)
