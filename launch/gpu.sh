#!/usr/bin/env bash
# GPU hosts: one host with several GPUs, or several hosts joined by jax.distributed.
#
# Usage: bash launch/gpu.sh [options] [-- MAIN_ARGS...]
#   one host (all its GPUs form the mesh):   bash launch/gpu.sh -- --config configs/gpt2_1p3b.py:8xh100 --workdir runs/x
#   several hosts over ssh:                  bash launch/gpu.sh --hosts h0,h1 [--port 12355] -- ...
#     (process i runs on host i; h0 is the coordinator; the code must sit at REMOTE_DIR on each)
#   under SLURM (srun sets the process ids): bash launch/gpu.sh --slurm -- ...
#   options (or environment): --hosts HOSTS  --port PORT (12355)  --remote-dir REMOTE_DIR ($PWD)
#     --slurm  --dry-run (DRY_RUN=1: print the commands)
#     GPU_EXTRA: setup.sh's extra, 'cuda13' (CUDA 13 wheels, driver >= 580) or 'gpu' (CUDA 12);
#     default: from this host's driver version. Every process sources launch/gpu_env.sh (XLA
#     flags, memory fraction, compilation cache).
# The workdir must be on storage every host sees (NFS, GCS); each host reads only its own rows
# of every batch, and checkpoints are written once for all hosts.
set -euo pipefail
cd "$(dirname "$0")/.."
HOSTS="${HOSTS:-}"; PORT="${PORT:-12355}"; REMOTE_DIR="${REMOTE_DIR:-$PWD}"; DRY_RUN="${DRY_RUN:-0}"
SLURM=0
while [ $# -gt 0 ]; do
  case "$1" in
    --hosts) HOSTS="$2"; shift 2 ;;
    --port) PORT="$2"; shift 2 ;;
    --remote-dir) REMOTE_DIR="$2"; shift 2 ;;
    --slurm) SLURM=1; shift ;;
    --dry-run) DRY_RUN=1; shift ;;
    --) shift; break ;;
    *) echo "gpu.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
if [ -z "${GPU_EXTRA:-}" ]; then
  GPU_EXTRA=gpu
  driver="$(nvidia-smi --query-gpu=driver_version --format=csv,noheader 2>/dev/null | head -1 || true)"
  [ "${driver%%.*}" -ge 580 ] 2>/dev/null && GPU_EXTRA=cuda13
fi
run() {
  printf '+'; printf ' %q' "$@"; printf '\n'
  [ "$DRY_RUN" = 1 ] || "$@"
}
MAIN=(.venv/bin/python -m babel_jax.main "$@")
if [ "$SLURM" = 1 ]; then
  run srun --ntasks-per-node=1 bash -c "cd $REMOTE_DIR && bash launch/setup.sh $GPU_EXTRA >/dev/null && source launch/gpu_env.sh && $(printf '%q ' "${MAIN[@]}")--distributed"
elif [ -z "$HOSTS" ]; then
  [ "$DRY_RUN" = 1 ] || bash launch/setup.sh "$GPU_EXTRA"
  source launch/gpu_env.sh
  run "${MAIN[@]}"
else
  IFS=, read -r -a H <<< "$HOSTS"
  COORD="${H[0]}:$PORT"
  pids=()
  for i in "${!H[@]}"; do
    cmd="cd $REMOTE_DIR && bash launch/setup.sh $GPU_EXTRA >/dev/null && source launch/gpu_env.sh && $(printf '%q ' "${MAIN[@]}")"
    cmd+="--coordinator_address=$COORD --num_processes=${#H[@]} --process_id=$i"
    if [ "$DRY_RUN" = 1 ]; then
      run ssh "${H[$i]}" "$cmd"
    else
      run ssh "${H[$i]}" "$cmd" 2>&1 | sed "s/^/[${H[$i]}] /" &
      pids+=($!)
    fi
  done
  status=0
  for p in "${pids[@]}"; do wait "$p" || status=1; done
  exit $status
fi
