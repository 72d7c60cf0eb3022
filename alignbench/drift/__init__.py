"""Alignment drift between a base and a tuned model.

* ``compare``: paired per-sample deltas (``alignbench.paired``: McNemar exact or permutation p, the CI it inverts), per category, flip lists;
* ``perturbation``: refusal flips under paraphrase, jailbreak wrappers and decoding changes;
* ``token_shift``: URIAL token-distribution shift (base rank of the tuned model's greedy tokens, KL);
* ``urial``: URIAL in-context alignment of a base model (``--system-prompt urial``), the baseline;
* ``pipeline``: the ``alignbench drift`` command's work and the files it writes.
"""
