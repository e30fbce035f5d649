"""Error kinds. Each is a mistake the user can fix; `main` prints it as one line, no traceback.

Raise the kind that says where to look: a config field, the data (corpus, sources, tokenizer,
pipeline), a checkpoint or run directory, a mixture, a curve that cannot support a fit, or the
evaluation toolchain. Messages name the file, field or value and what was expected.
"""


class BabelError(Exception):
  """Base of every error the user can act on (printed as `error: <message>`)."""


class ConfigError(BabelError):
  """A config field is unknown, of the wrong type or has an impossible value."""


class DataError(BabelError):
  """The corpus, a source, the tokenizer or the data pipeline cannot be used as configured."""


class CorpusError(DataError):
  """The corpus cannot be built or read as configured; the message names the field or file."""


class SourceError(DataError):
  """A named source or path is missing or unreadable; the message says how to get it."""


class LanguageMapError(DataError):
  """A `corpus.extensions` entry is not of the form '.ext=lang'."""


class ShardError(DataError):
  """A dataset shard is truncated, corrupt or lacks a column; the message names the file."""


class WorkerError(DataError):
  """A parallel corpus build cannot start its worker processes."""


class TokenizerError(DataError):
  """The tokenizer is missing, broken or was trained on another corpus."""


class RunError(BabelError):
  """A run directory lacks what a mode needs (checkpoints, probe results, a config)."""


class CheckpointError(RunError):
  """A checkpoint is missing, from another model, or cannot be restored."""


class StorageError(BabelError):
  """A file cannot be written (a full disk, a quota, a read-only file system); the message names
  the path and the step, and what was written completely before stays usable."""


class TrainingError(BabelError):
  """Training cannot go on (a non-finite loss); the last good checkpoint is kept."""


class MixtureError(BabelError):
  """A mixture spec names an unknown language, has bad weights, or is not valid JSON."""


class FitError(BabelError):
  """A measured curve cannot support a fit (Eq. 1, P*): too short, flat, or not falling."""


class EvaluationError(BabelError):
  """Evaluation cannot run as configured (no translation, no toolchain, no tokenizer)."""
