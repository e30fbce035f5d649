# Sourced by the launch scripts. XLA:CPU allocates each step's large temporaries afresh; glibc
# hands blocks over 32 MiB back to the kernel, so every step page-faults them in again (about
# 15% of a small training step). tcmalloc keeps them, so on CPU hosts we preload it when present.
for lib in /usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4 /usr/lib/aarch64-linux-gnu/libtcmalloc_minimal.so.4; do
  if [ -e "$lib" ] && [[ ":${LD_PRELOAD:-}:" != *tcmalloc* ]]; then
    export LD_PRELOAD="$lib${LD_PRELOAD:+:$LD_PRELOAD}"
    break
  fi
done
# tcmalloc reports large allocations on stderr unless told otherwise.
export TCMALLOC_LARGE_ALLOC_REPORT_THRESHOLD="${TCMALLOC_LARGE_ALLOC_REPORT_THRESHOLD:-1000000000000}"
