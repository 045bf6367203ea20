"""Curation: jobs and their chunks, the sweeper, bulk actions on candidates, toxicity."""

from pathlib import Path

from curation import toxicity
from flywheel_site.env import env_bool, env_choice, env_float, env_int, env_str
from flywheel_site.settings.base import BASE_DIR, SECRET_KEY

FLYWHEEL_SAMPLING_KEY = env_str("FLYWHEEL_SAMPLING_KEY", "") or SECRET_KEY
FLYWHEEL_CURATION_CHUNK = env_int("FLYWHEEL_CURATION_CHUNK", 200, minimum=1)
FLYWHEEL_CURATION_JOB_TIMEOUT_S = env_int("FLYWHEEL_CURATION_JOB_TIMEOUT_S", 900, minimum=10)
FLYWHEEL_CURATION_RETRIES = env_int("FLYWHEEL_CURATION_RETRIES", 3, minimum=0)
# Candidates explorer: a bulk action on more than INLINE candidates runs as a job;
# one on more than MAX is refused (narrow the filter).
FLYWHEEL_BULK_ACTION_INLINE = env_int("FLYWHEEL_BULK_ACTION_INLINE", 200, minimum=1)
FLYWHEEL_BULK_ACTION_MAX = env_int("FLYWHEEL_BULK_ACTION_MAX", 100_000, minimum=1)
FLYWHEEL_SWEEP_INTERVAL_S = env_int("FLYWHEEL_SWEEP_INTERVAL_S", 60, minimum=5)
FLYWHEEL_SWEEP_GRACE_S = env_int("FLYWHEEL_SWEEP_GRACE_S", 30, minimum=0)
# Toxicity: Detoxify model name, or a local checkpoint and HF config directory
# for machines without internet. Without a loadable model candidates are held,
# unless the lighter alt-profanity-check fallback is allowed.
FLYWHEEL_TOXICITY_MODEL = env_choice(
    "FLYWHEEL_TOXICITY_MODEL", toxicity.DETOXIFY_MODELS, "original"
)
FLYWHEEL_TOXICITY_CHECKPOINT = env_str("FLYWHEEL_TOXICITY_CHECKPOINT", "")
FLYWHEEL_TOXICITY_CONFIG_DIR = env_str("FLYWHEEL_TOXICITY_CONFIG_DIR", "")
FLYWHEEL_TOXICITY_ALLOW_FALLBACK = env_bool("FLYWHEEL_TOXICITY_ALLOW_FALLBACK", False)
FLYWHEEL_TOXICITY_BATCH_SIZE = env_int("FLYWHEEL_TOXICITY_BATCH_SIZE", 32, minimum=1)
# torch (fp32, as trained) or onnx (exported once to int8 ONNX, cached under
# FLYWHEEL_TOXICITY_ONNX_CACHE_DIR by the checkpoint's sha256: faster, scores differ slightly).
FLYWHEEL_TOXICITY_RUNTIME = env_choice(
    "FLYWHEEL_TOXICITY_RUNTIME", toxicity.TOXICITY_RUNTIMES, "torch"
)
FLYWHEEL_TOXICITY_ONNX_CACHE_DIR = Path(
    env_str("FLYWHEEL_TOXICITY_ONNX_CACHE_DIR", "") or BASE_DIR / ".run" / "onnx"
)

# The optional LLM judge (curation/judge.py): an OpenAI-compatible chat completions
# endpoint (base URL, e.g. http://127.0.0.1:8000/v1). Unset, a policy that enables the
# llm_judge filter holds its candidates: the judge fails closed.
FLYWHEEL_JUDGE_URL = env_str("FLYWHEEL_JUDGE_URL", "")
FLYWHEEL_JUDGE_MODEL = env_str("FLYWHEEL_JUDGE_MODEL", "judge")
FLYWHEEL_JUDGE_API_KEY = env_str("FLYWHEEL_JUDGE_API_KEY", "")
FLYWHEEL_JUDGE_TIMEOUT_S = env_float("FLYWHEEL_JUDGE_TIMEOUT_S", 30.0, minimum=0.1)
FLYWHEEL_JUDGE_CONCURRENCY = env_int("FLYWHEEL_JUDGE_CONCURRENCY", 4, minimum=1, maximum=64)
FLYWHEEL_JUDGE_MAX_RETRIES = env_int("FLYWHEEL_JUDGE_MAX_RETRIES", 2, minimum=0, maximum=10)
FLYWHEEL_JUDGE_RETRY_AFTER_MAX_S = env_float("FLYWHEEL_JUDGE_RETRY_AFTER_MAX_S", 10.0, minimum=0)
