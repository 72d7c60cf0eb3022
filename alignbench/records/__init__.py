"""A run's records as every reader sees them: ``files`` (the run folder's run.json, samples.jsonl and
metrics.json, read and written: ``RunDir``), ``epochs`` (how a sample's repeated generations and
clusters group and reduce) and ``accounting`` (tokens, truncation, judge errors and model calls).
"""
