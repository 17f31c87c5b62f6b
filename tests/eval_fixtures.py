"""Synthetic benchmark files in the Open-AgentRL-Eval schemas (never real GPQA/LCB text)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

AIME25_ROWS = [
    {"problem": f"Compute {a} + {b}.", "answer": str(a + b)}
    for a, b in [(1, 2), (20, 22), (7, 8), (100, 23)]
]


def write_eval_release(root: Path, *, data_source: bool = True) -> Path:
    """A folder laid out like the eval release, with a few synthetic rows per benchmark;
    each file carries the release's ``data_source`` column unless ``data_source=False``."""
    (root / "aime2024").mkdir(parents=True, exist_ok=True)
    (root / "aime2025").mkdir(exist_ok=True)
    (root / "gpqa-diamond").mkdir(exist_ok=True)
    (root / "livecodebench-v6").mkdir(exist_ok=True)
    pd.DataFrame(
        {
            "ID": ["2024-I-1", "2024-I-2"],
            "Problem": ["What is 6*7?", "What is 2**10?"],
            "Answer": [42, 1024],
        }
    ).to_parquet(root / "aime2024/aime_2024_problems.parquet")
    pd.DataFrame(AIME25_ROWS).to_parquet(root / "aime2025/aime_2025_problems.parquet")
    pd.DataFrame(
        {
            "problem": [
                "Which is a noble gas? (A) N (B) Ne (C) Na (D) Ni",
                "Pick D. (A) a (B) b (C) c (D) d",
            ],
            "solution": ["B", "d"],
            "domain": ["Chemistry", "Physics"],
        }
    ).to_parquet(root / "gpqa-diamond/gpqa_diamond.parquet")
    tests = {"inputs": ["1 2\n", "5 7\n"], "outputs": ["3\n", "12\n"]}
    pd.DataFrame(
        {
            "problem": ["Read two integers and print their sum."],
            "reward_model": [json.dumps({"ground_truth": json.dumps(tests), "style": "rule"})],
            "extra_info": [
                json.dumps(
                    {
                        "question_id": "synth-1",
                        "public_tests": [{"input": "1 2\n", "output": "3\n"}],
                    }
                )
            ],
        }
    ).to_parquet(root / "livecodebench-v6/lcb_v6_2502_2505.parquet")
    if data_source:
        from sodctl.data.benchmarks import BENCHMARKS, PAPER_BENCHES

        for bench in PAPER_BENCHES:
            file = root / str(BENCHMARKS[bench].file)
            frame = pd.read_parquet(file)
            frame["data_source"] = BENCHMARKS[bench].data_source
            frame.to_parquet(file)
    return root
