"""The hf backend's decoding hooks for ``transformers.generate``: stop strings, per-row seeded sampling
inside a batch, and the top-k log-probabilities of every generated token."""

from __future__ import annotations

from typing import Any

__all__ = ["cut_at_stop", "StopStrings", "TopLogprobs", "RowSampler"]


def cut_at_stop(text: str, stop: tuple[str, ...]) -> str:
    cut = min((text.find(s) for s in stop if s and s in text), default=-1)
    return text if cut < 0 else text[:cut]


class StopStrings:
    """Marks a row done once its generated text contains any stop string (text is cut later)."""

    def __init__(self, tokenizer: Any, stop: tuple[str, ...], prompt_len: int) -> None:
        self.tokenizer = tokenizer
        self.stop = tuple(s for s in stop if s)
        self.prompt_len = prompt_len
        self.done: Any = None

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        import torch

        if self.done is None:
            self.done = torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
        for row in range(input_ids.shape[0]):
            if not self.done[row]:
                text = self.tokenizer.decode(input_ids[row, self.prompt_len:], skip_special_tokens=True)
                if any(s in text for s in self.stop):
                    self.done[row] = True
        return self.done.clone()


class TopLogprobs:
    """Records the k most likely next tokens (log-probabilities of the model's distribution) at every step."""

    def __init__(self, k: int) -> None:
        self.k = k
        self.steps: list[tuple[Any, Any]] = []

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        values, ids = torch.log_softmax(scores.float(), dim=-1).topk(self.k, dim=-1)
        self.steps.append((values.cpu(), ids.cpu()))
        return scores

    def tokens(self, tokenizer: Any, row: int, ids: list[int], k: int) -> list[dict[str, Any]]:
        """``Generation.token_logprobs`` of one row: each token's text is what it adds to the decoded text
        (so the texts concatenate to the output), its log-probability, and its k best alternatives."""
        import math

        out: list[dict[str, Any]] = []
        prev = ""
        for step, tok in enumerate(ids):
            text = tokenizer.decode(ids[:step + 1], skip_special_tokens=True)
            values, alts = self.steps[step][0][row].tolist(), self.steps[step][1][row].tolist()
            top: dict[str, float] = {}
            for v, a in list(zip(values, alts))[:k]:
                t = tokenizer.decode([a], skip_special_tokens=False)
                top[t] = v if t not in top else max(v, top[t]) + math.log1p(math.exp(-abs(v - top[t])))
            chosen = dict(zip(alts, values)).get(tok)
            out.append({"token": text[len(prev):] if text.startswith(prev) else tokenizer.decode([tok]), "logprob": chosen, "top": top})
            prev = text
        return out


class RowSampler:
    """Sampling inside greedy decoding: each row with temperature > 0 draws its next token with its
    own seeded generator (so a request's sample does not depend on its batch) and leaves only that
    token finite; rows with temperature 0 stay greedy."""

    def __init__(self, temperatures: list[float], top_ps: list[float], seeds: list[int]) -> None:
        self.temperatures = temperatures
        self.top_ps = top_ps
        self.seeds = seeds
        self.generators: list[Any] = []

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        if not self.generators:
            self.generators = [torch.Generator(device=scores.device).manual_seed(s) for s in self.seeds]
        out = scores.clone()
        for row, (t, top_p) in enumerate(zip(self.temperatures, self.top_ps)):
            if t <= 0:
                continue
            probs = torch.softmax(scores[row].float() / t, dim=-1)
            if top_p < 1.0:
                sorted_p, idx = torch.sort(probs, descending=True)
                drop = sorted_p.cumsum(0) - sorted_p > top_p
                sorted_p[drop] = 0.0
                probs = torch.zeros_like(probs).scatter(0, idx, sorted_p)
            token = torch.multinomial(probs, 1, generator=self.generators[row])
            out[row] = float("-inf")
            out[row, token] = 0.0
        return out
