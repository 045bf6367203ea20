"""The site holds no tables of its own: only the abstract row shape the apps' daily
rollups share (each app's concrete table lives in its own migrations)."""

from django.db import models


class MetricDayBase(models.Model):
    """One count of a daily rollup: `n` facts of `metric` (detailed by `key`: a
    feedback kind, a filter, a lag bucket, a reviewer) on `day` for one (source,
    task type, model). Written only by `flywheel_site.rollups` in the transaction that
    changes the facts, so the dashboard reads days, never the raw rows.

    `shard` spreads concurrent writers of the same key over several rows (every
    ingest of a source on one day would otherwise queue on one row lock until
    commit); readers sum over it. A rebuild writes shard 0."""

    day = models.DateField()
    source_id = models.BigIntegerField()
    task_type = models.CharField(max_length=100)
    model = models.CharField(max_length=200)
    metric = models.CharField(max_length=20)
    key = models.CharField(max_length=100)
    shard = models.SmallIntegerField(default=0)
    n = models.BigIntegerField()

    class Meta:
        abstract = True
        constraints = [
            models.UniqueConstraint(
                fields=["day", "source_id", "task_type", "model", "metric", "key", "shard"],
                name="%(app_label)s_metricday_key",
            )
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.metric}[{self.key}] = {self.n}"
