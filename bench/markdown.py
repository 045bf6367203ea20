"""Time to render hostile Markdown (issue 18): issue 18's patterns as it writes them ("[" * N,
"![" * N, "* " * N, "> " * N) and the others found costly, at N = 1,000, 10,000 and 100,000,
then the costliest 10,000-character texts the default budgets still render. Best of 5 per
cell, as wall time and as this process's CPU time (the machine is shared: CPU time is what
the render costs, wall time what a request waited). No database: only the renderer.

Run: `scripts/bench.sh markdown` (in `make bench`), or `.venv/bin/python bench/markdown.py`.
Prints the JSON object on stdout and the Markdown tables of bench/RESULTS.md on stderr.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import BENCH_SECRET_KEY, emit, log, machine
from tests.support.hostile_text import AT_THE_BUDGETS, PATTERNS

SIZES = (1_000, 10_000, 100_000)


def _best_ms(render, text: str, runs: int = 5) -> tuple[float, float]:
    wall = cpu = float("inf")
    for _ in range(runs):
        start, start_cpu = time.perf_counter(), time.process_time()
        render(text)
        wall = min(wall, time.perf_counter() - start)
        cpu = min(cpu, time.process_time() - start_cpu)
    return round(wall * 1000, 3), round(cpu * 1000, 3)


def _table(rows: dict[str, list[tuple[float, float]]], heads: list[str]) -> str:
    lines = ["| text | " + " | ".join(heads) + " |", "| --- |" + " --- |" * len(heads)]
    for name, cells in rows.items():
        shown = [f"{wall:.2f} / {cpu:.2f}" for wall, cpu in cells]
        if len(cells) == len(SIZES):
            shown.append(f"{cells[2][0] / cells[1][0]:.1f} / {cells[2][1] / cells[1][1]:.1f}")
        lines.append(f"| {name} | " + " | ".join(shown) + " |")
    return "\n".join(lines)


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "flywheel_site.settings")
    os.environ.setdefault("SECRET_KEY", BENCH_SECRET_KEY)
    import django

    django.setup()
    from flywheel_site.text_render import render_markdown

    log("rendering issue 18's patterns")
    sized = {
        name: [_best_ms(render_markdown, make(n)) for n in SIZES] for name, make in PATTERNS.items()
    }
    budgets = {
        name: [_best_ms(render_markdown, text.ljust(10_000, "q"))]
        for name, text in AT_THE_BUDGETS.items()
    }
    heads = [f"N={n:,} wall / CPU ms" for n in SIZES] + ["ratio 100k/10k wall / CPU"]
    log("\n" + _table(sized, heads) + "\n\n" + _table(budgets, ["10,000 chars, wall / CPU ms"]))
    emit(
        {
            "machine": machine(),
            "load_average": os.getloadavg(),
            "sizes": list(SIZES),
            "patterns_ms_wall_cpu": sized,
            "at_the_budgets_10k_ms_wall_cpu": budgets,
            "worst_cpu_ms_at_10k": max(cells[1][1] for cells in sized.values()),
            "worst_cpu_ms_at_the_budgets": max(c[0][1] for c in budgets.values()),
            "worst_wall_ratio_100k_10k": max(c[2][0] / c[1][0] for c in sized.values()),
            "worst_cpu_ratio_100k_10k": max(c[2][1] / c[1][1] for c in sized.values()),
        }
    )


if __name__ == "__main__":
    main()
