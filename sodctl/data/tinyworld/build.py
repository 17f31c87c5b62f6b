"""``build_tinyworld``: every file of the tiny world, from a seed.

Layout of ``out_dir`` (the tiny and smoke presets point their data, eval and zoo
keys here through ``${data.out_dir}``)::

    eval/aime2024/aime_2024_problems.parquet     math-a   Problem, Answer
    eval/aime2025/aime_2025_problems.parquet     math-b   problem, answer
    eval/gpqa-diamond/gpqa_diamond.parquet       mcq      problem, solution, domain
    eval/livecodebench-v6/lcb_v6_2502_2505.parquet  code  problem, reward_model, extra_info
    rl.parquet         verl RL schema (RL_SCHEMA)
    sft.parquet        Open-AgentRL-SFT schema (SFT_SCHEMA)
    sft-teacher.parquet  the teacher slots' SFT set: sft.parquet's rows and fault-retry
                       trajectories on a share of its problems (TEACHER_FAULT_RETRY_FRACTION)
    pretrain.parquet   text
    models/<size>/     random tiny Qwen3 checkpoints, one per zoo slot (TINY_SPECS), sharing
                       a BPE tokenizer learnt from the SFT and pretraining text
    manifest.json      written last: what was built and from what

A build whose manifest matches the request is kept as it is; ``force=True``
rebuilds. Files are written to a temporary name and renamed into place, and the
manifest goes last, so an interrupted build is never mistaken for a finished one.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sodctl.data.benchmarks import BENCHMARKS
from sodctl.data.loaders import load_prompts, prompts_path
from sodctl.data.tinyworld.expert import (
    PRIVILEGED_FRACTIONS,
    RECOVERY_VARIANTS,
    Privileged,
    Variant,
    tools_column,
    write_trajectories,
)
from sodctl.data.tinyworld.pretrain import pretrain_lines
from sodctl.data.tinyworld.problems import (
    ABILITY_OF,
    BENCH_OF,
    FAMILIES,
    TinyProblem,
    as_benchmark_problem,
    draw_problems,
    eval_row,
)
from sodctl.errors import SodctlUsageError

# Bump when any generated file changes for the same seed (2: BPE tokenizer, copy-heavy pretraining;
# 3: the released protocol: observation texts, prompt pieces, the tool schema text;
# 4: 128 problems a bench; 15% of SFT prompts hold the OPSD teacher's privileged context;
# 5: no newline after <|im_end|> in the zoo's template, the layout of verl's observation turns;
# the multiple-choice expert's call matches the options and prints the letter;
# 6: sft-teacher.parquet, the teacher slots' own SFT set).
TINYWORLD_VERSION = "6"
TINY_PROMPTS_FILE = "tiny_prompts.yaml"
RECOVERY_FRACTION = 0.15
TWO_CALLS_FRACTION = 0.05
# The teacher slots stand in for a 4B model, which knows more than the 0.6B/1.7B students
# before any fine-tuning. In the tiny world that extra knowledge is one skill: retrying a
# call that the environment failed (the tool's injected fault). The teacher's SFT set adds
# a fault-retry trajectory for this share of the SFT problems; the students' set has none,
# so they can learn it only from the teacher, on-policy. Without it the teacher recovered
# from a fault half the time, and stood 6.9 points above the best student, not 10.
TEACHER_FAULT_RETRY_FRACTION = 0.15
MODEL_SLOTS = ("0.6b", "1.7b", "4b", "14b")
TOKENIZER_VOCAB = 512  # BPE merges on the characters: tiny-world sequences ~4x shorter
# What the zoo's chat template puts between turns. verl's agent loop tokenizes each tool turn
# on its own, so at rollout no newline follows the assistant's <|im_end|>, where Qwen3's
# template (and so SFT's rendering) has one. A real model shrugs that off; a tiny one that
# learnt to copy the tool's output one layout does not copy it reliably in the other (the
# teacher-forced answer of a 1.7B SFT student: 21.9% wrong in verl's layout against 60.7%
# in the template's, benchmarks/tiny_layout_probe.py), so the world's checkpoints are
# fine-tuned in the layout they are rolled out in.
BETWEEN_TURNS = ""


@dataclass(frozen=True)
class WorldSizes:
    eval_per_bench: int
    rl: int  # rows, split evenly over the four families
    sft: int  # scripted trajectories before dropping any
    pretrain: int  # lines


WORLD_SIZES: dict[str, WorldSizes] = {
    "tiny": WorldSizes(eval_per_bench=128, rl=512, sft=4000, pretrain=4000),
    "smoke": WorldSizes(eval_per_bench=4, rl=8, sft=8, pretrain=16),
}


@dataclass(frozen=True)
class BuildResult:
    out_dir: Path
    built: bool  # False: a finished build with the same recipe was kept
    seconds: float
    manifest: dict[str, Any]

    def summary(self) -> str:
        """One paragraph for the console."""
        m, c = self.manifest, self.manifest["counts"]
        head = (
            f"tiny world ({m['preset']}, seed {m['seed']}) "
            + (
                f"built in {self.seconds:.1f} s"
                if self.built
                else "already built; kept (--force rebuilds)"
            )
            + f": {self.out_dir}"
        )
        variants = ", ".join(f"{k} {v}" for k, v in c["sft_by_variant"].items())
        dropped = sum(c["sft_dropped"].values())
        return "\n".join(
            [
                head,
                "  eval/      " + ", ".join(f"{b} {n}" for b, n in c["eval"].items()),
                f"  rl.parquet        {c['rl']} rows",
                f"  sft.parquet       {c['sft']} trajectories ({variants}; {dropped} dropped)",
                f"  sft-teacher.parquet  {c['sft_teacher']} trajectories (the above and "
                f"{c['sft_teacher'] - c['sft']} fault-retry)",
                f"  pretrain.parquet  {c['pretrain']} texts",
                "  models/    " + ", ".join(m["models"]),
            ]
        )


def _schemas() -> dict[str, Any]:
    import pyarrow as pa

    call = pa.struct(
        [
            ("type", pa.string()),
            (
                "function",
                pa.struct(
                    [("name", pa.string()), ("arguments", pa.struct([("code", pa.string())]))]
                ),
            ),
        ]
    )
    message = pa.struct(
        [("role", pa.string()), ("content", pa.string()), ("tool_calls", pa.list_(call))]
    )
    rl = pa.schema(
        [
            ("data_source", pa.string()),
            ("prompt", pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))),
            ("ability", pa.string()),
            ("reward_model", pa.struct([("ground_truth", pa.string()), ("style", pa.string())])),
            (
                "extra_info",
                pa.struct(
                    [
                        ("index", pa.int64()),
                        ("kind", pa.string()),
                        ("solution", pa.string()),
                        ("hint", pa.string()),
                    ]
                ),
            ),
        ]
    )
    sft = pa.schema([("messages", pa.list_(message)), ("tools", pa.string())])
    return {"rl": rl, "sft": sft, "pretrain": pa.schema([("text", pa.string())])}


def _write_rows(path: Path, rows: list[dict[str, Any]], schema: Any) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    tmp = path.with_name(f".{path.name}.tmp")
    tmp.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), tmp)
    os.replace(tmp, path)


def _write_frame(path: Path, rows: list[dict[str, Any]]) -> None:
    import pandas as pd

    tmp = path.with_name(f".{path.name}.tmp")
    tmp.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_parquet(tmp, index=False)
    os.replace(tmp, path)


def split_counts(sizes: WorldSizes) -> dict[str, int]:
    per = len(FAMILIES)
    return {
        "eval": sizes.eval_per_bench,
        "rl": -(-sizes.rl // per),
        "sft": -(-sizes.sft // per),
        "pretrain": max(1, sizes.pretrain // (4 * per)),
    }


def sft_variants(n: int, rng: random.Random) -> list[Variant]:
    """Exactly round(15%) recovery (alternating the two) and max(1, round(5%)) two-call
    trajectories, at shuffled positions; the rest direct."""
    n_rec = round(RECOVERY_FRACTION * n)
    n_two = min(n - n_rec, max(1, round(TWO_CALLS_FRACTION * n)))
    variants: list[Variant] = [RECOVERY_VARIANTS[i % 2] for i in range(n_rec)]
    variants += ["two-calls"] * n_two + ["direct"] * (n - n_rec - n_two)
    rng.shuffle(variants)
    return variants


def sft_privileged(n: int, rng: random.Random) -> list[Privileged]:
    """Exactly round(share * n) trajectories per privileged context (PRIVILEGED_FRACTIONS),
    at shuffled positions; the rest see the plain prompt."""
    marks: list[Privileged] = []
    for kind, share in PRIVILEGED_FRACTIONS.items():
        marks += [kind] * round(share * n)  # type: ignore[list-item]
    marks += [None] * (n - len(marks))
    rng.shuffle(marks)
    return marks


def _interleave(by_family: dict[str, list[TinyProblem]], n: int) -> list[TinyProblem]:
    """Round-robin over the families, cut to ``n``."""
    longest = max(len(v) for v in by_family.values())
    mixed = [by_family[f][i] for i in range(longest) for f in FAMILIES if i < len(by_family[f])]
    return mixed[:n]


def rl_rows(problems: list[TinyProblem], prompts: dict[str, str]) -> list[dict[str, Any]]:
    rows = []
    for index, p in enumerate(problems):
        shown = as_benchmark_problem(p, prompts)
        rows.append(
            {
                "data_source": f"tiny-{p.family}",
                "prompt": shown.messages(),
                "ability": ABILITY_OF[p.family],
                "reward_model": {"ground_truth": shown.ground_truth, "style": "rule"},
                "extra_info": {
                    "index": index,
                    "kind": p.kind,
                    "solution": p.solution,
                    "hint": p.hint,
                },
            }
        )
    return rows


def _tool(tool_cfg: Any, *, fault_rate: float = 0.0):
    """The paper-mode tool with the preset's limits; injected faults never (the default)
    or on every call (``fault_rate=1.0``: the fault-retry trajectories' failed calls)."""
    from sodctl.tools.code_interpreter import CodeInterpreter

    executor = CodeInterpreter.from_config(tool_cfg).executor
    return CodeInterpreter(
        executor,
        timeout_s=float(tool_cfg.run_timeout_s),
        memory_mb=int(tool_cfg.memory_mb),
        print_mode="paper",
        max_observation_chars=int(tool_cfg.max_observation_chars),
        fault_rate=fault_rate,
        fault_seed=0,
    )


def teacher_rows(
    sft_rows: list[dict[str, Any]],
    problems: list[TinyProblem],
    prompts: dict[str, str],
    tool_cfg: Any,
    seed: int,
) -> list[dict[str, Any]]:
    """The teacher slots' SFT rows: the students' rows and fault-retry trajectories on
    round(TEACHER_FAULT_RETRY_FRACTION * n) of the SFT problems, shuffled together. Its own
    random stream, so the students' files are those a world without it would have."""
    rng = random.Random(f"sodctl-tinyworld:{seed}:teacher")
    picked = sorted(
        rng.sample(range(len(problems)), round(TEACHER_FAULT_RETRY_FRACTION * len(problems)))
    )
    items: list[tuple[TinyProblem, Variant, Privileged]] = [
        (problems[i], "fault-retry", None) for i in picked
    ]
    report = write_trajectories(items, prompts, _tool(tool_cfg), _tool(tool_cfg, fault_rate=1.0))
    tools = tools_column()
    rows = sft_rows + [{"messages": m, "tools": tools} for m in report.rows]
    rng.shuffle(rows)
    return rows


def _chat_renderer() -> Callable[[list[dict[str, str]]], str]:
    """Chat text in the tiny checkpoints' own template (no tools, no generation prompt)."""
    from sodctl.models.tiny import build_tokenizer

    tok = build_tokenizer("compact", between_turns=BETWEEN_TURNS)
    return lambda messages: tok.apply_chat_template(messages, tokenize=False).rstrip("\n")


def world_tokenizer(sft_rows: list[list[dict[str, Any]]], texts: list[str]):
    """The zoo's tokenizer: BPE learnt from the world's SFT conversations (rendered in
    the compact template) and pretraining text, as a real tokenizer is learnt from its
    corpus. Every slot shares it, as Qwen3's sizes share theirs."""
    from sodctl.models.tiny import build_tokenizer
    from sodctl.tools.code_interpreter import CODE_INTERPRETER_SCHEMA

    chars = build_tokenizer("compact", between_turns=BETWEEN_TURNS)
    rendered = [
        chars.apply_chat_template(m, tools=[CODE_INTERPRETER_SCHEMA], tokenize=False)
        for m in sft_rows
    ]
    return build_tokenizer(
        "compact", corpus=rendered + texts, vocab_size=TOKENIZER_VOCAB, between_turns=BETWEEN_TURNS
    )


def _write_models(out: Path, preset: str, seed: int, tokenizer) -> dict[str, Any]:
    from transformers.utils import logging as hf_logging

    from sodctl.models.tiny import TINY_SPECS, create_tiny_checkpoint

    specs = TINY_SPECS[preset]
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # one "Writing model shards" bar per tiny file
    try:
        for i, size in enumerate(MODEL_SLOTS):
            final = out / "models" / size
            tmp = out / "models" / f".{size}.tmp"
            shutil.rmtree(tmp, ignore_errors=True)
            create_tiny_checkpoint(tmp, specs[size], seed=seed * 1000 + i, tokenizer=tokenizer)
            shutil.rmtree(final, ignore_errors=True)
            os.replace(tmp, final)
    finally:
        if bars:
            hf_logging.enable_progress_bar()
    return {size: asdict(specs[size]) for size in MODEL_SLOTS}


def _recipe(preset: str, seed: int, prompts_file: str, tool_cfg: Any) -> dict[str, Any]:
    prompts = prompts_path(prompts_file)
    return {
        "version": TINYWORLD_VERSION,
        "preset": preset,
        "seed": seed,
        "sizes": asdict(WORLD_SIZES[preset]),
        "prompts_file": prompts.name,
        "prompts_sha256": hashlib.sha256(prompts.read_bytes()).hexdigest(),
        "tokenizer": {"kind": "bpe", "vocab_size": TOKENIZER_VOCAB, "digits": "one token each"},
        "tool": {
            "print_mode": "paper",
            "run_timeout_s": float(tool_cfg.run_timeout_s),
            "memory_mb": int(tool_cfg.memory_mb),
            "max_observation_chars": int(tool_cfg.max_observation_chars),
        },
    }


def _outputs() -> list[str]:
    evals = [f"eval/{BENCHMARKS[BENCH_OF[f]].file}" for f in FAMILIES]
    return [*evals, "rl.parquet", "sft.parquet", "sft-teacher.parquet", "pretrain.parquet"] + [
        f"models/{s}" for s in MODEL_SLOTS
    ]


def _finished(out: Path, recipe: dict[str, Any], force: bool) -> dict[str, Any] | None:
    manifest_path = out / "manifest.json"
    if force or not manifest_path.is_file():
        return None
    manifest = json.loads(manifest_path.read_text())
    differs = [k for k, v in recipe.items() if manifest.get(k) != v]
    if differs:
        was = ", ".join(f"{k}={manifest.get(k)!r}" for k in differs)
        raise SodctlUsageError(
            f"{out} holds a tiny world built differently ({was}); "
            "pass --force (force=True) to rebuild it, or choose another --out"
        )
    if all((out / rel).exists() for rel in _outputs()):
        return manifest
    return None


def build_tinyworld(
    out_dir: str | Path,
    *,
    preset: str = "tiny",
    seed: int = 0,
    force: bool = False,
    prompts_file: str = TINY_PROMPTS_FILE,
    tool_cfg: Any = None,
) -> BuildResult:
    """Write the tiny world for ``preset`` (tiny or smoke) to ``out_dir``.

    ``tool_cfg`` is a ``tool`` config section (default: the preset's); its limits
    apply to the expert's tool calls, always in paper print mode.
    """
    if preset not in WORLD_SIZES:
        raise SodctlUsageError(
            f"the tiny world has presets {', '.join(WORLD_SIZES)}; got {preset!r}"
        )
    t0 = time.monotonic()
    if tool_cfg is None:
        from sodctl.config import load_config

        tool_cfg = load_config(preset=preset).tool
    out = Path(out_dir)
    recipe = _recipe(preset, seed, prompts_file, tool_cfg)
    kept = _finished(out, recipe, force)
    if kept is not None:
        return BuildResult(out, False, time.monotonic() - t0, kept)

    out.mkdir(parents=True, exist_ok=True)
    (out / "manifest.json").unlink(missing_ok=True)
    sizes = WORLD_SIZES[preset]
    prompts = load_prompts(prompts_file)
    world = draw_problems(seed, split_counts(sizes))
    rng = random.Random(f"sodctl-tinyworld:{seed}:layout")
    schemas = _schemas()

    for family in FAMILIES:
        rows = [eval_row(p, i) for i, p in enumerate(world["eval"][family])]
        _write_frame(out / "eval" / str(BENCHMARKS[BENCH_OF[family]].file), rows)

    rl_problems = _interleave(world["rl"], sizes.rl)
    rng.shuffle(rl_problems)
    _write_rows(out / "rl.parquet", rl_rows(rl_problems, prompts), schemas["rl"])

    sft_problems = _interleave(world["sft"], sizes.sft)
    rng.shuffle(sft_problems)
    n_sft = len(sft_problems)
    items = list(zip(sft_problems, sft_variants(n_sft, rng), sft_privileged(n_sft, rng)))
    expert = write_trajectories(items, prompts, _tool(tool_cfg))
    tools = tools_column()
    sft_rows = [{"messages": m, "tools": tools} for m in expert.rows]
    _write_rows(out / "sft.parquet", sft_rows, schemas["sft"])
    teacher = teacher_rows(sft_rows, sft_problems, prompts, tool_cfg, seed)
    _write_rows(out / "sft-teacher.parquet", teacher, schemas["sft"])

    pool = [p for f in FAMILIES for p in world["pretrain"][f]]
    texts = pretrain_lines(pool, sizes.pretrain, rng, _chat_renderer())
    _write_rows(out / "pretrain.parquet", [{"text": t} for t in texts], schemas["pretrain"])

    models = _write_models(out, preset, seed, world_tokenizer(expert.rows, texts))
    manifest = {
        **recipe,
        "counts": {
            "eval": {BENCH_OF[f]: len(world["eval"][f]) for f in FAMILIES},
            "rl": len(rl_problems),
            "rl_by_source": dict(sorted(Counter(f"tiny-{p.family}" for p in rl_problems).items())),
            "sft": len(expert.rows),
            "sft_by_variant": dict(sorted(expert.variants.items())),
            "sft_dropped": dict(sorted(expert.dropped.items())),
            "sft_privileged": dict(sorted(expert.privileged.items())),
            "sft_teacher": len(teacher),
            "pretrain": len(texts),
        },
        "models": models,
        "files": _outputs(),
    }
    tmp = out / ".manifest.json.tmp"
    tmp.write_text(json.dumps(manifest, indent=2) + "\n")
    os.replace(tmp, out / "manifest.json")
    return BuildResult(out, True, time.monotonic() - t0, manifest)
