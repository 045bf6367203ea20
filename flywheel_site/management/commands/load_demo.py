"""`manage.py load_demo`: the demo (flywheel_site.demo.load), safe to run on every `make run`."""

import argparse
from datetime import datetime

from django.core.management.base import BaseCommand

from flywheel_site.demo.cycles import DEFAULT_PRESET, PRESETS
from flywheel_site.demo.load import demo_load, demo_wait
from flywheel_site.demo.traffic import NAIVE_TIME


def _aware_datetime(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise argparse.ArgumentTypeError(NAIVE_TIME.format(name="--now"))
    return parsed


class Command(BaseCommand):
    help = "Load deterministic demo data, an API token and the demo accounts (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--interactions", type=int, default=6000, help="how many interactions (6000)"
        )
        parser.add_argument("--seed", type=int, default=7, help="random seed (7)")
        parser.add_argument(
            "--now",
            type=_aware_datetime,
            default=None,
            help="ISO time the demo's six weeks end near (default: the current time)",
        )
        parser.add_argument(
            "--background",
            action="store_true",
            help="leave the training cycles to the training queue's worker (make run)",
        )
        parser.add_argument(
            "--wait",
            action="store_true",
            help="only wait until a loading demo's training cycles are done (make run)",
        )
        parser.add_argument(
            "--preset",
            choices=sorted(PRESETS),
            default=DEFAULT_PRESET,
            help="training settings of the demo's cycles: demo (24 steps, max length 512) or "
            "small (a few steps, for tests)",
        )

    def handle(self, *args, interactions: int, seed: int, now: datetime | None, **options):
        if options["wait"]:
            demo_wait(stdout=self.stdout)
            return
        demo_load(
            interactions=interactions,
            seed=seed,
            now=now,
            stdout=self.stdout,
            background=options["background"],
            preset=options["preset"],
        )
