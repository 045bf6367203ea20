"""The toxicity model exported to ONNX with int8 weights, cached on disk and run by ONNX Runtime.

Dynamic int8 quantisation makes a BERT-sized model several times faster on a CPU
(bench/toxicity_runtime.py) at the cost of slightly different scores. The export is derived
data: it is built once from the configured checkpoint and stored under a key that changes
whenever anything that shapes it changes (the checkpoint's bytes, the tokenizer files, the
exporter's versions), so a new checkpoint is exported again rather than scored by a stale file.

An entry holds everything scoring needs (the quantised model, the tokenizer, the labels), so a
worker that finds it loads neither torch nor the checkpoint. Entries are written to a temporary
folder and renamed into place: two workers exporting at once both succeed, one entry stays.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

# Bumped when the export below changes in a way that changes the file it writes.
EXPORT_FORMAT = 2
RUNTIME_LABEL = "onnx-int8"
MODEL_FILE = "model.int8.onnx"
META_FILE = "meta.json"
TOKENIZER_DIR = "tokenizer"
INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")
OPSET = 17
# Two texts of different lengths: the example batch must hold padding, or the tracer may
# record transformers' shortcut for a mask of all ones and drop the mask from the graph.
EXAMPLE_TEXTS = ("a short text", "a somewhat longer text, so that the batch holds padding")


def _versions() -> dict[str, str]:
    found = {}
    for distribution in ("torch", "transformers", "onnx", "onnxruntime"):
        try:
            found[distribution] = importlib.metadata.version(distribution)
        except importlib.metadata.PackageNotFoundError:
            found[distribution] = "missing"
    return found


def _directory_digest(directory: str) -> str:
    if not directory:
        return ""
    digest = hashlib.sha256()
    for path in sorted(p for p in Path(directory).rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(directory)).encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def cache_key(*, checkpoint_sha256: str, model: str, config_dir: str) -> str:
    """The entry name for a checkpoint: a sha256 over everything that shapes the export."""
    parts = {
        "format": EXPORT_FORMAT,
        "checkpoint": checkpoint_sha256,
        "model": model,
        "config_dir": _directory_digest(config_dir),
        "versions": _versions(),
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def encode(tokenizer: Any, texts: list[str], *, max_length: int, tensors: str) -> Any:
    """Texts as model inputs, one definition for both runtimes so they see the same tokens."""
    return tokenizer(
        texts, return_tensors=tensors, truncation=True, max_length=max_length, padding=True
    )


def _input_names(encoded: Any) -> list[str]:
    """The model inputs a tokenizer gives, in forward()'s order (RoBERTa has no token types)."""
    return [name for name in INPUT_NAMES if name in encoded]


def _torch_export(model: Any, tokenizer: Any, path: Path) -> None:
    import torch

    example = tokenizer(list(EXAMPLE_TEXTS), return_tensors="pt", padding=True)
    names = _input_names(example)
    axes = {name: {0: "batch", 1: "tokens"} for name in names}
    # Traced with the plain (eager) attention, whose graph ONNX Runtime's optimiser recognises
    # and fuses into one Attention op (_fused); the SDPA graph it leaves unfused.
    attention = model.config._attn_implementation
    model.set_attn_implementation("eager")
    with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
        # The TorchScript exporter warns that it is legacy and that two shape comparisons in
        # transformers become constants; both are equal for every batch (BERT is never causal,
        # and the mask always spans the tokens), which the agreement tests check.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            tuple(example[name] for name in names),
            str(path),
            input_names=names,
            output_names=["logits"],
            dynamic_axes={**axes, "logits": {0: "batch"}},
            opset_version=OPSET,
            dynamo=False,
        )
    model.set_attn_implementation(attention)


def _fused(model: Any, source: Path, path: Path) -> None:
    """Embeddings, attention, LayerNorm and GELU fused into ONNX Runtime's transformer ops,
    which dynamic quantisation then turns into their int8 forms (QAttention...)."""
    from onnxruntime.transformers.optimizer import optimize_model

    fused = optimize_model(
        str(source),
        model_type="bert",
        num_heads=model.config.num_attention_heads,
        hidden_size=model.config.hidden_size,
    )
    fused.save_model_to_file(str(path))


def onnx_model_export(
    *, model: Any, tokenizer: Any, labels: tuple[str, ...], max_length: int, entry: Path
) -> Path:
    """Export ``model`` to ``entry`` (a folder that must not exist yet): fp32 ONNX, fused, then
    int8 weights by dynamic quantisation. Returns the entry, whoever finished it first."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    entry.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{entry.name[:12]}-", dir=entry.parent))
    try:
        fp32 = work / "model.fp32.onnx"
        fused = work / "model.fused.onnx"
        _torch_export(model, tokenizer, fp32)
        _fused(model, fp32, fused)
        quantize_dynamic(
            str(fused),
            str(work / MODEL_FILE),
            weight_type=QuantType.QInt8,
            per_channel=True,
            # Shape inference cannot type the fused ops' outputs (com.microsoft domain).
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )
        fp32.unlink()
        fused.unlink()
        tokenizer.save_pretrained(str(work / TOKENIZER_DIR))
        meta = {"labels": list(labels), "max_length": max_length, "versions": _versions()}
        (work / META_FILE).write_text(json.dumps(meta, indent=2), encoding="utf-8")
        try:
            work.rename(entry)
        except OSError:
            # Another process renamed its export into place first; its files are as good.
            if not (entry / META_FILE).is_file():
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return entry


class OnnxModel:
    """A cache entry loaded: tokenizer, labels and an ONNX Runtime session."""

    def __init__(self, entry: Path) -> None:
        import onnxruntime
        from transformers import AutoTokenizer

        meta = json.loads((entry / META_FILE).read_text(encoding="utf-8"))
        self.labels: tuple[str, ...] = tuple(meta["labels"])
        self.max_length = int(meta["max_length"])
        self.tokenizer = AutoTokenizer.from_pretrained(str(entry / TOKENIZER_DIR))
        options = onnxruntime.SessionOptions()
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Idle threads sleep instead of spinning: a worker shares its cores with other
        # workers and PostgreSQL, and spinning threads take time slices they would use.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = onnxruntime.InferenceSession(
            str(entry / MODEL_FILE), options, providers=["CPUExecutionProvider"]
        )

    def probabilities(self, texts: list[str]) -> list[list[float]]:
        import numpy as np

        inputs = encode(self.tokenizer, texts, max_length=self.max_length, tensors="np")
        feed = {name: inputs[name].astype(np.int64) for name in _input_names(inputs)}
        (logits,) = self.session.run(["logits"], feed)
        return (1.0 / (1.0 + np.exp(-logits.astype(np.float64)))).tolist()
