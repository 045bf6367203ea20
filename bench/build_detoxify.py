"""A bert-base-sized Detoxify checkpoint with random weights, built offline for benchmarks.

The real checkpoint needs internet; its cost does not depend on its weights, only on its shape
and on how many tokens a text becomes. So the curation benchmark scores with this stand-in: the
same architecture as Detoxify "original" (BERT base, 6 classes) and a ~30k WordPiece vocabulary,
loaded through the same ``DetoxifyScorer`` path as production.

    python -m bench.build_detoxify [--dir DIR] [--texts 128] [--batch-size 32]
"""

from __future__ import annotations

import argparse
import itertools
import random
import string
import tempfile
import time
from pathlib import Path

from curation.toxicity import (
    DETOXIFY_CLASSES,
    ToxicityConfig,
    detoxify_checkpoint_save,
    get_scorer,
)

BERT_BASE_VOCAB_SIZE = 30522
BERT_BASE_MAX_LENGTH = 512
CLASSES = DETOXIFY_CLASSES
SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


def _generated_vocabulary(size: int = BERT_BASE_VOCAB_SIZE) -> list[str]:
    """WordPiece-shaped tokens: characters, then 2- and 3-letter pieces, word-initial and ##."""
    symbols = string.ascii_lowercase + string.digits + string.punctuation
    tokens = list(SPECIAL_TOKENS)
    tokens += list(symbols) + [f"##{c}" for c in symbols]
    letters = string.ascii_lowercase
    for width in (2, 3):
        for piece in ("".join(chars) for chars in itertools.product(letters, repeat=width)):
            tokens += [piece, f"##{piece}"]
    return tokens[:size]


def build_bert_base_detoxify(directory: Path) -> tuple[Path, Path]:
    """Write a random-weight bert-base Detoxify checkpoint; return (checkpoint, config_dir)."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizer

    directory = Path(directory)
    config_dir = directory / "bert-base-random"
    config_dir.mkdir(parents=True, exist_ok=True)
    (config_dir / "vocab.txt").write_text(
        "\n".join(_generated_vocabulary()) + "\n", encoding="utf-8"
    )
    # transformers 5 ignores BertTokenizer(vocab_file=...); only from_pretrained reads vocab.txt.
    tokenizer = BertTokenizer.from_pretrained(
        str(config_dir), model_max_length=BERT_BASE_MAX_LENGTH
    )
    torch.manual_seed(0)
    # BertConfig's defaults are bert-base: hidden 768, 12 layers, 12 heads, 512 positions.
    config = BertConfig(vocab_size=tokenizer.vocab_size, num_labels=len(CLASSES))
    model = BertForSequenceClassification(config).eval()
    config.save_pretrained(str(config_dir))
    tokenizer.save_pretrained(str(config_dir))
    checkpoint = directory / "bert-base-random-detoxify.ckpt"
    detoxify_checkpoint_save(
        checkpoint, state_dict=model.state_dict(), config_dir=config_dir, classes=CLASSES
    )
    return checkpoint, config_dir


def benchmark_texts(*, count: int, words: int = 40, seed: int = 0) -> list[str]:
    """Texts that tokenize like English: about 1.3 tokens per word, as bert-base-uncased does.

    In the generated vocabulary words of 2-3 letters are one token and 4-6 letters two, so
    seven short words in ten give English's token count without an English vocabulary.
    """
    rng = random.Random(seed)
    texts = []
    for _ in range(count):
        parts = []
        for index in range(words):
            length = rng.choice((2, 3)) if rng.random() < 0.7 else rng.randint(4, 6)
            word = "".join(rng.choices(string.ascii_lowercase, k=length))
            parts.append(word + ("." if index % 12 == 11 else ""))
        texts.append(" ".join(parts))
    return texts


def measure(*, directory: Path, texts: int, batch_size: int) -> dict[str, float]:
    started = time.perf_counter()
    checkpoint, config_dir = build_bert_base_detoxify(directory)
    built = time.perf_counter()
    config = ToxicityConfig(
        checkpoint=str(checkpoint), config_dir=str(config_dir), batch_size=batch_size
    )
    scorer = get_scorer(config)
    loaded = time.perf_counter()
    sample = benchmark_texts(count=texts)
    scorer.score_batch(sample[:batch_size])  # warm-up: first call allocates
    scoring_started = time.perf_counter()
    scores = scorer.score_batch(sample)
    scored = time.perf_counter()
    assert len(scores) == len(sample)
    tokens = [len(scorer.tokenizer(text)["input_ids"]) for text in sample]
    return {
        "build_s": built - started,
        "load_s": loaded - built,
        "checkpoint_mb": checkpoint.stat().st_size / 1e6,
        "tokens_per_text": sum(tokens) / len(tokens),
        "texts_per_s": len(sample) / (scored - scoring_started),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, help="keep the checkpoint here (default: temporary)")
    parser.add_argument("--texts", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    if args.dir:
        results = measure(directory=args.dir, texts=args.texts, batch_size=args.batch_size)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            results = measure(directory=Path(tmp), texts=args.texts, batch_size=args.batch_size)
    for key, value in results.items():
        print(f"{key}: {value:.2f}")


if __name__ == "__main__":
    main()
