"""Write a frozen dataset version's files (every format, train and eval, the cards and
manifest.json) into a directory, streamed from the database with a progress bar; `--format`
keeps one kind of data file. Reads only: exporting a past version changes nothing."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from training.datasets import formats
from training.datasets.export import ExportMismatch, dataset_version_write
from training.datasets.pii_scan import ExportPiiFound
from training.models import DatasetVersion

NOT_FOUND = "No frozen version {version} of dataset {name!r}."
WROTE = "Wrote {files} file(s) of {name} v{version} to {directory}."


class Command(BaseCommand):
    help = "Export a frozen dataset version: NAME VERSION DIR."

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("version", type=int)
        parser.add_argument("directory", type=Path)
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")
        parser.add_argument(
            "--format",
            dest="file_format",
            choices=formats.CHOICES,
            default=formats.ALL,
            help="which data files to write (default: all)",
        )

    def handle(self, *args, name, version, directory, no_progress, file_format, **options):
        row = (
            DatasetVersion.objects.select_related("dataset")
            .exclude(status=DatasetVersion.Status.DRAFT)
            .filter(dataset__name=name, number=version)
            .first()
        )
        if row is None:
            raise CommandError(NOT_FOUND.format(version=version, name=name))
        counts = row.manifest.get("counts", {})
        total = counts.get("train", 0) + counts.get("eval", 0)
        with tqdm(total=total, unit="pairs", disable=no_progress, file=self.stderr._out) as bar:
            try:
                files = dataset_version_write(
                    version=row, directory=directory, progress=bar.update, file_format=file_format
                )
            except (ExportMismatch, ExportPiiFound) as error:
                raise CommandError(str(error)) from error
        self.stdout.write(
            WROTE.format(files=len(files) + 1, name=name, version=version, directory=directory)
        )
