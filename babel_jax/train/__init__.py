"""Training: state, optimizer, losses, jitted step, metrics, the resumable loop and --mode plan
(plan.py: a run's per-device memory from abstract shapes, optimizer state included)."""
