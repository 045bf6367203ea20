"""Time to render hostile Markdown (issue 18): each pattern at 1,000, 10,000 and 100,000
characters, best of 5, as a Markdown table.

Run: DJANGO_SETTINGS_MODULE=flywheel_site.settings FLYWHEEL_ALLOW_DEV_SECRET=true \
     .venv/bin/python bench/markdown.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import django

django.setup()

from flywheel_site.text_render import render_markdown  # noqa: E402 - needs django.setup()

SIZES = (1_000, 10_000, 100_000)
PROSE = (Path(__file__).resolve().parent.parent / "README.md").read_text()
PATTERNS = {
    '"[" * N': lambda n: "[" * n,
    '"![" * N/2': lambda n: "![" * (n // 2),
    '"* " * N/2': lambda n: "* " * (n // 2),
    '"> " * N/2 (nested quotes)': lambda n: "> " * (n // 2),
    '"*a" * N/2': lambda n: "*a" * (n // 2),
    '"[a](" * N/4': lambda n: "[a](" * (n // 4),
    '"<" * N': lambda n: "<" * n,
    '"[" * 150 + prose': lambda n: ("[" * 150 + PROSE * 40)[:n],
    "README prose": lambda n: (PROSE * 40)[:n],
}


def _best_ms(text: str, runs: int = 5) -> float:
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        render_markdown(text)
        best = min(best, time.perf_counter() - start)
    return best * 1000


def main() -> None:
    print("| text | " + " | ".join(f"N={n:,} ms" for n in SIZES) + " | ratio 100k/10k |")
    print("| --- |" + " --- |" * (len(SIZES) + 1))
    for name, make in PATTERNS.items():
        ms = [_best_ms(make(n)) for n in SIZES]
        cells = " | ".join(f"{m:.2f}" for m in ms)
        print(f"| {name} | {cells} | {ms[2] / ms[1]:.1f} |")


if __name__ == "__main__":
    main()
