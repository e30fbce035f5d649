"""pass@k with the unbiased estimator (Chen et al. 2021), per problem and averaged."""

from __future__ import annotations

import numpy as np


def pass_at_k(n: int, c: int, k: int) -> float:
  """Probability that at least one of k samples drawn from n (c of them correct) passes:
  1 - C(n - c, k) / C(n, k), computed as a stable product."""
  if k > n:
    raise ValueError(f'pass@{k} needs at least {k} samples, got {n}')
  if n - c < k:
    return 1.0
  return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def mean_pass_at_k(samples: dict[str, tuple[int, int]], k: int) -> float | None:
  """Mean pass@k over problems {task: (n, c)}; None unless every problem has >= k samples."""
  if not samples or any(n < k for n, _ in samples.values()):
    return None
  return float(np.mean([pass_at_k(n, c, k) for n, c in samples.values()]))
