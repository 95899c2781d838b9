#!/usr/bin/env bash
# The benchmark suite's model figures on a GPU machine, CUDA and the same machine's CPU side by side,
# plus the model tests on CUDA. Such a machine has PyTorch but neither Gradio nor FluidSynth, so the
# steps that need them (synthesis, start-up through the app, classroom, overhead) are left out;
# `loading` measures start-up and memory without the web server.
#   Run from the repository root:  OUT=/tmp/gpu bash bench/gpu.sh   (results in $OUT)
set -u
OUT=${OUT:-/tmp/gpu-bench}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 GRADIO_ANALYTICS_ENABLED=False
PY=${PY:-python3}
STEPS=${STEPS:-models,sampling,transformer,batching,loading}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
$PY -c "import sys, torch, numpy; print(sys.version.split()[0], 'torch', torch.__version__, 'numpy', numpy.__version__, 'cuda', torch.cuda.is_available())" | tee -a "$OUT/gpu.txt"
bench() {  # bench DEVICE SECONDS
  timeout "$2" $PY -m studio bench --only "$STEPS" --device "$1" --json > "$OUT/bench-$1.txt" 2> "$OUT/bench-$1.err"
  echo "bench $1: exit $?"
  grep -v '^[ {}"]' "$OUT/bench-$1.txt" | grep -v '^\]' | grep -v '^$'
  tail -3 "$OUT/bench-$1.err"
}
bench cuda "${CUDA_TIMEOUT:-200}"
timeout 90 $PY -m bench.model_threads --device cuda | tee "$OUT/threads-cuda.txt"
timeout "${TEST_TIMEOUT:-150}" $PY -m pytest -q -p no:cacheprovider -o addopts="" --timeout=120 -rf \
  tests/test_gan.py tests/test_arcnn.py tests/test_diffusion.py tests/test_transformer.py tests/test_vae.py \
  tests/test_registry.py tests/test_batching.py tests/test_gan_models.py tests/test_bench.py > "$OUT/tests.txt" 2>&1
echo "tests: exit $?"
grep -E "^(FAILED|ERROR)|passed|failed" "$OUT/tests.txt" | cut -c1-300 | tail -40
bench cpu "${CPU_TIMEOUT:-200}"
