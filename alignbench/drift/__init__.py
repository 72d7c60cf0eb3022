"""Alignment drift between a base and a tuned model.

* ``compare``: paired per-sample deltas (``alignbench.stats.paired``: McNemar exact or permutation p, the CI it inverts), per category, flip lists;
* ``token_shift``: URIAL token-distribution shift (base rank of the tuned model's greedy tokens, KL);
* ``pipeline``: the ``alignbench drift`` command's work and the files it writes.

Refusal flips under paraphrase, jailbreak wrappers and decoding changes are a task's scorer
(``alignbench.scorers.perturbation``); URIAL in-context alignment of a base model, the baseline, is a
prompt option of every run (``--system-prompt urial``, ``alignbench.run.urial``).
"""
