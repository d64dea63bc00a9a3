#!/usr/bin/env bash
# One device call for the continuous-thought issue (#8): the latent-step cost against a decoding step on the GPU,
# then the four methods at the paper's model size (2 layers x 768, 8 heads) on ProsQA-sized graphs.
# Results land in $OUT (gpu.txt, bench_latent.jsonl, report.md, results.jsonl, probe.jsonl, *.png, latent.log).
#   bash benchmarks/device_latent.sh smoke   # ~1 min: every path once, at toy sizes
#   bash benchmarks/device_latent.sh full    # ~9 min: configs/latent-prosqa.yaml, time-boxed
# Needs only torch and transformers (in the device image): no wheels to carry.
set -uo pipefail
mode=${1:-smoke}
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false OMP_NUM_THREADS=2 PYTHONPATH=$PWD
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
python3 -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)" | tee -a "$OUT/gpu.txt" || exit 1

timeout 90 python3 benchmarks/bench_latent.py --steps 200 > "$OUT/bench_latent.jsonl" 2> "$OUT/bench_latent.err"
cat "$OUT/bench_latent.jsonl"
if [ "$mode" = smoke ]; then
  extra=(--train_problems 512 --eval_problems 64 --stage0_epochs 1 --epochs_per_stage 1 --probe_problems 64)
  limit=60
else
  extra=()
  limit=480
fi
timeout "$limit" python3 -m reasonpipe.jobs.latent --config configs/latent-prosqa.yaml --out /tmp/latent-prosqa --quiet true \
  "${extra[@]}" > "$OUT/latent.log" 2>&1
echo "latent exit $?"
tail -n 60 "$OUT/latent.log"
cp /tmp/latent-prosqa/report.md /tmp/latent-prosqa/results.jsonl /tmp/latent-prosqa/probe.jsonl \
  /tmp/latent-prosqa/accuracy.png /tmp/latent-prosqa/probe.png /tmp/latent-prosqa/manifest.json "$OUT/" 2>/dev/null
