#!/usr/bin/env bash
# The reference study's models in one CPU sweep at 512x512, batch 1, random weights, 150 classes (ADE20K configs):
# DeepLabV3+ R-50-D8 / R-101-D8, Mask2Former R-50 / R-101 / Swin-T / Swin-S, SegMAN T / S / B, BEiT-B UPerNet.
# Each member's records go to $OUT/<slug>/ (one folder per model), then scripts/reference_table.py prints the table
# beside the published rows of tables/reported/ (add record=results/<name>.yaml caption='...' to publish it).
#
#   scripts/reference_sweep.sh                                          # eager fp32
#   PROTOCOL="backend=channels_last precision=bf16 warmup=1 iterations=5 threads=2" scripts/reference_sweep.sh
#
# BEiT's relative position tables fix its input to img_size (640x640 in the ADE20K config): the sweep builds it for
# 512x512 (++model.cfg_options), which changes its parameter count by the size of those tables. Needs
# requirements-mmseg.txt. A failed member is a row with its one-line error and makes the exit code 1.
set -u
PY=${PY:-.venv/bin/python}
OUT=${OUT:-logs/reference_sweep}
PROTOCOL=${PROTOCOL:-backend=eager precision=fp32 warmup=1 iterations=5 threads=2}
MMSEG="model=mmseg model.num_classes=150 model.config"
# <reported name>|<benchmark overrides>
MEMBERS=(
  "DeepLabV3+ R-50-D8|$MMSEG=deeplabv3plus_r50-d8_4xb4-80k_ade20k-512x512"
  "DeepLabV3+ R-101-D8|$MMSEG=deeplabv3plus_r101-d8_4xb4-80k_ade20k-512x512"
  "Mask2Former R-50-D32|$MMSEG=mask2former_r50_8xb2-160k_ade20k-512x512"
  "Mask2Former R-101-D32|$MMSEG=mask2former_r101_8xb2-160k_ade20k-512x512"
  "Mask2Former Swin-T|$MMSEG=mask2former_swin-t_8xb2-160k_ade20k-512x512"
  "Mask2Former Swin-S|$MMSEG=mask2former_swin-s_8xb2-160k_ade20k-512x512"
  "SegMAN-T|model=segman model.num_classes=150 model.variant=t"
  "SegMAN-S|model=segman model.num_classes=150 model.variant=s"
  "SegMAN-B|model=segman model.num_classes=150 model.variant=b"
  "BEiT-B UPerNet|$MMSEG=beit-base_upernet_8xb2-160k_ade20k-640x640 ++model.cfg_options={model.backbone.img_size:[512,512]}"
)
echo "sweep start $(date -u +%Y-%m-%dT%H:%M:%SZ); load: $(uptime)"
args=()
for member in "${MEMBERS[@]}"; do
  name="${member%%|*}"
  slug=$(tr -c 'A-Za-z0-9\n' '_' <<<"$name")
  # shellcheck disable=SC2086  # word splitting of the override lists is intended
  $PY benchmark.py ${member#*|} resolution=512x512 count_flops=true $PROTOCOL LOGDIR="$OUT/$slug" 2>&1 |
    grep -E "fps|FAILED|record:"
  args+=("member=$name=$OUT/$slug")
done
echo "sweep end $(date -u +%Y-%m-%dT%H:%M:%SZ); load: $(uptime)"
$PY scripts/reference_table.py "${args[@]}" "$@"
