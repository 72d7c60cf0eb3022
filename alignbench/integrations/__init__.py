"""Where alignbench meets training loops and experiment trackers.

* ``callback``: ``AlignbenchCallback``, a ``transformers.TrainerCallback`` that evaluates the model being
  trained, in memory, and logs through the trainer (optionally stopping on a failed gate);
* ``trackers``: the one small interface of the experiment trackers, with one module each:
  ``wandb_tracker``, ``mlflow_tracker``, ``tensorboard_tracker`` (extras of the same names);
* ``payload``: what is sent (metrics with CI bounds, config, samples); ``masking``: what never is (secrets);
* ``tracking``: what ``--log`` sends for eval, track, compare and gate.

``AlignbenchCallback`` is imported on first use, so ``import alignbench.integrations`` needs no transformers.
"""

from __future__ import annotations

from typing import Any

__all__ = ["AlignbenchCallback"]


def __getattr__(name: str) -> Any:
    if name == "AlignbenchCallback":
        from alignbench.integrations.callback import AlignbenchCallback

        return AlignbenchCallback
    raise AttributeError(f"module 'alignbench.integrations' has no attribute {name!r}")
