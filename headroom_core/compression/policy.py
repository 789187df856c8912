"""Which outputs may be compressed: tool results above a size floor, and oversized pasted user
text; never system prompts, tool definitions or assistant text (the engine never offers those).

Exact-output tools are protected by default — file reads, directory listings, `git status` and
the like — recognised by the tool's name and, for shell tools, by the command it ran (every
stage of a pipeline must be an exact-output command). `protect_tools` adds names (tool names
or command names); `compress_tools` lifts protection from a name. Outputs of
`headroom_retrieve` are never compressed again.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass
from typing import Iterable

from .markers import RETRIEVE_TOOL

# Tool names whose output is a file's or a listing's exact text (lower-case, `-`/` ` as `_`).
EXACT_TOOLS = frozenset({
    "read", "read_file", "readfile", "read_files", "read_many_files", "view", "view_file",
    "open_file", "get_file", "get_file_contents", "file_read", "cat", "notebookread", "ls",
    "list_dir", "list_directory", "listdir", "list_files", "glob", "find_files", "tree",
    "git_status", "str_replace_editor", "str_replace_based_edit_tool", "text_editor",
    "get_file_content", "read_text_file", "directory_tree",
})
# Programs whose output is exact: file contents, listings, repository state.
EXACT_COMMANDS = frozenset({
    "cat", "head", "tail", "less", "more", "nl", "bat", "batcat", "tac", "ls", "ll", "dir", "tree",
    "pwd", "stat", "file", "wc", "readlink", "realpath", "basename", "dirname", "find", "fd",
    "du", "df", "type", "which", "whoami", "env", "printenv", "echo", "printf", "xxd", "hexdump",
    "od", "base64", "sha256sum", "md5sum", "jq", "yq", "get-content", "gc",
})
EXACT_GIT = frozenset({"status", "ls-files", "ls-tree", "cat-file", "rev-parse", "branch", "remote",
                       "config", "show-ref", "stash"})
SHELL_TOOLS = frozenset({"bash", "shell", "sh", "zsh", "terminal", "exec", "run", "run_command",
                         "execute_command", "run_terminal_cmd", "run_shell_command", "local_shell",
                         "container.exec", "cmd", "powershell", "command"})
_WRAPPERS = frozenset({"sudo", "time", "env", "nice", "nohup", "timeout", "command", "builtin", "exec"})
_SEP_RE = re.compile(r"\|\||&&|[|;&\n]")


@dataclass(frozen=True)
class Verdict:
    compress: bool
    reason: str  # why not ("protected tool Read", "below 500 tokens", ...) or "ok"


def _norm(name: str) -> str:
    return name.strip().lower().replace("-", "_").replace(" ", "_")


def _command_of(tool_args: str, shell: bool) -> str | None:
    """The shell command a call ran, from arguments like {"command": "..."} or ["bash","-lc",...]."""
    if not tool_args:
        return None
    try:
        args = json.loads(tool_args)
    except ValueError:
        return None
    if isinstance(args, dict):
        keys = ("command", "cmd", "commandLine", "command_line") + (("script", "input") if shell else ())
        for key in keys:
            if key in args:
                args = args[key]
                break
        else:
            return None
    if isinstance(args, list) and all(isinstance(a, str) for a in args):
        if len(args) >= 3 and args[0].rsplit("/", 1)[-1] in ("bash", "sh", "zsh") and args[1] in ("-c", "-lc", "-ic"):
            return args[2]
        return shlex.join(args)
    return args if isinstance(args, str) else None


def _stage_programs(command: str) -> list[list[str]]:
    stages = []
    for part in _SEP_RE.split(command):
        try:
            words = shlex.split(part, comments=True)
        except ValueError:
            words = part.split()
        while words and ("=" in words[0] and not words[0].startswith("=")):
            words = words[1:]  # FOO=bar cmd
        while words and words[0] in _WRAPPERS:
            words = words[1:]
        if words:
            stages.append(words)
    return stages


def command_is_exact(command: str, protect: Iterable[str] = (), compress: Iterable[str] = ()) -> bool:
    """True when every stage that prints (cd, export... aside) is an exact-output program."""
    protect_set = {p.lower() for p in protect}
    compress_set = {c.lower() for c in compress}
    stages = [s for s in _stage_programs(command) if s[0] not in ("cd", "pushd", "popd", "export", "set", "source", ".")]
    if not stages:
        return False
    for words in stages:
        prog = words[0].rsplit("/", 1)[-1].lower()
        if prog in compress_set:
            return False
        if prog in protect_set:
            continue
        if prog == "git":
            sub = next((w for w in words[1:] if not w.startswith("-")), "")
            if sub == "show" and any(":" in w for w in words[2:]):
                continue  # git show REV:path prints a file
            if sub not in EXACT_GIT:
                return False
            continue
        if prog == "sed" and "-n" in words and any(w.endswith("p") for w in words):
            continue  # sed -n 10,80p file prints lines of a file
        if prog not in EXACT_COMMANDS:
            return False
    return True


def tool_verdict(tool_name: str | None, tool_args: str, *, protect_tools: Iterable[str] = (),
                 compress_tools: Iterable[str] = ()) -> Verdict:
    """May the output of this tool call be compressed (size aside)?"""
    name = _norm(tool_name or "")
    if name == RETRIEVE_TOOL:
        return Verdict(False, "retrieved content is never compressed again")
    protect = {_norm(p) for p in protect_tools}
    force = {_norm(c) for c in compress_tools}
    if name and name in force:
        return Verdict(True, "ok")
    if name and name in protect:
        return Verdict(False, f"protected tool {tool_name}")
    if name in EXACT_TOOLS:
        return Verdict(False, f"exact-output tool {tool_name}")
    command = _command_of(tool_args, name in SHELL_TOOLS)
    if command and command_is_exact(command, protect, force):
        return Verdict(False, f"exact-output command: {command.strip()[:60]}")
    return Verdict(True, "ok")
