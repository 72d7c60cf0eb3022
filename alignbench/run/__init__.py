"""One evaluation, from settings to run folder.

``settings`` (what was asked: ``EvalConfig``, ``PreparedTask``), ``task_setup`` (samples, prompts and
scorer arguments of a task), ``evaluate`` (the loop: model, judges, per-sample metrics, files),
``files`` (a run folder's files, read and written: ``RunDir``), ``folder`` (run ids, opening a folder),
``info`` (run.json), ``resume`` (what a resumed run may change), ``cache`` (the SQLite generation
cache), ``accounting`` (tokens, truncation, model calls), ``provenance`` (versions, git commit,
scrubbing secrets), ``epochs`` and ``best_of`` (repeated generations per prompt).
"""
