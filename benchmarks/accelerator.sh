#!/usr/bin/env bash
# The prepared accelerator check: on a machine with a GPU or TPU, in one call and under 8 minutes,
#   1-3. the moons (full batch), mini-batch and digits sweeps: the project's engine against a
#        hand-written jax.jit(jax.vmap(train)) on the same work (benchmarks/sweep_throughput.py,
#        contenders "project API" and "expert jit(vmap)", with its run-by-run correctness checks);
#   4.   a CNN sweep (examples/digits_cnn.toml: learning rates x seeds) through the engine and
#        through a hand-written jit(vmap) of the same network (benchmarks/device_check.py cnn);
# each printing its runs/s, the ratio to the hand-written jit(vmap) and the peak device memory
# (jax.devices()[0].memory_stats()["peak_bytes_in_use"]).
#
#   bash benchmarks/accelerator.sh               # needs a GPU/TPU; on a CPU-only machine it says so, exits 0
#   bash benchmarks/accelerator.sh --cpu-smoke   # the same steps at a tiny size on any machine (seconds to minutes)
#   SIZE=small bash benchmarks/accelerator.sh    # sweep_throughput.py's --size (default full)
#
# Log: ${OUT:-/tmp}/accelerator.log (everything printed), JSON of each throughput step beside it.
# Every step runs under `timeout` (STEP_SECONDS, below, cut to what is left of a 7 min 45 s
# budget); a step that runs out is reported and the next one starts, so the whole script stays
# under 8 minutes. Exit status: 0 when every step finished and passed its checks, 1 otherwise.
set -u -o pipefail

cd "$(dirname "$0")/.." || exit 1
MODE=accelerator
case "${1:-}" in
  "") ;;
  --cpu-smoke) MODE=cpu-smoke ;;
  -h|--help) sed -n '2,/^set /p' "$0" | grep '^#' | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) echo "accelerator.sh: unknown option '$1'; valid: --cpu-smoke, --help" >&2; exit 2 ;;
esac

OUT_DIR="${OUT:-/tmp}"
mkdir -p "$OUT_DIR" || exit 1
LOG="$OUT_DIR/accelerator.log"
: > "$LOG"
PY="${PYTHON:-python}"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

say() { echo "$@" | tee -a "$LOG"; }

DEADLINE=$((SECONDS + 465))  # every step's timeout is cut to what is left of 7 min 45 s
BACKEND="$(timeout 60 "$PY" benchmarks/device_check.py backend 2>>"$LOG")"
if [ -z "$BACKEND" ]; then
  say "accelerator.sh: could not start JAX (see $LOG)"
  exit 1
fi
if [ "$MODE" = accelerator ] && [ "$BACKEND" = cpu ]; then
  say "accelerator.sh: no GPU or TPU here (jax.default_backend() is 'cpu'): nothing measured."
  say "  Run it on a machine with an accelerator and jax's CUDA or TPU build, or try the steps with --cpu-smoke."
  exit 0
fi

if [ "$MODE" = cpu-smoke ]; then
  SIZE=tiny; STEP_SECONDS=(300 300 300 300); CNN_ARGS=(--seeds 1 --epochs 2 --reps 1)
else
  SIZE="${SIZE:-full}"; STEP_SECONDS=(100 120 70 140); CNN_ARGS=(--seeds 16 --reps 3)
fi
CONTENDERS="project API,expert jit(vmap)"

say "# accelerator check ($MODE) on backend '$BACKEND', $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
FAILED=0
run_step() {  # name, seconds, command...
  local name="$1" seconds="$2"; shift 2
  local left=$((DEADLINE - SECONDS))
  [ "$MODE" = accelerator ] && [ "$seconds" -gt "$left" ] && seconds=$left
  say ""
  if [ "$seconds" -lt 5 ]; then
    say "### $name: SKIPPED, no time left in the 8-minute budget"; FAILED=1; return
  fi
  say "### $name (at most ${seconds}s): $*"
  local start=$SECONDS
  timeout --kill-after=10 "$seconds" "$@" 2>&1 | tee -a "$LOG"
  local status=${PIPESTATUS[0]}
  if [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; then
    say "### $name: TIMED OUT after ${seconds}s (partial output above)"; FAILED=1
  elif [ "$status" -ne 0 ]; then
    say "### $name: FAILED (exit $status)"; FAILED=1
  else
    say "### $name: done in $((SECONDS - start))s"
  fi
}

i=0
for problem in moons minibatch digits; do
  run_step "$problem sweep" "${STEP_SECONDS[$i]}" "$PY" benchmarks/device_check.py throughput \
    --size "$SIZE" --problems "$problem" --contenders "$CONTENDERS" --out "$OUT_DIR/accelerator-$problem.json"
  i=$((i + 1))
done
run_step "CNN sweep" "${STEP_SECONDS[3]}" "$PY" benchmarks/device_check.py cnn "${CNN_ARGS[@]}"

say ""
say "## ratios (column 'x expert jit(vmap)': project API / expert jit(vmap), median [range] over rounds), checks, peak device memory"
grep -E "^\| (project API|expert jit\(vmap\))|^## |^  (project API|expert jit\(vmap\)): [0-9.]+ runs/s|ratio project|^  check: |all checks passed|SOME CHECKS FAILED|peak device memory|CNN sweep skipped" "$LOG" \
  | grep -v "^## ratios" | tee -a "$LOG.summary"
cat "$LOG.summary" >> "$LOG" 2>/dev/null; rm -f "$LOG.summary"
say "log: $LOG"
exit "$FAILED"
