"""CI gates over runs: ``rules`` (the gates file and each rule's check against a baseline, paired by
sample) and ``output`` (the Markdown table and JUnit XML of the results).
"""
