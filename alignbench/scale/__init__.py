"""One evaluation over many processes or machines: ``sharded`` (split a run into shards and run them),
``executors`` (where shards run: local processes or a Ray cluster) and ``merge`` (join shard folders
into one run).
"""
