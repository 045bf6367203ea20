"""A tiny Detoxify checkpoint built offline, so tests run the real loading and inference path.

Detoxify downloads its weights from GitHub, and this machine (like CI) has no internet. The
checkpoint written here has the exact format detoxify's ``load_checkpoint`` reads, with a
BERT small enough to fit in about two seconds on a CPU.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from curation import toxicity
from curation.toxicity import DETOXIFY_CLASSES, ToxicityConfig, detoxify_checkpoint_save
from tests.support.model_cache import model_built

# Detoxify "original" stores the Jigsaw names and renames three of them when loading;
# keeping the raw names exercises that mapping as a real checkpoint does.
CLASSES = DETOXIFY_CLASSES

#                         toxic severe obscene threat insult identity
TRAINING_SET: tuple[tuple[str, tuple[float, ...]], ...] = (
    ("you are a stupid idiot", (1, 0, 0, 0, 1, 0)),
    ("shut up you worthless moron", (1, 0, 0, 0, 1, 0)),
    ("i will kill you", (1, 1, 0, 1, 0, 0)),
    ("what a disgusting pathetic loser", (1, 0, 1, 0, 1, 0)),
    ("you dumb ugly fool", (1, 0, 0, 0, 1, 0)),
    ("thank you for your help", (0, 0, 0, 0, 0, 0)),
    ("the weather is nice today", (0, 0, 0, 0, 0, 0)),
    ("here is the answer to your question", (0, 0, 0, 0, 0, 0)),
    ("i hope you have a good day", (0, 0, 0, 0, 0, 0)),
    ("please see the attached report", (0, 0, 0, 0, 0, 0)),
)
TOXIC_SENTENCES = tuple(text for text, labels in TRAINING_SET if labels[0])
BENIGN_SENTENCES = tuple(text for text, labels in TRAINING_SET if not labels[0])

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
# Short on purpose: long texts must be truncated or BERT's position embeddings overflow.
MAX_POSITIONS = 64
SEED = 1234
CHECKPOINT_NAME = "tiny-detoxify.ckpt"
CONFIG_DIR_NAME = "tiny-bert"
STEPS = 200


def _vocabulary() -> list[str]:
    words = sorted({word for text, _ in TRAINING_SET for word in text.split()})
    return [*SPECIAL_TOKENS, *words, ".", ",", "!", "?"]


def build_tiny_detoxify(directory: Path) -> tuple[Path, Path]:
    """Write a trained tiny Detoxify checkpoint; return (checkpoint_file, config_dir)."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizer

    config_dir = directory / CONFIG_DIR_NAME
    config_dir.mkdir(parents=True, exist_ok=True)
    (config_dir / "vocab.txt").write_text("\n".join(_vocabulary()) + "\n", encoding="utf-8")
    # transformers 5 ignores BertTokenizer(vocab_file=...); only from_pretrained reads vocab.txt.
    tokenizer = BertTokenizer.from_pretrained(str(config_dir))

    # A private RNG stream: the same weights every build, and the caller's random state untouched.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(SEED)
        config = BertConfig(
            vocab_size=tokenizer.vocab_size,
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=64,
            max_position_embeddings=MAX_POSITIONS,
            num_labels=len(CLASSES),
            problem_type="multi_label_classification",
        )
        model = BertForSequenceClassification(config)
        texts = [text for text, _ in TRAINING_SET]
        targets = torch.tensor([labels for _, labels in TRAINING_SET], dtype=torch.float32)
        batch = tokenizer(texts, return_tensors="pt", padding=True)
        optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
        # Tensors this small spend more time synchronising threads than computing, and one
        # thread also fixes the order of float reductions, so the weights are the same every run.
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            model.train()
            for _ in range(STEPS):
                optimizer.zero_grad()
                loss = model(**batch, labels=targets).loss
                loss.backward()
                optimizer.step()
            model.eval()
        finally:
            torch.set_num_threads(threads)

    config.save_pretrained(str(config_dir))
    tokenizer.save_pretrained(str(config_dir))
    checkpoint = directory / CHECKPOINT_NAME
    # Written last (and renamed into place by the writer): a checkpoint that exists is complete.
    detoxify_checkpoint_save(
        checkpoint, state_dict=model.state_dict(), config_dir=config_dir, classes=CLASSES
    )
    return checkpoint, config_dir


# Named apart from the fixture so importing it (into conftest.py or a test module) does not
# clash with the ``tiny_detoxify`` argument of the tests that use it.
@pytest.fixture(scope="session", name="tiny_detoxify")
def tiny_detoxify_fixture() -> ToxicityConfig:
    """A ToxicityConfig pointing at a tiny checkpoint, built once for this code (model_cache)."""
    directory = model_built(
        "tiny-detoxify",
        sources=(Path(__file__), Path(toxicity.__file__)),
        build=build_tiny_detoxify,
    )
    checkpoint, config_dir = directory / CHECKPOINT_NAME, directory / CONFIG_DIR_NAME
    return ToxicityConfig(model="original", checkpoint=str(checkpoint), config_dir=str(config_dir))
