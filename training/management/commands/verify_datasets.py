"""Recompute every frozen dataset version's manifest from the database and check the hash
chain and any exported files. Exits 1 on any mismatch, so cron or CI can alert on it."""

import sys

from django.core.management.base import BaseCommand

from training.datasets.export import datasets_verify

OK = "{checked} version(s) verified, no mismatch."
FAILED = "{count} mismatch(es) in {checked} version(s):"


class Command(BaseCommand):
    help = "Verify dataset versions against their manifests and hash chain."

    def add_arguments(self, parser):
        parser.add_argument("names", nargs="*", help="dataset names (default: all)")

    def handle(self, *args, names, **options):
        checked, problems = datasets_verify(dataset_names=names or None)
        if not problems:
            self.stdout.write(OK.format(checked=checked))
            return
        self.stderr.write(FAILED.format(count=len(problems), checked=checked))
        for problem in problems:
            self.stderr.write(f"  {problem}")
        sys.exit(1)
