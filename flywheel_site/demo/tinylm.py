"""A tiny causal LM and tokenizer built offline, for tests and the demo.

The built-in trainer needs a base model directory and the machine has no internet, so tests
and `load_demo` build one here: a 2-layer Llama (about 115k parameters) with a 512-token
byte-level BPE. It is random, so it knows nothing, but it exercises the real TRL/PEFT
loading, training and evaluation path in a couple of seconds.
"""

from __future__ import annotations

import itertools
import random
from pathlib import Path

VOCAB_SIZE = 512
PAD_TOKEN = "<|pad|>"  # noqa: S105 - a token string, not a secret
EOS_TOKEN = "<|end|>"  # noqa: S105
ROLE_TOKENS = ("<|system|>", "<|user|>", "<|assistant|>")

# Role markers are special tokens, so the generation prompt ends on a token boundary and the
# prompt tokens are an exact prefix of prompt + reply: TRL splits prompt from completion at
# the common prefix, and anything after a mismatch would be dropped from training. The
# `{% generation %}` markers let SFT use `assistant_only_loss=True` if a caller wants it.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'assistant' %}"
    "<|assistant|>{% generation %}{{ message['content'] }}<|end|>{% endgeneration %}\n"
    "{% else %}"
    "<|{{ message['role'] }}|>{{ message['content'] }}<|end|>\n"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)

_SUBJECTS = ("the order", "my account", "the invoice", "this report", "the parcel", "our team")
_VERBS = ("needs", "shows", "has", "lost", "describes", "changed")
_OBJECTS = ("a refund", "the password", "two errors", "a new address", "the weather", "some data")
_PHRASES = (
    "Thank you for asking.",
    "Here is a short answer.",
    "Please try again later.",
    "I can help with that.",
    "Could you share more details?",
    "Sorry, I do not know.",
    "What is the capital of France?",
    "Summarise this text in one line.",
    "Hello, how are you today?",
    "Write a polite reply to the customer.",
)


def default_corpus() -> list[str]:
    """A few hundred short English sentences, so the BPE merges cover everyday words."""
    sentences = [
        f"{subject.capitalize()} {verb} {obj}."
        for subject, verb, obj in itertools.product(_SUBJECTS, _VERBS, _OBJECTS)
    ]
    return sentences + list(_PHRASES)


# Stays whole: a linear recipe (tokenizer, config, model, save) with no branch to name.
def build_tiny_lm(directory: Path, *, corpus: list[str] | None = None, seed: int = 0) -> Path:
    """Build and save a tiny causal LM and tokenizer under `directory`; return it (absolute).

    Deterministic for a given corpus and seed. The directory reloads offline with
    `AutoModelForCausalLM.from_pretrained` and `AutoTokenizer.from_pretrained`.
    """
    # Imported here: torch and transformers take seconds to import, and callers (`load_demo`,
    # the test suite) import this module long before they build a model, if ever.
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    directory = Path(directory).absolute()
    directory.mkdir(parents=True, exist_ok=True)
    texts = list(corpus) if corpus else default_corpus()
    # The shuffle makes no difference to BPE counts; it only mixes user text with the default
    # corpus so both contribute merges. A seeded Random keeps it deterministic.
    texts = texts + default_corpus()
    random.Random(seed).shuffle(texts)

    special_tokens = [PAD_TOKEN, EOS_TOKEN, *ROLE_TOKENS]
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator(
        texts,
        trainer=trainers.BpeTrainer(
            vocab_size=VOCAB_SIZE,
            special_tokens=special_tokens,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        ),
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        pad_token=PAD_TOKEN,
        eos_token=EOS_TOKEN,
        additional_special_tokens=list(ROLE_TOKENS),
        model_max_length=512,
    )
    tokenizer.chat_template = CHAT_TEMPLATE

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=512,
        tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None,
    )
    model = LlamaForCausalLM(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory
