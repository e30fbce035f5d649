"""Transfer from the primary language: |P ∩ C| / |C| on solved problems, and effective data
transferred on held-out loss.

P: problems the primary-only model solves (in the primary language) that an L-only model fails
(in L), the "Python-specific" problems. C: problems a checkpoint solves in L. |P∩C|/|C| is the
share of correct L answers that need the primary language's knowledge (docs/method.md).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np


def python_specific(primary_solved: dict[str, bool], target_solved: dict[str, bool]) -> list[str]:
  """P from two runs' per_problem.json entries: solved by the first, failed by the second."""
  return sorted(t for t, ok in primary_solved.items() if ok and not target_solved.get(t, False))


def knowledge_transfer(specific: set[str], solved: set[str]) -> float | None:
  """|P ∩ C| / |C|; None when the checkpoint solves nothing."""
  if not solved:
    return None
  return len(specific & solved) / len(solved)


# Effective data transferred (Hernandez et al. 2021, "Scaling Laws for Transfer") ---------------
#
# Their names: D_F, the fine-tuning data (tokens of L the continual run has seen); D_E, the
# effective data (tokens a from-scratch run on L needs to reach the continual run's loss);
# D_T = D_E - D_F, the data transferred from the primary language. The reading is D_T / D_F.

@dataclasses.dataclass(frozen=True)
class EffectiveTransfer:
  """Per continual checkpoint: D_F, D_E, D_T = D_E - D_F and the reading D_T / D_F. Where the
  continual run is below every loss the from-scratch reference reached, D_E (and so D_T / D_F)
  is only a lower bound: `censored`, and to be kept out of intervals and tests."""
  fine_tuning_tokens: np.ndarray  # [C] D_F, tokens of L seen by the continual run
  effective_tokens: np.ndarray  # [C] D_E, from-scratch tokens to reach the same loss
  transferred_tokens: np.ndarray  # [C] D_T = D_E - D_F
  fraction: np.ndarray  # [C] D_T / D_F (NaN at D_F = 0)
  censored: np.ndarray  # [C] bool: D_E only a lower bound (beyond the reference run)

  def to_dict(self) -> dict[str, Any]:
    return {k: v.tolist() for k, v in dataclasses.asdict(self).items()}

  @property
  def exact(self) -> np.ndarray:
    """[C] bool: a reading that is a number, not a bound (finite and not censored)."""
    return np.isfinite(self.fraction) & ~self.censored


def tokens_to_reach(ref_tokens, ref_loss, loss: float) -> tuple[float, bool]:
  """D_E: tokens the reference (from-scratch) run needs to reach `loss`: the first crossing of
  its best-so-far loss, interpolated linearly in log tokens between checkpoints (linearly from
  the first checkpoint when it is at 0 tokens). (tokens, censored): censored when the reference
  never got that low, and then the tokens are its last checkpoint's (a lower bound)."""
  t = np.asarray(ref_tokens, np.float64)
  best = np.minimum.accumulate(np.asarray(ref_loss, np.float64))
  if loss >= best[0]:
    return float(t[0]), False
  if loss < best[-1]:
    return float(t[-1]), True
  i = int(np.argmax(best <= loss))  # first checkpoint at or below the loss
  lo, hi = best[i - 1], best[i]
  w = 1.0 if lo == hi else (lo - loss) / (lo - hi)
  if t[i - 1] <= 0:
    return float(t[i - 1] + w * (t[i] - t[i - 1])), False
  return float(np.exp(np.log(t[i - 1]) + w * (np.log(t[i]) - np.log(t[i - 1])))), False


def effective_transfer(tokens, loss, ref_tokens, ref_loss) -> EffectiveTransfer:
  """D_T / D_F at every checkpoint of a continual run (tokens D_F, held-out loss of L) against a
  from-scratch run on L (ref_tokens, ref_loss, the same held-out sample)."""
  d_f = np.asarray(tokens, np.float64)
  reached = [tokens_to_reach(ref_tokens, ref_loss, l) for l in np.asarray(loss, np.float64)]
  d_e = np.asarray([r[0] for r in reached], np.float64)
  censored = np.asarray([r[1] for r in reached], bool)
  d_t = d_e - d_f
  with np.errstate(divide='ignore', invalid='ignore'):
    fraction = np.where(d_f > 0, d_t / d_f, np.nan)
  return EffectiveTransfer(d_f, d_e, d_t, fraction, censored)
