#!/usr/bin/env bash
# The GPU measurements, in one call of at most 8 minutes on a machine with one GPU (bench_train.py, 3 ways):
#   (a)+(b)  reference loop vs Duckling recording, the recording and forces overheads, the CUDA graph
#            vs the eager step, the same movie bytes every round                     -> train-cuda.json
#   (c)+(e)  the 10pct run end to end on the synthetic corpus (train, every frame verified), then the
#            analyze stage on its movie on all cores, against a plain read            -> train-cuda-10pct.json
#   (d)      the 100pct training with its movie against a plain write of the same bytes -> train-cuda-100pct.json
#   (f)      first, the CUDA tests of tests/test_train_gpu.py and tests/test_movie.py (into gpu.log)
# Each phase has its own time limit; one that fails or runs out is logged and the others still run.
#
#   bench/gpu.sh --prepare   here, once: what that machine lacks (the isal wheel, the GPT-2 files, the
#                            reference loop) into bench/_work/device, which git ignores; carry that folder
#   bench/gpu.sh             there: results and the log into $OUT (else bench/results); copy the JSON
#                            that comes back into bench/results
#   bench/gpu.sh --dry       here, on the CPU: every phase at tiny sizes, the same code minus CUDA
set -uo pipefail
cd "$(dirname "$0")/.."
KIT=bench/_work/device
SHARED=../shared
MODE=${1:-gpu}
export PYTHONUNBUFFERED=1

if [[ $MODE == --prepare ]]; then
  set -e
  mkdir -p "$KIT/wheels"
  cp "$SHARED/bench/reference_train.py" "$KIT/"
  cp -r "$SHARED/data/gpt2" "$KIT/"
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d "$KIT/wheels" isal==1.9.1
  du -sh "$KIT"
  exit 0
fi

START=$SECONDS
FAILED=0
if [[ $MODE == --dry ]]; then
  RESULTS=${OUT:-$(mktemp -d)}
  REF=$SHARED/bench/reference_train.py GPT2=$SHARED/data/gpt2 SCRATCH=$(mktemp -d)
  COMMON=(--device cpu --graph on --tiny --reference "$REF" --results "$RESULTS" --scratch "$SCRATCH")
  ROUNDS=(--steps 2 --warmup 1 --rounds 2)
  LIMITS=(150 150)
  TOTAL=400
elif [[ $MODE == gpu ]]; then
  RESULTS=${OUT:-bench/results}
  REF=$KIT/reference_train.py GPT2=$KIT/gpt2 SCRATCH=$PWD/bench/_work/scratch  # the disk the repo is on
  [[ -f $REF && -d $GPT2 ]] || { echo "gpu.sh: $KIT is incomplete; run bench/gpu.sh --prepare here first"; exit 2; }
  if ls "$KIT"/wheels/*.whl >/dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
      "$KIT"/wheels/*.whl && export PYTHONPATH=/tmp/site
  fi
  COMMON=(--device cuda --graph auto --reference "$REF" --results "$RESULTS" --scratch "$SCRATCH")
  ROUNDS=(--steps 400 --warmup 40 --rounds 3)
  LIMITS=(140 130)  # (d) gets what is left of TOTAL
  TOTAL=465
else
  echo "usage: bench/gpu.sh [--prepare | --dry]"; exit 2
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} DUCKLING_GPT2_DIR=$GPT2
mkdir -p "$RESULTS" "$SCRATCH"
LOG=$RESULTS/gpu.log
{ date; nvidia-smi 2>/dev/null || echo "no nvidia-smi"; df -h "$SCRATCH" /tmp; nproc; free -g 2>/dev/null
  python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.is_available())"
} >"$LOG" 2>&1

phase() {  # phase NAME LIMIT_S ARGS...: one bench_train.py run under its own time limit
  local name=$1 limit=$2
  shift 2
  echo "== $name (limit ${limit}s, at $((SECONDS - START))s)" | tee -a "$LOG"
  timeout --signal=INT --kill-after=10 "$limit" python3 bench/bench_train.py "${COMMON[@]}" "$@" 2>&1 | tee -a "$LOG" \
    | grep -E "^(train bench|->|Traceback|[A-Za-z]*Error)"
  local rc=${PIPESTATUS[0]}
  [[ $rc == 0 ]] || { echo "== $name failed (exit $rc)" | tee -a "$LOG"; FAILED=1; }
}

if [[ $MODE == gpu ]]; then  # (f) first: the CUDA tests (capture, determinism, the writer's async copy)
  echo "== (f) CUDA tests (limit 90s)" | tee -a "$LOG"
  timeout 90 python3 -m pytest -q -p no:cacheprovider tests/test_movie.py::test_cuda_frames_are_copied_async_and_exact \
    tests/test_train_gpu.py::test_on_a_gpu_the_graph_run_repeats_its_bytes_and_tracks_the_eager_one 2>&1 \
    | tee -a "$LOG" | tail -3
  [[ ${PIPESTATUS[0]} == 0 ]] || { echo "== (f) failed" | tee -a "$LOG"; FAILED=1; }
fi
phase "(a)+(b) interleaved rounds" "${LIMITS[0]}" "${ROUNDS[@]}"
phase "(c)+(e) 10pct end to end, then its analysis" "${LIMITS[1]}" --full-run 10pct
LEFT=$((TOTAL - (SECONDS - START)))
if ((LEFT > 60)); then
  phase "(d) 100pct against a plain write" "$LEFT" --disk-run 100pct --budget $((LEFT - 15))
else
  echo "== (d) skipped: ${LEFT}s left of ${TOTAL}s" | tee -a "$LOG"; FAILED=1
fi
rm -rf "$SCRATCH"
echo "gpu.sh: done in $((SECONDS - START))s, results in $RESULTS$([[ $FAILED == 1 ]] && echo ' (a phase failed: see gpu.log)')"
exit $FAILED
