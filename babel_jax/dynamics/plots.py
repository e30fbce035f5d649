"""Figure helpers shared by the reports: the stage colours and an atomic PNG save."""

from __future__ import annotations

import os

STAGE_COLOURS = {'translation': '#cfe8ff', 'transition': '#ffe2c4', 'stabilization': '#d9f2d9'}


def pyplot():
  """matplotlib's pyplot on the file-only backend (no display needed)."""
  import matplotlib
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt
  return plt


def save_figure(fig, report_dir: str, name: str, dpi: int = 110) -> str:
  """Saves a figure as report_dir/name via a temporary file; returns name."""
  plt = pyplot()
  fig.tight_layout()
  tmp = os.path.join(report_dir, f'.{name}.tmp.png')
  fig.savefig(tmp, dpi=dpi)
  plt.close(fig)
  os.replace(tmp, os.path.join(report_dir, name))
  return name


def stage_bands(ax, stages) -> None:
  """Shades the Translation / Transition / Stabilization bands of a `Stages` on an axis."""
  for band in stages.bands:
    ax.axvspan(band.start, band.end, color=STAGE_COLOURS[band.name], alpha=0.6, label=band.name)
