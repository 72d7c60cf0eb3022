"""How a task runs under an ``EvalConfig``, sample by sample: which samples (``--limit``, ``--shard``),
each sample's prompt (system prompt, chat or plain) and decoding (``meta.generation``), and the scorer
arguments the run's flags set (``--harm-judge``, ``--refusal-judge``)."""

from __future__ import annotations

import hashlib
import inspect
from typing import Any

from alignbench.config import TaskConfig
from alignbench.errors import UsageError
from alignbench.judges.catalog import builtin_judges
from alignbench.registry import scorers
from alignbench.run.settings import EvalConfig
from alignbench.scorers.harmful_rate import NO_JUDGE
from alignbench.tasks.limit import stratified_limit
from alignbench.types import Prompt, Sample


def shard_of(task: str, sample_id: str, num_shards: int) -> int:
    """Deterministic shard of a sample: stable across runs, machines and data order."""
    digest = hashlib.sha256(f"{task}\x00{sample_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % num_shards


def select_samples(samples: list[Sample], task: str, limit: int | None, shard: tuple[int, int] | None) -> list[Sample]:
    out = stratified_limit(samples, limit)
    if shard is not None:
        i, n = shard
        out = [s for s in out if shard_of(task, s.id, n) == i]
    return out


def build_prompt(cfg: TaskConfig, sample: Sample, system_prompt: str | None, chat: bool | None = None) -> Prompt:
    """The prompt as sent: a chat conversation (system + user) or a plain string."""
    system = system_prompt if system_prompt is not None else cfg.prompt.system
    chat = cfg.prompt.chat if chat is None else chat
    if isinstance(sample.prompt, list) and chat:  # the data already holds a conversation
        msgs = list(sample.prompt)
        if system and not any(m.get("role") == "system" for m in msgs):
            msgs.insert(0, {"role": "system", "content": system})
        return msgs
    if chat:
        msgs = [{"role": "system", "content": system}] if system else []
        return msgs + [{"role": "user", "content": str(sample.prompt)}]
    return f"{system}\n\n{sample.prompt}" if system else str(sample.prompt)


JUDGE_ROLE_FLAGS = {"harm_judge": "--harm-judge", "refusal_judge": "--refusal-judge"}


def takes_arg(scorer_name: str | None, arg: str) -> bool:
    """Whether the scorer (default judge_scores) has a parameter ``arg``."""
    return arg in inspect.signature(scorers.get(scorer_name or "judge_scores")).parameters


def task_scorer_args(t: TaskConfig, roles: Any) -> dict[str, Any]:
    """The task's scorer_args, with --harm-judge / --refusal-judge for a scorer that takes them (``none``: no such judge).
    ``roles``: the run's EvalConfig, or the ``config`` mapping its run.json keeps (how merge rebuilds the scorers)."""
    args = dict(t.scorer_args)
    for arg in JUDGE_ROLE_FLAGS:
        value = roles.get(arg) if isinstance(roles, dict) else getattr(roles, arg)
        if value and takes_arg(t.scorer, arg):
            args[arg] = value
    return args


def check_judge_role_flags(cfg: "EvalConfig", tasks: list[TaskConfig]) -> None:
    """--harm-judge / --refusal-judge name a known judge and some task takes them."""
    catalog = builtin_judges()
    for arg, flag in JUDGE_ROLE_FLAGS.items():
        value = getattr(cfg, arg)
        if not value:
            continue
        if value == NO_JUDGE and arg == "refusal_judge":
            raise UsageError(f"{flag} none: the harmful_rate family always needs a refusal judge; name one (alignbench list judges)")
        try:
            if value != NO_JUDGE:
                catalog.config(value)
        except UsageError as exc:
            raise UsageError(f"{flag}: {exc}") from None
        if not any(takes_arg(t.scorer, arg) for t in tasks):
            raise UsageError(f"{flag}: none of the tasks ({', '.join(t.name for t in tasks)}) takes a {arg.replace('_', ' ')} "
                             "(the harmful_rate family does)")
