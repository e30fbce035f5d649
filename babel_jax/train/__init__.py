"""Training: state, optimizer, jitted step, metrics and the resumable loop."""
