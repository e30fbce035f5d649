"""Checkpoint-streaming probes: logit lens, LAPE neurons, stage detection and the report."""
