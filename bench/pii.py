"""Throughput of curation.pii.redact on 2 KB English texts, printed as JSON.

Run: .venv/bin/python bench/pii.py

Texts are generated deterministically with random.Random(0). "Clean" texts carry the numbers
ordinary prose has (years, prices, versions, dates, times, ports) but no PII; "prose" texts have
no digit at all (the fast path); "pii" texts carry three PII items each. Every round times fresh
texts so the phone-validation cache only helps as much as it would on real traffic. Rates are
medians over the rounds, per second of wall time and per second of this process's CPU time.
"""

from __future__ import annotations

import json
import platform
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from stdnum import iban, luhn

from curation.pii import redact

TEXT_CHARS = 2048
TEXTS_PER_ROUND = {"prose": 20000, "clean": 10000, "pii": 2000}
ROUNDS = 3

VOCABULARY = (
    "the of and to in is you that it he was for on are as with his they at be this have from or "
    "one had by word but not what all were we when your can said there use an each which she do "
    "how their if will up other about out many then them these so some her would make like him "
    "into time has look two more write go see way could people my than first water been call "
    "who oil its now find long down day did get come made may part model answer response user "
    "please thanks question order account service support request issue error update install "
    "configure server database python function value return list string number file folder"
)
WORDS = VOCABULARY.split()
AREA_CODES = (212, 206, 303, 312, 415, 512, 617, 646, 702, 818)


def _clean_number(rng: random.Random) -> str:
    return rng.choice(
        [
            str(rng.randint(1990, 2030)),
            f"${rng.randint(1, 9)},{rng.randint(100, 999)}.{rng.randint(10, 99)}",
            f"v{rng.randint(0, 5)}.{rng.randint(0, 20)}.{rng.randint(0, 9)}",
            f"{rng.randint(2015, 2030)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
            f"{rng.randint(1, 28):02d}/{rng.randint(1, 12):02d}/{rng.randint(2015, 2030)}",
            f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}",
            f"localhost:{rng.choice([3000, 5432, 8000, 8080])}",
            f"{rng.randint(2, 99)}%",
            f"#{rng.randint(10000, 99999)}",
        ]
    )


def _card(rng: random.Random) -> str:
    body = "4" + "".join(str(rng.randint(0, 9)) for _ in range(14))
    digits = body + luhn.calc_check_digit(body)
    return " ".join(digits[i : i + 4] for i in range(0, 16, 4))


def _iban(rng: random.Random) -> str:
    bban = "".join(str(rng.randint(0, 9)) for _ in range(18))
    return iban.format("DE" + iban.calc_check_digits("DE00" + bban) + bban)


def _pii(rng: random.Random) -> str:
    kind = rng.choice(["email", "phone", "card", "iban", "ip", "ssn"])
    if kind == "email":
        return f"{rng.choice(WORDS)}.{rng.choice(WORDS)}{rng.randint(1, 99)}@example.com"
    if kind == "phone":
        area = rng.choice(AREA_CODES)
        return f"({area}) {rng.randint(201, 989)}-{rng.randint(1000, 9999)}"
    if kind == "card":
        return _card(rng)
    if kind == "iban":
        return _iban(rng)
    if kind == "ip":
        return f"10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
    return f"{rng.randint(100, 665)}-{rng.randint(10, 99)}-{rng.randint(1000, 9999)}"


def _text(rng: random.Random, *, numbers: bool, pii_items: int) -> str:
    sentences = []
    size = 0
    while size < TEXT_CHARS:
        words = [rng.choice(WORDS) for _ in range(rng.randint(6, 18))]
        if numbers and rng.random() < 0.3:
            words.insert(rng.randrange(len(words)), _clean_number(rng))
        sentence = " ".join(words).capitalize() + "."
        sentences.append(sentence)
        size += len(sentence) + 1
    for _ in range(pii_items):
        at = rng.randrange(len(sentences))
        sentences[at] = sentences[at][:-1] + f" {_pii(rng)}."
    return " ".join(sentences)[: TEXT_CHARS + 200]


def _texts(rng: random.Random, kind: str) -> list[str]:
    numbers = kind != "prose"
    pii_items = 3 if kind == "pii" else 0
    return [_text(rng, numbers=numbers, pii_items=pii_items) for _ in range(TEXTS_PER_ROUND[kind])]


def _rate(texts: list[str]) -> tuple[float, float, int]:
    """Texts per second of wall time and of process CPU time (steadier on a shared machine)."""
    found = 0
    wall, cpu = time.perf_counter(), time.process_time()
    for text in texts:
        found += sum(redact(text)[1].values())
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return len(texts) / wall, len(texts) / cpu, found


def main() -> None:
    rng = random.Random(0)
    result: dict[str, object] = {
        "python": platform.python_version(),
        "text_chars": TEXT_CHARS,
        "rounds": ROUNDS,
    }
    for kind in ("prose", "clean", "pii"):
        wall_rates, cpu_rates = [], []
        found = 0
        for _ in range(ROUNDS):
            wall_rate, cpu_rate, found = _rate(_texts(rng, kind))
            wall_rates.append(wall_rate)
            cpu_rates.append(cpu_rate)
        result[kind] = {
            "texts_per_s_wall": round(statistics.median(wall_rates)),
            "texts_per_s_cpu": round(statistics.median(cpu_rates)),
            "texts_per_round": TEXTS_PER_ROUND[kind],
            "pii_found_last_round": found,
        }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
