"""Training runs: the built-in and external trainers, the eval gate, the training trigger."""

from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from flywheel_site.env import env_bool, env_choice, env_float, env_int, env_str
from flywheel_site.settings.base import BASE_DIR
from training.runs import trainer

# The values of TrainingRun.Trainer (a model, which settings cannot import; a test keeps the
# two equal).
TRAINERS = ("builtin", "external")

# Trained adapters go under FLYWHEEL_MODELS_DIR/runs. The base model is a local directory
# (config.json and tokenizer files): nothing is downloaded at run time. `load_demo` builds a
# tiny one at the default path.
FLYWHEEL_MODELS_DIR = Path(env_str("FLYWHEEL_MODELS_DIR", "") or BASE_DIR / ".run" / "models")
FLYWHEEL_BASE_MODEL = Path(env_str("FLYWHEEL_BASE_MODEL", "") or FLYWHEEL_MODELS_DIR / "base")
FLYWHEEL_TRAINER = env_choice("FLYWHEEL_TRAINER", TRAINERS, "builtin")
# Split like a shell line (no shell runs it); {export_dir} and {output_dir} are replaced.
FLYWHEEL_EXTERNAL_TRAINER_COMMAND = env_str("FLYWHEEL_EXTERNAL_TRAINER_COMMAND", "")
if FLYWHEEL_TRAINER == "external" and not FLYWHEEL_EXTERNAL_TRAINER_COMMAND.strip():
    raise ImproperlyConfigured("FLYWHEEL_TRAINER=external needs FLYWHEEL_EXTERNAL_TRAINER_COMMAND")
FLYWHEEL_EXTERNAL_TRAINER_TIMEOUT_S = env_int(
    "FLYWHEEL_EXTERNAL_TRAINER_TIMEOUT_S", 6 * 3600, minimum=1
)
# The RQ timeout of a training job; a run still "running" this long after it started is
# marked failed by the periodic check (its worker died).
FLYWHEEL_TRAINING_JOB_TIMEOUT_S = env_int("FLYWHEEL_TRAINING_JOB_TIMEOUT_S", 6 * 3600, minimum=60)
FLYWHEEL_TRAINING_STEPS = env_int("FLYWHEEL_TRAINING_STEPS", 200, minimum=1)
FLYWHEEL_TRAINING_BATCH_SIZE = env_int("FLYWHEEL_TRAINING_BATCH_SIZE", 8, minimum=1)
FLYWHEEL_TRAINING_LEARNING_RATE = env_float(
    "FLYWHEEL_TRAINING_LEARNING_RATE", 5e-3, minimum=1e-9, maximum=1.0
)
FLYWHEEL_TRAINING_MAX_LENGTH = env_int("FLYWHEEL_TRAINING_MAX_LENGTH", 256, minimum=16)
FLYWHEEL_TRAINING_LORA_R = env_int("FLYWHEEL_TRAINING_LORA_R", 8, minimum=1)
FLYWHEEL_TRAINING_BETA = env_float("FLYWHEEL_TRAINING_BETA", 0.1, minimum=1e-6)
# The eval gate: the one-sided lower bound of the candidate's improvement over the current
# model on this metric must be strictly above the margin (training.registry.paired).
FLYWHEEL_GATE_METRIC = env_choice(
    "FLYWHEEL_GATE_METRIC", trainer.GATE_METRICS, "normalised_accuracy"
)
FLYWHEEL_GATE_MARGIN = env_float("FLYWHEEL_GATE_MARGIN", 0.02, minimum=0)
# The one-sided error of the gate over every candidate gated on one dataset's eval pairs,
# spent across attempts (training.registry.paired.attempt_alpha).
FLYWHEEL_GATE_ALPHA = env_float("FLYWHEEL_GATE_ALPHA", 0.025, minimum=1e-6, maximum=0.25)
# Fewer held-out pairs than this and the gate refuses to judge (training.registry.paired):
# on a handful of pairs the interval of the difference is too wide to tell anything.
FLYWHEEL_GATE_MIN_EVAL_PAIRS = env_int("FLYWHEEL_GATE_MIN_EVAL_PAIRS", 50, minimum=1)
# Promote a candidate that passes the gate without waiting for an admin.
FLYWHEEL_AUTO_PROMOTE = env_bool("FLYWHEEL_AUTO_PROMOTE", False)
# How often the periodic job checks each dataset's threshold (and re-queues lost runs).
FLYWHEEL_TRAIN_TRIGGER_INTERVAL_S = env_int("FLYWHEEL_TRAIN_TRIGGER_INTERVAL_S", 300, minimum=10)
