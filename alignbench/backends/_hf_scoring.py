"""Log-likelihood scoring of the hf backend (a mixin of ``HFBackend``): lm-evaluation-harness's windows
and numbers (``alignbench.backends._loglik``), with a prompt prefix shared by several requests run once
and its key/value cache reused (``alignbench.backends._prefix``), checked once per model against the
full computation."""

from __future__ import annotations

import sys
from typing import Any

from alignbench.backends._loglik import TokenLogprobs, encode_pair, scoring_window
from alignbench.backends._prefix import CacheUnusable, PrefixScorer, plan
from alignbench.types import Loglikelihood, LoglikelihoodRequest


class HFScoring:
    """``loglikelihood`` and ``continuation_logprobs`` over the attributes HFBackend sets up: ``model``,
    ``tokenizer``, ``_torch``, ``_encode``, ``_in_batches``, ``pad_id``, ``input_device``, ``max_length``,
    ``prefix_token_id``, ``batch_size``, ``shared_prefix``, ``_prefix``, ``_prefix_verified``."""

    model: Any
    tokenizer: Any
    _torch: Any
    _prefix: Any
    _prefix_verified: bool
    shared_prefix: bool

    def _pairs(self, requests: list[LoglikelihoodRequest]) -> list[tuple[list[int], list[int]]]:
        return [encode_pair(self._encode, r.context, r.continuation, self.prefix_token_id) for r in requests]

    def _finish(self, logits: Any, cont: list[int], full: bool) -> Any:
        """The result for one request from the logits at its scored positions ``[n_cont, vocab]``."""
        torch = self._torch
        lp = torch.log_softmax(logits.float(), dim=-1)
        if full:
            return lp.cpu()
        target = torch.tensor(cont, dtype=torch.long, device=lp.device)
        return float(lp.gather(1, target[:, None]).sum()), bool((lp.argmax(dim=-1) == target).all())

    def _score(self, pairs: list[tuple[list[int], list[int]]], full: bool) -> list[Any]:
        """Per pair: (continuation log-probs [n_cont, vocab] as float32 tensor on CPU if ``full``, else
        (sum of continuation log-probs, all greedy)). Shared prompt prefixes run once (``_prefix``)."""
        inputs = [scoring_window(c, k, self.max_length) for c, k in pairs]
        out: list[Any] = [None] * len(pairs)
        todo = list(range(len(pairs)))
        if self.shared_prefix and len(pairs) > 1:
            todo = self._score_shared(pairs, inputs, full, out)
        if todo:
            for i, v in zip(todo, self._score_plain([pairs[i] for i in todo], [inputs[i] for i in todo], full)):
                out[i] = v
        return out

    def _score_shared(self, pairs: list[tuple[list[int], list[int]]], inputs: list[list[int]], full: bool,
                      out: list[Any]) -> list[int]:
        """Fill ``out`` through the shared-prefix scorer; returns the indices left to the plain path.

        The first use compares two requests with the plain computation; a model whose cache cannot be
        reused (an error, or a different number) is reported once and scored in full from then on.
        """
        torch = self._torch
        n = [len(k) for _, k in pairs]
        try:
            if self._prefix is None:
                self._prefix = PrefixScorer(self.model, self.pad_id, self.input_device, self._in_batches, lambda: self.batch_size)
            clusters, plain = plan(inputs, n)
            got = self._prefix.score(inputs, n, clusters, lambda logits, i: self._finish(logits, pairs[i][1], full))
            if not self._prefix_verified and got:
                # the requests with the shortest and the longest context: a short one sits beside a gap in the cache
                by_len = sorted(got, key=lambda i: len(inputs[i]) - n[i])
                check = sorted({by_len[0], by_len[-1]})
                for i, ref in zip(check, self._score_plain([pairs[i] for i in check], [inputs[i] for i in check], full)):
                    a, b = (got[i].sum(), ref.sum()) if full else (got[i][0], ref[0])
                    if not abs(float(a) - float(b)) <= 1e-4 + 1e-6 * abs(float(b)):  # a few float32 ulps of the sum
                        raise CacheUnusable(f"reusing it changed a score by {abs(float(a) - float(b)):.2g} nats")
                self._prefix_verified = True
        except torch.cuda.OutOfMemoryError:
            raise
        except (CacheUnusable, TypeError, ValueError, AttributeError, IndexError, RuntimeError) as exc:
            self.shared_prefix = False
            why = " ".join(str(exc).split())[:160] or exc.__class__.__name__
            print(f"alignbench: hf:{self.target}: the model's key/value cache cannot be reused for shared prompt prefixes "
                  f"({why}); scoring every request in full", file=sys.stderr)
            return list(range(len(pairs)))
        for i, v in got.items():
            out[i] = v
        return plain

    def _score_plain(self, pairs: list[tuple[list[int], list[int]]], inputs: list[list[int]], full: bool) -> list[Any]:
        """Every window run in full, right-padded batches sorted by length."""
        torch = self._torch
        order = sorted(range(len(pairs)), key=lambda i: (-(len(pairs[i][0]) + len(pairs[i][1])), i))

        def run(batch: list[int]) -> list[tuple[int, Any]]:
            width = max(len(inputs[i]) for i in batch)
            ids = torch.tensor([inputs[i] + [self.pad_id] * (width - len(inputs[i])) for i in batch], dtype=torch.long)
            mask = torch.tensor([[1] * len(inputs[i]) + [0] * (width - len(inputs[i])) for i in batch], dtype=torch.long)
            with torch.inference_mode():
                logits = self.model(input_ids=ids.to(self.input_device), attention_mask=mask.to(self.input_device)).logits
                res = []
                for row, i in enumerate(batch):
                    cont = pairs[i][1]
                    n_in = len(inputs[i])
                    res.append((i, self._finish(logits[row, n_in - len(cont):n_in], cont, full)))
            return res

        out: list[Any] = [None] * len(pairs)
        for i, v in self._in_batches(order, run):
            out[i] = v
        return out

    def loglikelihood(self, requests: list[LoglikelihoodRequest]) -> list[Loglikelihood]:
        pairs = self._pairs(requests)
        scored = self._score(pairs, full=False)
        return [Loglikelihood(logprob=s[0], is_greedy=s[1], num_tokens=len(p[1])) for p, s in zip(pairs, scored)]

    def continuation_logprobs(self, requests: list[LoglikelihoodRequest]) -> list[TokenLogprobs]:
        """Full-vocabulary log-probabilities at every continuation position (see ``TokenLogprobs``).

        Same tokenisation, truncation and numbers as ``loglikelihood()``: for each request,
        ``result.total == loglikelihood([request])[0].logprob``. Not cached; memory is
        ``n_tokens x vocab x 4`` bytes per request.
        """
        import numpy as np

        pairs = self._pairs(requests)
        rows = self._score(pairs, full=True)
        return [TokenLogprobs(token_ids=np.asarray(cont, dtype=np.int64), logprobs=lp.numpy().astype(np.float32, copy=False),
                              tokens=[self.tokenizer.decode([t]) for t in cont])
                for (_, cont), lp in zip(pairs, rows)]
