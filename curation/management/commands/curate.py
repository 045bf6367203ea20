from django.core.management.base import BaseCommand
from tqdm import tqdm

from curation import pipeline, runs
from curation.models import CurationRun, Interaction


class Command(BaseCommand):
    help = "Curate every pending interaction now, in the foreground, with a progress bar."

    def add_arguments(self, parser):
        parser.add_argument("--limit", type=int, default=None, help="at most this many")

    def handle(self, *args, limit, **options):
        ids = list(
            Interaction.objects.filter(curation_state=Interaction.CurationState.PENDING)
            .order_by("pk")
            .values_list("pk", flat=True)[:limit]
        )
        run = runs.run_start(trigger=CurationRun.Trigger.COMMAND, total=len(ids))
        with (
            runs.run_tracked(run),
            tqdm(total=len(ids), unit="interaction", file=self.stderr._out) as bar,
        ):
            pipeline.interactions_curate(interaction_ids=ids, run=run, progress=bar.update)
        run.refresh_from_db()
        self.stdout.write(
            f"curated {run.interactions} interactions: {run.candidates} candidates, "
            f"{run.passed} passed, {run.failed} failed, {run.held} held, {run.sampled} sampled"
        )
        if run.errored:
            self.stdout.write(
                f"{run.errored} interaction(s) raised and were set aside as failed: "
                "see /curation/runs/ for their errors and to retry them"
            )
