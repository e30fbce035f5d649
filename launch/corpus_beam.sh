#!/usr/bin/env bash
# Builds a corpus (--mode corpus) as an Apache Beam pipeline: on this machine (DirectRunner), on
# Google Cloud Dataflow or on a Flink cluster. Same corpus, byte for byte, as the local builder
# (docs/beam.md).
#
# Usage: bash launch/corpus_beam.sh --runner direct|dataflow|flink [options] [-- MAIN_ARGS...]
#   --config FILE        the config (default configs/corpus_debian.py)
#   --workdir DIR        the run folder; the corpus goes to DIR/corpus (default runs/corpus_beam).
#                        With dataflow or flink it must be storage the workers and this machine
#                        share (a GCS FUSE or NFS mount): workers write the shards there.
#   direct:   --workers N          worker processes (default: nproc)
#   dataflow: --project P --region R --temp-location gs://BUCKET/tmp   (required)
#             --num-workers N  --max-num-workers N  --machine-type T
#             --sdk-container-image IMAGE   (or, by default, a babel_jax wheel built here and
#                                            shipped with extra_packages)
#   flink:    --flink-master HOST:PORT     (required)  --parallelism N
#             --environment-type LOOPBACK|DOCKER|PROCESS (default LOOPBACK: the SDK workers run
#             in this process, for a small cluster or a test; DOCKER on a real cluster)
#   --dry-run (DRY_RUN=1): print the command, run nothing;  -h, --help: this text
# MAIN_ARGS go to babel_jax.main as they are (e.g. --config.corpus.max_bytes_per_language=1e9).
# Option values must not contain commas (corpus.beam_options is a comma-separated list).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNNER=""; CONFIG="configs/corpus_debian.py"; WORKDIR="runs/corpus_beam"; DRY_RUN="${DRY_RUN:-0}"
WORKERS="$(nproc 2>/dev/null || echo 2)"; PROJECT=""; REGION=""; TEMP=""; NUM_WORKERS=""
MAX_WORKERS=""; MACHINE=""; IMAGE=""; FLINK_MASTER=""; PARALLELISM=""; ENV_TYPE="LOOPBACK"
die() { echo "corpus_beam.sh: $*" >&2; exit 2; }
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
need() { [ $# -ge 2 ] && [ -n "$2" ] || die "$1 needs a value (see --help)"; }
while [ $# -gt 0 ]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    --runner) need "$@"; RUNNER="$2"; shift 2 ;;
    --config) need "$@"; CONFIG="$2"; shift 2 ;;
    --workdir) need "$@"; WORKDIR="$2"; shift 2 ;;
    --workers) need "$@"; WORKERS="$2"; shift 2 ;;
    --project) need "$@"; PROJECT="$2"; shift 2 ;;
    --region) need "$@"; REGION="$2"; shift 2 ;;
    --temp-location) need "$@"; TEMP="$2"; shift 2 ;;
    --num-workers) need "$@"; NUM_WORKERS="$2"; shift 2 ;;
    --max-num-workers) need "$@"; MAX_WORKERS="$2"; shift 2 ;;
    --machine-type) need "$@"; MACHINE="$2"; shift 2 ;;
    --sdk-container-image) need "$@"; IMAGE="$2"; shift 2 ;;
    --flink-master) need "$@"; FLINK_MASTER="$2"; shift 2 ;;
    --parallelism) need "$@"; PARALLELISM="$2"; shift 2 ;;
    --environment-type) need "$@"; ENV_TYPE="$2"; shift 2 ;;
    --dry-run) DRY_RUN=1; shift ;;
    --) shift; break ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done
for value in "$PROJECT" "$REGION" "$TEMP" "$MACHINE" "$IMAGE" "$FLINK_MASTER" "$ENV_TYPE"; do
  case "$value" in *,*) die "option value '$value' contains a comma" ;; esac
done
OPTS=()
case "$RUNNER" in
  direct)
    [[ "$WORKERS" =~ ^[1-9][0-9]*$ ]] || die "--workers must be a positive number, not '$WORKERS'"
    OPTS=(runner=DirectRunner "direct_num_workers=$WORKERS" direct_running_mode=multi_processing) ;;
  dataflow)
    missing=()
    [ -n "$PROJECT" ] || missing+=(--project)
    [ -n "$REGION" ] || missing+=(--region)
    [ -n "$TEMP" ] || missing+=(--temp-location)
    [ ${#missing[@]} -eq 0 ] || die "--runner dataflow needs ${missing[*]}"
    [[ "$TEMP" == gs://* ]] || die "--temp-location must be a gs:// path, not '$TEMP'"
    OPTS=(runner=DataflowRunner "project=$PROJECT" "region=$REGION" "temp_location=$TEMP")
    [ -z "$NUM_WORKERS" ] || OPTS+=("num_workers=$NUM_WORKERS")
    [ -z "$MAX_WORKERS" ] || OPTS+=("max_num_workers=$MAX_WORKERS")
    [ -z "$MACHINE" ] || OPTS+=("machine_type=$MACHINE")
    if [ -n "$IMAGE" ]; then
      OPTS+=("sdk_container_image=$IMAGE")
    else
      OPTS+=("extra_packages=dist/babel_jax-0.1.0-py3-none-any.whl")
    fi ;;
  flink)
    [ -n "$FLINK_MASTER" ] || die "--runner flink needs --flink-master HOST:PORT"
    OPTS=(runner=FlinkRunner "flink_master=$FLINK_MASTER" "environment_type=$ENV_TYPE")
    [ -z "$PARALLELISM" ] || OPTS+=("parallelism=$PARALLELISM") ;;
  "") die "--runner is required: direct, dataflow or flink (see --help)" ;;
  *) die "--runner must be direct, dataflow or flink, not '$RUNNER'" ;;
esac
run() {
  printf '+'; printf ' %q' "$@"; printf '\n'
  [ "$DRY_RUN" = 1 ] || "$@"
}
if [ "$DRY_RUN" != 1 ]; then
  bash launch/setup.sh beam
  if [ "$RUNNER" = dataflow ] && [ -z "$IMAGE" ]; then
    run .venv/bin/python -m pip wheel -q --no-deps -w dist .
  fi
  source launch/cpu_env.sh
fi
joined="$(IFS=,; echo "${OPTS[*]}")"
run .venv/bin/python -m babel_jax.main --config "$CONFIG" --workdir "$WORKDIR" --mode corpus \
  --config.corpus.runner=beam "--config.corpus.beam_options=$joined" "$@"
