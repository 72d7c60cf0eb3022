"""Alignment tracked through a training run.

* ``checkpoints``: checkpoint folders (or a glob track expands itself) ordered by training step;
* ``summary``: track.json's ``series`` (each metric against step, with its CI), the paired ``deltas`` of
  each checkpoint against a baseline (``alignbench.stats.paired``, the method of gate and drift) and the
  ``gate`` verdict per checkpoint (``alignbench.gate.rules``);
* ``pipeline``: the ``alignbench track`` command's work: one run per checkpoint on the same samples,
  resumable, and ``DIR/ID/track.json``.

The Trainer callback (``alignbench.integrations.callback``) writes the same folder layout during training.
"""
