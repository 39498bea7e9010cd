#!/usr/bin/env bash
# CPU deployment table in one sweep: eager fp32 / channels_last fp32, bf16 / compile fp32 / onnxruntime fp32 /
# openvino fp32, bf16, int8 and int8 with accuracy control for two models at 512x512, with mIoU on the evaluation
# split and parity vs eager fp32; then the matmul peaks of this machine for the `% of own peak` column.
#
#   UNET="checkpoint=<run folder>" scripts/deploy_sweep.sh      # a trained Unet run (default: model=smp, random)
#   PROTOCOL="warmup=5 iterations=195 threads=2" OUT=logs/deploy scripts/deploy_sweep.sh
#
# COMBOS lists backend:precision members, each optionally followed by +key=value overrides of that member alone
# (channels_last:bf16+fold_bn=false: the same backend without BatchNorm folding); `int8-ac` is precision=int8 with
# calibration.accuracy_control.enabled=true (AC="..." adds further calibration.accuracy_control.* overrides to those
# members). PEAK=0 skips
# `benchmark.py peak` (run with PROTOCOL's threads= after the sweep; stored in LOGDIR/benchmark/peaks).
# Records go to $OUT (and to the run folder's benchmark/ for a checkpoint); the markdown table is printed by
# scripts/deploy_table.py from the records written by this sweep; a failed member is a row with its one-line error
# and makes the exit code 1. To publish it, rerun that command with `record=results/<name>.yaml caption='...'
# command='<this sweep's command line>'` (a results record for `benchmark.py render`). Needs
# requirements-openvino.txt.
set -u
PY=${PY:-.venv/bin/python}
OUT=${OUT:-logs/deploy_sweep}
UNET=${UNET:-model=smp}
HRNET=${HRNET-model=hrnet model.width=18}   # HRNET= (empty) sweeps the Unet alone
PROTOCOL=${PROTOCOL:-warmup=5 iterations=195}
EVAL=${EVAL:-evaluate=true}
AC=${AC:-}
PEAK=${PEAK:-1}
# eager fp32 first and last: the drift of the machine over the sweep (speed-ups use the median of the two)
COMBOS=${COMBOS:-eager:fp32 channels_last:fp32+fold_bn=false channels_last:fp32 channels_last:bf16+fold_bn=false channels_last:bf16 compile:fp32 onnxruntime:fp32 openvino:fp32 openvino:bf16 openvino:int8 openvino:int8-ac eager:fp32}
START=$(date +%Y-%m-%dT%H:%M:%S)
echo "sweep start $START; load: $(uptime)"
for model in "$UNET" "$HRNET"; do
  [ -n "$model" ] || continue
  for combo in $COMBOS; do
    member="${combo%%+*}"
    extra="${combo#"$member"}" && extra="${extra//+/ }"
    precision="${member##*:}"
    if [ "$precision" = int8-ac ]; then
      precision=int8 extra="calibration.accuracy_control.enabled=true $AC$extra"
    fi
    # shellcheck disable=SC2086  # word splitting of the override lists is intended
    $PY benchmark.py $model backend="${member%%:*}" precision="$precision" $extra resolution=512x512 $EVAL $PROTOCOL \
      count_flops=true LOGDIR="$OUT" 2>&1 | grep -E "fps|FAILED|record:"
  done
done
echo "sweep end $(date +%Y-%m-%dT%H:%M:%S); load: $(uptime)"
if [ "$PEAK" != 0 ]; then
  threads=$(grep -oE '(^| )threads=[0-9]+' <<<"$PROTOCOL" | tr -d ' ')
  # shellcheck disable=SC2086
  $PY benchmark.py peak $threads
fi
roots="'$OUT'"  # quoted list items: a folder name may hold '=' or ','
for model in "$UNET" "$HRNET"; do  # a checkpoint's records go to its run folder's benchmark/
  case "$model" in checkpoint=*) roots+=",'${model#checkpoint=}'" ;; esac
done
$PY scripts/deploy_table.py roots="[$roots]" since="$START" seeded="$START"
