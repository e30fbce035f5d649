# Sourced by the GPU launch scripts (gpu.sh, gpu_bench.sh), never on CPU hosts: settings from the
# JAX GPU performance guide and NVIDIA's JAX-Toolbox notes. Values already in the environment win.
# - JAX preallocates 75% of GPU memory by default; 0.92 leaves room for cuDNN / cuBLAS workspaces
#   and lets the 1.3B step run with less rematerialisation (memory_stats reports this limit).
export XLA_PYTHON_CLIENT_MEM_FRACTION="${XLA_PYTHON_CLIENT_MEM_FRACTION:-0.92}"
# - The latency-hiding scheduler overlaps FSDP's all-gathers and reduce-scatters with compute
#   (several GPUs); on one GPU it changes nothing. Off by default in XLA:GPU.
case " ${XLA_FLAGS:-} " in
  *--xla_gpu_enable_latency_hiding_scheduler*) ;;
  *) export XLA_FLAGS="${XLA_FLAGS:+$XLA_FLAGS }--xla_gpu_enable_latency_hiding_scheduler=true" ;;
esac
# - Compiled programs persist across runs (a rerun of the bench or a resumed study skips most
#   compilation); --mode experiment also keeps one per study directory.
export JAX_COMPILATION_CACHE_DIR="${JAX_COMPILATION_CACHE_DIR:-${HOME:-/tmp}/.cache/babel_jax/jax_cache}"
