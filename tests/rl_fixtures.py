"""A self-contained tiny RL setup: two tiny checkpoints and a small RL parquet in the verl schema."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from sodctl.config import load_config
from sodctl.models.tiny import TinyModelSpec, create_tiny_checkpoint

SMALL = TinyModelSpec(
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=1,
    num_attention_heads=2,
    num_key_value_heads=1,
    head_dim=32,
)


def write_rl_parquet(path: Path, n: int = 4) -> Path:
    rows = []
    for i in range(n):
        a, b = 3 + i, 4 + 2 * i
        rows.append(
            {
                "data_source": "tiny-math-a",
                "prompt": [
                    {"role": "user", "content": f"{a}+{b}? Use the tool, answer in \\boxed{{}}."}
                ],
                "ability": "math",
                "reward_model": {"ground_truth": str(a + b), "style": "rule"},
                "extra_info": {
                    "index": i,
                    "kind": "math",
                    "solution": f"{a}+{b}={a + b}",
                    "hint": "add them",
                },
            }
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_parquet(path)
    return path


def tiny_rl_setup(root: Path) -> dict[str, str]:
    return {
        "student": str(create_tiny_checkpoint(root / "student", SMALL, seed=1)),
        "teacher": str(create_tiny_checkpoint(root / "teacher", SMALL, seed=2)),
        "rl": str(write_rl_parquet(root / "rl.parquet")),
    }


def rl_config(root: Path, paths: dict[str, str], method: str, *extra: str):
    return load_config(
        None,
        preset="smoke",
        method=method,
        overrides=[
            f"model.path={paths['student']}", f"teacher.path={paths['teacher']}", f"data.rl_path={paths['rl']}",
            f"output_dir={root / 'runs'}", f"experiment={method}-test", "logging.wandb_mode=disabled",
            "train.train_batch_prompts=2", "train.ppo_mini_batch_prompts=1", "rollout.n=2", "train.max_steps=2",
            "data.max_response_tokens=48", "rollout.max_turns=2", "reward.overlong_buffer=8", "train.lr=1e-3",
            *extra,
        ],
    )  # fmt: skip
