#!/usr/bin/env bash
# One device call for the SFT/evaluation issue: throughput benchmarks, then a short countdown-3m run.
# Results land in $OUT (bench_gpu.jsonl, report.md, results.jsonl, accuracy_vs_flops.png, sft_*.json, log).
#   bash benchmarks/device_sft_eval.sh smoke   # ~1.5 min: every path once, at toy sizes
#   bash benchmarks/device_sft_eval.sh full    # ~8 min: the figures for the closing note (a short run: 20k
#                                            # DFS problems, 30M training tokens per model, L up to 2048)
# Needs the wheels in .whl/ (trl, datasets, dill, multiprocess; see benchmarks/README.md).
set -uo pipefail
mode=${1:-smoke}
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false OMP_NUM_THREADS=2
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
python3 -c "import torch, transformers, trl, datasets, pyarrow; print('torch', torch.__version__, 'transformers', transformers.__version__, 'trl', trl.__version__, 'datasets', datasets.__version__, 'pyarrow', pyarrow.__version__)" | tee -a "$OUT/gpu.txt" || exit 1

if [ "$mode" = smoke ]; then
  bench=(--sizes 3M --sft-sizes 3M --compile-sizes "" --steps 3 --warmup 2 --gen-batch 64 --gen-tokens 32)
  pipe=(--datasets.0.n 2000 --datasets.1.n 2000 --models.0.settings.max_tokens 3000000 --models.1.settings.max_tokens 3000000
        --evaluate.settings.problems 16 --evaluate.settings.lengths "[256, 512]" --evaluate.settings.ns "[1, 2, 4]")
  limits=(120 200)
else
  bench=(--sizes 3M,17M,38M,144M --sft-sizes 3M,17M --compile-sizes "" --steps 10 --warmup 3 --gen-tokens 64)
  pipe=(--datasets.0.n 20000 --datasets.1.n 60000 --models.0.settings.max_tokens 30000000
        --models.1.settings.max_tokens 30000000 --evaluate.settings.problems 100
        --evaluate.settings.lengths "[256, 512, 1024, 2048]" --evaluate.settings.ns "[1, 2, 4, 8, 16]"
        --evaluate.settings.direct_max_new_tokens 384)
  limits=(120 330)
fi

timeout "${limits[0]}" python3 benchmarks/bench_sft_gpu.py --out "$OUT/bench_gpu.jsonl" "${bench[@]}" 2>&1 | grep -v Warning | tail -n 20

timeout "${limits[1]}" python3 -m reasonpipe.jobs.pipeline --config configs/countdown-3m.yaml --runs_dir /tmp/runs --workers 16 \
  --quiet true --models.0.settings.save_every 100000 --models.1.settings.save_every 100000 \
  --models.0.settings.log_every 50 --models.1.settings.log_every 50 --evaluate.settings.static_cache false \
  "${pipe[@]}" > "$OUT/pipeline.log" 2>&1
echo "pipeline exit $?"
tail -n 45 "$OUT/pipeline.log"
run=/tmp/runs/countdown-3m
cp "$run/report.md" "$run/eval/results.jsonl" "$run/eval/accuracy_vs_flops.png" "$OUT/" 2>/dev/null
for m in backtrack direct; do cp "$run/models/$m/summary.json" "$OUT/sft_$m.json" 2>/dev/null; done
ls -la "$OUT"
