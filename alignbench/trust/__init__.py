"""How far a judge can be trusted: ``human_sets`` (public human-labelled sets in their authors'
layouts), ``labelmap`` (what a judge's label means on the refusal and harm sides), ``judge_metrics``
(judge-versus-human agreement, sensitivity, specificity), ``cards`` (judge cards and the Rogan-Gladen
corrected rates they give the metrics a judge decides) and ``train_clf`` (training a light judge from
labels).
"""
