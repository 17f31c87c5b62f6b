#!/usr/bin/env bash
# GPU smoke test of the verl engine: 2-3 real verl steps of the paths that fit ONE GPU, on a
# randomly initialised Qwen3-0.6B-shaped model (sodctl's tiny tokenizer, so no hub access) and
# tiny data, printing step time, tokens/s and peak memory per run.
#
#   1. GRPO            (table1/grpo-0.6b): rollout (vLLM) + reward + sodctl's advantage step
#   2. OPSD-gt, live   (table1/opsd-gt-0.6b): the student scores its own tokens under the
#                      privileged prompt (no teacher pool)
#
# The external teacher (OPD, SOD, the ablations) needs a second GPU for verl's teacher pool
# (verl 0.9.1 serves the teacher on GPUs of its own): not run here.
#
# Needs: a CUDA GPU, and verl 0.9.1 with vLLM installed (pip install -e ".[verl,gpu]"); it
# downloads nothing. Budget: under 8 minutes on one H200 (each run is capped at 200 s).
# Usage: bash benchmarks/gpu_verl_smoke.sh [WORK_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
WORK=${1:-$(mktemp -d /tmp/sodctl-verl-smoke.XXXX)}
mkdir -p "$WORK"

"$PYTHON" - <<'EOF' || { echo "gpu_verl_smoke: needs CUDA, verl 0.9.1 and vllm (pip install -e '.[verl,gpu]')"; exit 2; }
import importlib.util, sys, torch
missing = [m for m in ("verl", "vllm", "ray") if importlib.util.find_spec(m) is None]
if missing or not torch.cuda.is_available():
    sys.exit(f"missing: {missing or 'a CUDA device'}")
EOF

# A random model of Qwen3-0.6B's shape (28 layers, hidden 1024, 16 heads / 8 KV heads of 128,
# FFN 3072) with the tiny world's tokenizer, and 16 tiny arithmetic RL rows with solutions.
"$PYTHON" - "$WORK" <<'EOF'
import sys
from pathlib import Path
import pandas as pd
from sodctl.models.tiny import TinyModelSpec, create_tiny_checkpoint

work = Path(sys.argv[1])
spec = TinyModelSpec(hidden_size=1024, intermediate_size=3072, num_hidden_layers=28,
                     num_attention_heads=16, num_key_value_heads=8, head_dim=128,
                     max_position_embeddings=4096)
create_tiny_checkpoint(work / "model", spec, seed=0)
rows = []
for i in range(16):
    a, b = 3 + i, 7 + 2 * i
    rows.append({
        "data_source": "math_dapo",
        "agent_name": "tool_agent",
        "prompt": [{"role": "user", "content": f"What is {a} * {b}? Use the tool."}],
        "ability": "MATH",
        "reward_model": {"ground_truth": str(a * b), "style": "rule"},
        "extra_info": {"index": i, "split": "train", "solution": f"{a} * {b} = {a * b}", "hint": "Multiply."},
    })
pd.DataFrame(rows).to_parquet(work / "rl.parquet")
print(f"model and data in {work}")
EOF

COMMON=(
  "model.path=$WORK/model" "teacher.path=$WORK/model" "data.rl_path=$WORK/rl.parquet"
  "output_dir=$WORK/runs" "train.max_steps=3" "train.train_batch_prompts=4"
  "train.ppo_mini_batch_prompts=2" "rollout.n=4" "data.max_prompt_tokens=512"
  "data.max_response_tokens=1024" "rollout.max_turns=2" "rollout.tensor_parallel_size=1"
  "engine.n_gpus_per_node=1" "engine.gpu_memory_utilization=0.35" "logging.wandb_mode=disabled"
)

summarise() {  # the last step's timing, throughput and memory from verl's console metrics
  local log=$1 name=$2
  "$PYTHON" - "$log" "$name" <<'EOF'
import re, sys
text = open(sys.argv[1], errors="replace").read()
steps = [l for l in text.splitlines() if re.search(r"\bstep:\d+", l)]
def grab(key, line):
    m = re.search(re.escape(key) + r":([-+0-9.eE]+)", line)
    return float(m.group(1)) if m else float("nan")
if not steps:
    print(f"{sys.argv[2]}: no step finished (see {sys.argv[1]})"); sys.exit(1)
last = steps[-1]
print(f"{sys.argv[2]}: {len(steps)} steps; last step {grab('timing_s/step', last):.1f} s, "
      f"{grab('perf/throughput', last):.0f} tokens/s per GPU, "
      f"peak {grab('perf/max_memory_allocated_gb', last):.1f} GB allocated "
      f"({grab('perf/max_memory_reserved_gb', last):.1f} GB reserved)")
EOF
}

status=0
for exp in table1/grpo-0.6b table1/opsd-gt-0.6b; do
  name=${exp#table1/}
  log="$WORK/$name.log"
  echo "== $exp (log: $log)"
  if timeout 200 "$PYTHON" -m sodctl train "$exp" --engine verl "${COMMON[@]}" >"$log" 2>&1; then
    summarise "$log" "$name" || status=1
  else
    echo "$name: FAILED (exit $?); last lines:"; tail -n 25 "$log"; status=1
  fi
done
echo "external teacher (opd, sod, ablations): needs a second GPU for verl's teacher pool; not run"
exit $status
