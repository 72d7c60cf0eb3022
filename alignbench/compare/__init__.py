"""Which model is better: pairwise judging of runs on their shared samples (``alignbench compare``).

``inputs`` (runs, responses, pairs), ``judging`` (jury or reward model -> pairs.jsonl lines),
``summary`` (win rates, Bradley-Terry, Elo, position bias, agreement), ``pipeline`` (files, resume).
"""
