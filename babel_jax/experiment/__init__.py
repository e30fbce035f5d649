"""Orchestrate: the study's phases (driver.py) and the runs they make (runs.py)."""
