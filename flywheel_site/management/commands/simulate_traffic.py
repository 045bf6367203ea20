"""`manage.py simulate_traffic`: users on a canary experiment, through the public API only
(the logic and its notes are in flywheel_site.demo.simulate)."""

import json

from django.core.management.base import BaseCommand, CommandError

from flywheel_site.demo.simulate import SIMULATE_OPTIONS, Client, simulate, wait_for_decision


class Command(BaseCommand):
    help = "Simulate users on a canary experiment through the public API (route, ingest)."

    def add_arguments(self, parser):
        parser.add_argument("--url", required=True, help="the Flywheel base URL")
        parser.add_argument("--route-token", required=True, help="a token with the route scope")
        parser.add_argument("--ingest-token", required=True, help="a token with the ingest scope")
        parser.add_argument("--keys", "--users", type=int, default=1000, help="simulated users")
        parser.add_argument("--per-key", type=int, default=1, help="interactions per user")
        parser.add_argument(
            "--correlation", type=float, default=0.0, help="intra-user correlation (0: none)"
        )
        parser.add_argument(
            "--bypass", type=int, default=0,
            help="interactions answered by the control with no key, bad at --bad-canary's rate",
        )  # fmt: skip
        parser.add_argument(
            "--drop-canary", type=float, default=0.0, help="share of canary users dropped"
        )
        parser.add_argument("--bad-control", type=float, default=0.1)
        parser.add_argument("--bad-canary", type=float, default=0.1)
        parser.add_argument("--seed", type=int, default=1)
        parser.add_argument("--prefix", default="", help="event id prefix (default: random)")
        parser.add_argument(
            "--wait", type=float, default=0, help="seconds to wait for the decision (0: none)"
        )
        parser.add_argument("--timeout", type=float, default=10.0, help="per HTTP call")

    def handle(self, *args, **options):
        for name in ("bad_control", "bad_canary", "drop_canary"):
            if not 0 <= options[name] <= 1:
                raise CommandError(f"--{name.replace('_', '-')} must be between 0 and 1")
        if options["keys"] < 1 or options["per_key"] < 1:
            raise CommandError("--keys and --per-key must be at least 1")
        if not 0 <= options["correlation"] < 1 or options["bypass"] < 0:
            raise CommandError("--correlation must be in [0, 1) and --bypass at least 0")
        client = Client(
            options["url"],
            route_token=options["route_token"],
            ingest_token=options["ingest_token"],
            timeout=options["timeout"],
        )
        summary = simulate(client, **{k: options[k] for k in SIMULATE_OPTIONS})
        self.stdout.write(json.dumps(summary["arms"]))
        self.stdout.write(
            f"experiment {summary['experiment']}: {summary['canary_keys']} of "
            f"{options['keys']} keys on the canary; {summary['changed']} keys changed arm"
        )
        if options["wait"] > 0 and summary["experiment"] is not None:
            decision = wait_for_decision(
                client, summary=summary, seconds=options["wait"], poll_s=1.0
            )
            self.stdout.write(f"decision: {decision}")
