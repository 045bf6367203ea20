"""OpenAI's fine-tuning JSONL shapes, as interchange formats many tools read.

- chat SFT: `{"messages": [{"role", "content"}, ...]}`, the conversation then the approved
  answer as the last (assistant) message;
- preference (DPO): `{"input": {"messages": [...]}, "preferred_output": [assistant message],
  "non_preferred_output": [assistant message]}`.
Documented at https://platform.openai.com/docs/guides/supervised-fine-tuning and
https://platform.openai.com/docs/guides/direct-preference-optimization.
"""

from __future__ import annotations

SFT = "openai_sft"
PREFERENCE = "openai_preference"


def _assistant(text: str) -> dict:
    return {"role": "assistant", "content": text}


def example(*, fmt: str, prompt: list[dict], chosen: str, rejected: str | None) -> dict:
    if fmt == SFT:
        return {"messages": [*prompt, _assistant(chosen)]}
    if fmt == PREFERENCE:
        return {
            "input": {"messages": prompt},
            "preferred_output": [_assistant(chosen)],
            "non_preferred_output": [_assistant(rejected or "")],
        }
    raise ValueError(fmt)
