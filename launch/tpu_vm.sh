#!/usr/bin/env bash
# TPU VM lifecycle for babel_jax: create (optionally as a queued resource), sync the code, install,
# run the same `python -m babel_jax.main` on every worker, follow logs, stop, delete.
#
# Usage: bash launch/tpu_vm.sh [options] COMMAND [-- MAIN_ARGS...]
#   COMMAND: create | sync | install | run (foreground, streams every worker) | start (background)
#            | logs | stop | delete | all (create, sync, install, start)
#   options (or environment): --name TPU_NAME  --zone ZONE  --project PROJECT
#     --accelerator ACCELERATOR (v5p-64)  --runtime RUNTIME (v2-alpha-tpuv5)  --queued (QUEUED=1)
#     --spot (SPOT=1)  --remote-dir REMOTE_DIR (babel_jax)  --dry-run (DRY_RUN=1: print commands)
# Example:
#   bash launch/tpu_vm.sh --name babel --zone us-east5-a --accelerator v5p-64 --queued all \
#     -- --config configs/gpt2_1p3b.py:v5p-64 --workdir /mnt/shared/runs/python
# Every worker runs main with --distributed: jax.distributed finds the pod's other hosts itself.
# The workdir must be storage every worker sees (a gcsfuse or NFS mount); gs:// URLs are not read.
set -euo pipefail
cd "$(dirname "$0")/.."
NAME="${TPU_NAME:-}"; ZONE="${ZONE:-}"; PROJECT="${PROJECT:-}"
ACCELERATOR="${ACCELERATOR:-v5p-64}"; RUNTIME="${RUNTIME:-v2-alpha-tpuv5}"
QUEUED="${QUEUED:-0}"; SPOT="${SPOT:-0}"; REMOTE_DIR="${REMOTE_DIR:-babel_jax}"; DRY_RUN="${DRY_RUN:-0}"
COMMAND=""
while [ $# -gt 0 ]; do
  case "$1" in
    --name) NAME="$2"; shift 2 ;;
    --zone) ZONE="$2"; shift 2 ;;
    --project) PROJECT="$2"; shift 2 ;;
    --accelerator) ACCELERATOR="$2"; shift 2 ;;
    --runtime) RUNTIME="$2"; shift 2 ;;
    --queued) QUEUED=1; shift ;;
    --spot) SPOT=1; shift ;;
    --remote-dir) REMOTE_DIR="$2"; shift 2 ;;
    --dry-run) DRY_RUN=1; shift ;;
    --) shift; break ;;
    -*) echo "tpu_vm.sh: unknown option $1" >&2; exit 2 ;;
    *) COMMAND="$1"; shift ;;
  esac
done
MAIN_ARGS=("$@")
[ -n "$COMMAND" ] || { echo "tpu_vm.sh: give a COMMAND (create|sync|install|run|start|logs|stop|delete|all)" >&2; exit 2; }
[ -n "$NAME" ] || { echo "tpu_vm.sh: set --name or TPU_NAME" >&2; exit 2; }
[ -n "$ZONE" ] || { echo "tpu_vm.sh: set --zone or ZONE" >&2; exit 2; }
LOC=(--zone "$ZONE"); [ -n "$PROJECT" ] && LOC+=(--project "$PROJECT")

run() {  # prints the command; executes it unless --dry-run
  printf '+'; printf ' %q' "$@"; printf '\n'
  [ "$DRY_RUN" = 1 ] || "$@"
}
ssh_all() { run gcloud compute tpus tpu-vm ssh "$NAME" "${LOC[@]}" --worker=all --command "$1"; }
main_cmd() {
  local q; q="$(printf ' %q' "${MAIN_ARGS[@]}")"
  echo "cd ~/$REMOTE_DIR && .venv/bin/python -m babel_jax.main --distributed$q"
}

do_create() {
  local spot=(); [ "$SPOT" = 1 ] && spot=(--spot)
  if [ "$QUEUED" = 1 ]; then
    run gcloud compute tpus queued-resources create "$NAME" --node-id "$NAME" "${LOC[@]}" \
      --accelerator-type "$ACCELERATOR" --runtime-version "$RUNTIME" "${spot[@]}"
    echo "waiting for the queued resource to become ACTIVE (Ctrl-C is safe; re-run to go on)"
    if [ "$DRY_RUN" != 1 ]; then
      until gcloud compute tpus queued-resources describe "$NAME" "${LOC[@]}" \
          --format='value(state.state)' | grep -q ACTIVE; do sleep 30; done
    fi
  else
    run gcloud compute tpus tpu-vm create "$NAME" "${LOC[@]}" --accelerator-type "$ACCELERATOR" \
      --version "$RUNTIME" "${spot[@]}"
  fi
}
do_sync() {
  local tarball=/tmp/babel_jax_src.tar.gz
  run git archive --format=tar.gz -o "$tarball" HEAD
  run gcloud compute tpus tpu-vm scp "$tarball" "$NAME:~/babel_jax_src.tar.gz" "${LOC[@]}" --worker=all
  ssh_all "mkdir -p ~/$REMOTE_DIR && tar -xzf ~/babel_jax_src.tar.gz -C ~/$REMOTE_DIR"
}
do_install() { ssh_all "cd ~/$REMOTE_DIR && bash launch/setup.sh tpu"; }
do_run() { ssh_all "$(main_cmd)"; }
do_start() { ssh_all "nohup bash -c '$(main_cmd)' > ~/$REMOTE_DIR/run.log 2>&1 < /dev/null &"; }
do_logs() { run gcloud compute tpus tpu-vm ssh "$NAME" "${LOC[@]}" --worker=0 --command "tail -n 100 -F ~/$REMOTE_DIR/run.log"; }
do_stop() { ssh_all "pkill -TERM -f babel_jax.main || true"; }  # SIGTERM: a checkpoint, then exit
do_delete() {
  if [ "$QUEUED" = 1 ]; then
    run gcloud compute tpus queued-resources delete "$NAME" "${LOC[@]}" --force --quiet
  else
    run gcloud compute tpus tpu-vm delete "$NAME" "${LOC[@]}" --quiet
  fi
}
case "$COMMAND" in
  create|sync|install|run|start|logs|stop|delete) "do_$COMMAND" ;;
  all) do_create; do_sync; do_install; do_start; echo "follow with: bash launch/tpu_vm.sh --name $NAME --zone $ZONE logs" ;;
  *) echo "tpu_vm.sh: unknown command $COMMAND" >&2; exit 2 ;;
esac
