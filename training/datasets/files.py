"""The file names of a frozen version's splits: the contract between the export
(training.datasets.export) and any trainer that reads it (training.runs.trainer, or an
external command). Plain constants, no Django, so the trainer stays importable alone."""

TRAIN_FILE = "train.jsonl"
EVAL_FILE = "eval.jsonl"
