"""Figure helpers shared by the reports: the stage colours, an atomic PNG save, and curves as
TensorBoard scalars (so runs overlay in TensorBoard)."""

from __future__ import annotations

import os
import shutil

STAGE_COLOURS = {'translation': '#cfe8ff', 'transition': '#ffe2c4', 'stabilization': '#d9f2d9'}


def pyplot():
  """matplotlib's pyplot on the file-only backend (no display needed)."""
  import matplotlib  # heavy: figures only; dynamics imports numpy alone
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # heavy: figures only
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


def scalars(tb_dir: str, curves: dict[str, tuple]) -> None:
  """Writes {tag: (steps, values)} as TensorBoard scalars under tb_dir, replacing what a
  previous report wrote there (the curves are derived, so they are rewritten whole)."""
  from tensorboardX import SummaryWriter  # heavy (protobuf): a report's scalars only
  shutil.rmtree(tb_dir, ignore_errors=True)
  writer = SummaryWriter(tb_dir)
  for tag, (steps, values) in curves.items():
    for step, value in zip(steps, values):
      if value is not None and value == value:  # skips None and NaN
        writer.add_scalar(tag, float(value), int(step))
  writer.close()
