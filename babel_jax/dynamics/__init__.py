"""Interpret (numpy only): measured curves in, conclusions out.

curves.py (the typed Curves of a run, loaded from its directory) -> stages.py (the stage rule)
and eq1.py (the one Eq. 1) -> analysis.py (what one run's curves say) -> run_report.py and
study_report.py; stats.py holds the intervals over seeds, transfer.py |P∩C|/|C|. Nothing here
trains, probes or decides a mixture; docs/method.md explains every choice.
"""
