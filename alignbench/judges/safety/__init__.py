"""Published safety classifiers as judges, one module per input format.

Every kind reproduces its classifier's own input format (a template file under
``judges/templates/safety/`` that names its source, or the model's chat template for Llama Guard),
runs greedy on any backend, and parses the output strictly (``_classifier.ClassifierJudge``).
"""

from alignbench.judges.safety import (  # noqa: F401  (each module registers its judge kind)
    harmbench,
    jailbreakbench,
    llamaguard,
    shieldlm,
    strongreject,
    wildguard,
    xstest,
)
