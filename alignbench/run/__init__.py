"""One evaluation, from settings to run folder.

``settings`` (what was asked: ``EvalConfig``, ``PreparedTask``), ``task_setup`` (samples, prompts and
scorer arguments of a task), ``evaluate`` (the loop: model, judges, per-sample metrics, files),
``folder`` (run ids, opening a folder), ``info`` (run.json), ``resume`` (what a resumed run may change),
``provenance`` (versions, git commit, scrubbing secrets), ``urial`` (URIAL's in-context alignment
prompt) and ``best_of`` (the win rate of the epoch a reward model picks). A run folder's files and
records (``RunDir``, epochs, accounting) are ``alignbench.records``; the SQLite generation cache is
``alignbench.backends.cache``.
"""
