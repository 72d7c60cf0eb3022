"""The statistics every number carries: ``intervals`` (Wilson and bootstrap CIs, summaries),
``paired`` (paired deltas and McNemar, shared by drift and gate), ``power`` (minimum detectable change,
Benjamini-Hochberg), ``agreement`` (Cohen's and Fleiss' kappa, Krippendorff's alpha), ``jury_agreement``
(agreement of an LLM jury's members) and ``ratings`` (Bradley-Terry and Elo from pairwise verdicts).
"""
