"""Per-stage wall times of one seed of the tiny reproduction (issue: the miniature, speed).

Runs ``sodctl reproduce table1 --preset tiny`` (one seed) in a fresh working directory, so
nothing is cached, and prints every stage's wall time from the run's provenance record,
grouped by kind (world, pretraining, SFT, RL, evaluation), with each group's share of the
total. Target: the whole seed in at most 6 minutes on 2 cores.

    python benchmarks/tiny_stage_times.py                  # run one seed afresh, then print
    python benchmarks/tiny_stage_times.py --seed 3
    python benchmarks/tiny_stage_times.py --from reference/seeds/tiny/table1.provenance.json   # print a record
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

TARGET_S = 6 * 60
KINDS = {
    "data": "world",
    "pretrain": "pretraining",
    "sft": "SFT",
    "train": "RL",
    "eval": "evaluation",
}


def run_one_seed(seed: int) -> Path:
    """The provenance record of a fresh ``reproduce table1 --preset tiny`` run."""
    work = Path(tempfile.mkdtemp(prefix="sodctl-tiny-times-"))
    cmd = [
        sys.executable,
        "-m",
        "sodctl",
        "reproduce",
        "table1",
        "--preset",
        "tiny",
        f"seed={seed}",
    ]
    print(f"running {' '.join(cmd)} in {work}", flush=True)
    subprocess.run(cmd, cwd=work, check=True, env={**os.environ, "WANDB_MODE": "disabled"})
    return work / "results" / "tiny" / "table1.provenance.json"


def report(record: dict) -> str:
    stages = record["stages"]
    total = sum(s["seconds"] for s in stages)
    by_kind: dict[str, float] = defaultdict(float)
    lines = [f"{'stage':<9} {'experiment':<32} {'status':<8} {'seconds':>8}"]
    for s in stages:
        kind = KINDS.get(s["command"], s["command"])
        by_kind[kind] += s["seconds"]
        lines.append(
            f"{s['command']:<9} {s['experiment']:<32} {s['status']:<8} {s['seconds']:>8.1f}"
        )
    lines.append("")
    for kind, seconds in sorted(by_kind.items(), key=lambda kv: -kv[1]):
        lines.append(f"{kind:<12} {seconds:>7.1f} s  {100 * seconds / total:>5.1f}%")
    lines.append(
        f"total        {total:>7.1f} s  ({total / 60:.1f} min; target {TARGET_S / 60:.0f} min: "
        f"{total / TARGET_S:.2f}x of it)"
    )
    machine = record.get("machine", {})
    lines.append(f"machine: {machine.get('cpus', '?')} CPUs, {machine.get('system', '?')}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--from", dest="record", help="print this provenance record instead of running"
    )
    args = parser.parse_args(argv)
    path = Path(args.record) if args.record else run_one_seed(args.seed)
    print(report(json.loads(path.read_text())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
