"""``sodctl eval``: avg@k of a model on benchmarks, with the code-interpreter tool loop.

For each benchmark, every (problem, sample) pair is rolled out with the agent
loop, graded by each grader, and appended to ``<bench>.jsonl`` as one line.
Lines are written whole, one ``write`` per batch followed by ``fsync``; on
start, a torn last line (a run killed mid-write) is cut off and the pairs
already on disk are skipped, so an interrupted run resumes without redoing or
duplicating samples. When every pair is there, ``<bench>.json`` (the summary,
``sodctl.results.schema.BenchSummary``) is written atomically.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sodctl.data.benchmarks import BENCHMARKS
from sodctl.data.loaders import Problem, load_benchmark, load_prompts
from sodctl.data.prompting import filter_long_prompts
from sodctl.eval.metrics import summarize_outcomes
from sodctl.results.schema import GRADERS, EvalRecord
from sodctl.rollout.agent import AgentLoopConfig, Trajectory, chat_prompt_ids, run_agent_loop
from sodctl.rollout.engine import SamplingParams
from sodctl.tools.code_interpreter import tool_schema


@dataclass(frozen=True)
class EvalLabel:
    """Where a result sits in the tables: results/<preset>/<model>/<method>[/seed-<n>]."""

    preset: str
    model: str
    method: str
    seed: int
    seed_subdir: bool = False

    def directory(self, results_dir: str | Path) -> Path:
        d = Path(results_dir) / self.preset / self.model / self.method
        return d / f"seed-{self.seed}" if self.seed_subdir else d

    def as_dict(self) -> dict[str, str]:
        return {
            "preset": self.preset,
            "model": self.model,
            "method": self.method,
            "seed": str(self.seed),
        }


def model_label(model: str) -> str:
    """A directory-safe name for a model path or hub id."""
    p = Path(model)
    name = p.name if p.exists() else model.replace("/", "--")
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name) or "model"


class RecordFile:
    """An append-only JSONL file of eval records that survives being killed mid-write."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> list[dict[str, Any]]:
        """The complete records on disk; a torn last line is cut off the file."""
        if not self.path.exists():
            return []
        data = self.path.read_bytes()
        end = data.rfind(b"\n") + 1
        if end < len(data):  # a partial line from a killed write: drop it
            with open(self.path, "r+b") as f:
                f.truncate(end)
        records = []
        for n, line in enumerate(data[:end].splitlines(), 1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                raise ValueError(
                    f"{self.path}:{n} is not a JSON record; move the file away to start over"
                ) from None
        return records

    def append(self, records: Iterable[dict[str, Any]]) -> None:
        payload = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode()
        if not payload:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            view = memoryview(payload)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)


def write_json_atomic(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(obj, indent=2, ensure_ascii=False, default=str))
    os.replace(tmp, path)


def batch_seed(seed: int, bench: str, first: tuple[str, int]) -> int:
    """A sampling seed for a batch, fixed by the run's seed and the batch's first pair."""
    digest = hashlib.sha256(f"{seed}/{bench}/{first[0]}/{first[1]}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def graders_for(setting: str) -> tuple[str, ...]:
    return GRADERS if setting == "both" else (setting,)


def make_record(
    problem: Problem,
    sample: int,
    seed: int,
    traj: Trajectory,
    grades: dict[str, Any],
    gen_time_s: float,
) -> EvalRecord:
    return {
        "bench": problem.bench,
        "problem_id": problem.id,
        "sample": sample,
        "seed": seed,
        "ground_truth": problem.ground_truth,
        "response": traj.text,
        "num_turns": traj.num_turns,
        "stop_reason": traj.stop_reason or "",
        "response_tokens": len(traj.response_ids),
        "generated_tokens": int(sum(traj.response_mask)),
        "n_tool_calls": traj.n_tool_calls,
        "n_tool_errors": traj.n_tool_errors,
        "tool_calls": [
            {
                "turn": c.turn,
                "code": c.code,
                "observation": c.observation,
                "status": c.status,
                "erroneous": c.erroneous,
                "latency_s": c.latency_s,
            }
            for c in traj.tool_calls
        ],
        "pred": {g: r.pred for g, r in grades.items()},
        "correct": {g: bool(r.correct) for g, r in grades.items()},
        "score": {g: float(r.score) for g, r in grades.items()},
        "gen_time_s": gen_time_s,
    }


def summarize(
    bench: str,
    problems: Sequence[Problem],
    records: Sequence[dict[str, Any]],
    *,
    k: int,
    graders: Sequence[str],
    model: str,
    label: EvalLabel,
    config: dict,
    run: dict,
    wall_time_s: float,
    filtered: Sequence[str] = (),
) -> dict[str, Any]:
    """The BenchSummary of a benchmark's records; ``filtered`` names the problems left out
    for a prompt over ``eval.max_prompt_tokens``."""
    by_problem: dict[str, list[dict[str, Any]]] = {p.id: [] for p in problems}
    for r in records:
        if r["problem_id"] in by_problem:
            by_problem[r["problem_id"]].append(r)
    ordered = [sorted(by_problem[p.id], key=lambda r: r["sample"]) for p in problems]
    per_grader = {}
    for g in graders:
        per_grader[g] = summarize_outcomes(
            [[r["correct"][g] for r in rs] for rs in ordered],
            [[r["pred"][g] for r in rs] for rs in ordered],
            [p.ground_truth for p in problems],
            k=k,
        )
    flat = [r for rs in ordered for r in rs]
    n = max(len(flat), 1)
    calls = sum(r["n_tool_calls"] for r in flat)
    gen_tokens = sum(r["generated_tokens"] for r in flat)
    gen_time = sum(r["gen_time_s"] for r in flat)
    spec = BENCHMARKS[bench]
    return {
        "bench": bench,
        "bench_version": f"{spec.version}+prompts{load_prompts(config.get('data', {}).get('prompts_file')).get('version', '?')}",
        "model": model,
        "label": label.as_dict(),
        "k": k,
        "n_problems": len(problems),
        "n_filtered": len(filtered),
        "filtered_ids": list(filtered),
        "n_records": len(flat),
        "graders": per_grader,
        "mean_turns": sum(r["num_turns"] for r in flat) / n,
        "tool_calls_per_sample": calls / n,
        "tool_error_rate": 100.0 * sum(r["n_tool_errors"] for r in flat) / max(calls, 1),
        "mean_response_tokens": sum(r["response_tokens"] for r in flat) / n,
        "stop_reasons": dict(Counter(r["stop_reason"] for r in flat)),
        "tokens_per_s": gen_tokens / gen_time if gen_time > 0 else 0.0,
        "wall_time_s": wall_time_s,
        "config": config,
        "run": run,
    }


def model_saved_at(model: str) -> float | None:
    """When a local model directory was last written (its newest file); None for hub ids."""
    path = Path(model)
    if not path.is_dir():
        return None
    times = [p.stat().st_mtime for p in path.iterdir() if p.is_file()]
    return max(times) if times else None


def stale_outputs(out_dir: Path, bench: str, saved_at: float | None) -> list[Path]:
    """The records / summary of ``bench`` written before the model was last saved: they
    belong to an older model (retrained since, or results checked out of git)."""
    if saved_at is None:
        return []
    paths = (out_dir / f"{bench}.jsonl", out_dir / f"{bench}.json")
    return [p for p in paths if p.exists() and p.stat().st_mtime < saved_at]


def set_aside(paths: Sequence[Path]) -> list[Path]:
    """Rename each path to ``<name>.stale-<n>`` (the first free n): kept, never deleted."""
    moved = []
    for path in paths:
        n = 1
        while (target := path.with_name(f"{path.name}.stale-{n}")).exists():
            n += 1
        os.replace(path, target)
        moved.append(target)
    return moved


@dataclass
class BenchResult:
    bench: str
    summary: dict[str, Any]
    records_path: Path
    summary_path: Path
    new_records: int


def evaluate_bench(
    bench: str,
    problems: Sequence[Problem],
    *,
    engine,
    tokenizer,
    tool,
    grade_fn,
    k: int,
    graders: Sequence[str],
    params: SamplingParams,
    loop: AgentLoopConfig,
    out_dir: Path,
    label: EvalLabel,
    model: str,
    config: dict,
    run: dict,
    batch_size: int = 64,
    progress=None,
    filtered: Sequence[str] = (),
) -> BenchResult:
    """Roll out, grade and record every missing (problem, sample) of one benchmark, then summarise."""
    t0 = time.monotonic()
    records_file = RecordFile(out_dir / f"{bench}.jsonl")
    existing = records_file.load()
    done = {(r["problem_id"], r["sample"]) for r in existing}
    units = [(p, s) for p in problems for s in range(k) if (p.id, s) not in done]
    schema = getattr(tool, "schema", None) or tool_schema("released")
    prompt_ids = {p.id: chat_prompt_ids(tokenizer, p.messages(), [schema]) for p in problems}
    task = (
        progress.add_task(bench, total=len(problems) * k, completed=len(problems) * k - len(units))
        if progress
        else None
    )
    new = 0
    for i in range(0, len(units), batch_size):
        batch = units[i : i + batch_size]
        seed = batch_seed(label.seed, bench, (batch[0][0].id, batch[0][1]))
        batch_params = SamplingParams(
            max_new_tokens=params.max_new_tokens,
            temperature=params.temperature,
            top_p=params.top_p,
            top_k=params.top_k,
            stop=params.stop,
            seed=seed,
        )
        g0 = time.monotonic()
        trajs = run_agent_loop(
            engine, tokenizer, tool, [prompt_ids[p.id] for p, _ in batch], batch_params, loop
        )
        gen_time = (time.monotonic() - g0) / len(batch)
        recs = []
        for (p, s), tr in zip(batch, trajs):
            if p.kind == "code":  # both graders run the same tests: run them once
                result = grade_fn(tr.text, p.ground_truth, kind="code", grader=graders[0])
                grades = dict.fromkeys(graders, result)
            else:
                grades = {
                    g: grade_fn(tr.text, p.ground_truth, kind=p.kind, grader=g) for g in graders
                }
            recs.append(make_record(p, s, label.seed, tr, grades, gen_time))
        records_file.append(recs)
        existing += recs
        new += len(recs)
        if progress:
            progress.update(task, advance=len(batch))
    summary = summarize(
        bench,
        problems,
        existing,
        k=k,
        graders=graders,
        model=model,
        label=label,
        config=config,
        run=run,
        wall_time_s=time.monotonic() - t0,
        filtered=filtered,
    )
    summary_path = out_dir / f"{bench}.json"
    write_json_atomic(summary_path, summary)
    return BenchResult(bench, summary, records_file.path, summary_path, new)


def load_eval_problems(cfg, bench: str) -> list[Problem]:
    """A benchmark's problems as the config asks (data dir, limit, prompts, LCB examples)."""
    ev = cfg.eval
    return load_benchmark(
        bench,
        data_dir=ev.data_dir,
        limit=ev.limit,
        prompts_file=cfg.data.prompts_file,
        lcb_examples=str(ev.lcb_examples),
    )


def config_grader(cfg):
    """``sodctl.rewards.grade`` with the code-test rules of the config's ``reward`` section:
    evaluation grades code exactly as the training reward does."""
    import functools

    from sodctl.rewards import grade
    from sodctl.rewards.reward import code_test_options

    return functools.partial(grade, **code_test_options(cfg.reward))


def make_engine(cfg, model_path: str):
    """The generation engine the config asks for (``rollout.engine``), loaded from ``model_path``."""
    if cfg.rollout.engine == "vllm":
        from sodctl.rollout.vllm_engine import VLLMEngine

        return VLLMEngine(
            model_path,
            dtype=cfg.model.dtype,
            seed=cfg.seed,
            tensor_parallel_size=cfg.rollout.tensor_parallel_size,
        )
    from sodctl.rollout.hf_engine import HFEngine
    from sodctl.runinfo import use_threads

    use_threads(cfg.engine.threads, cfg.engine.cpu_capability)
    return HFEngine.from_pretrained(
        model_path,
        dtype=cfg.model.dtype,
        device=cfg.engine.device,
        max_batch_size=cfg.eval.batch_size,
    )


def run_eval(
    cfg,
    *,
    model_path: str,
    label: EvalLabel,
    engine=None,
    tool=None,
    grade_fn=None,
    show_progress: bool = True,
    console=None,
) -> list[BenchResult]:
    """Evaluate ``model_path`` on ``cfg.eval.benches``; returns one result per benchmark."""
    from omegaconf import OmegaConf

    from sodctl.runinfo import run_metadata
    from sodctl.tools.code_interpreter import CodeInterpreter

    ev = cfg.eval
    loaded = {b: load_eval_problems(cfg, b) for b in ev.benches}
    engine = engine or make_engine(cfg, model_path)
    tokenizer = engine.tokenizer
    benches, left_out = {}, {}
    for b, problems in loaded.items():
        benches[b], dropped = filter_long_prompts(
            tokenizer, problems, ev.max_prompt_tokens, lambda p: p.messages()
        )
        left_out[b] = [p.id for p in dropped]
        if dropped and console is not None:
            console.print(
                f"{b}: {len(dropped)} of {len(problems)} problems have a prompt over "
                f"eval.max_prompt_tokens={ev.max_prompt_tokens} and are left out (the released filter)"
            )
    tool = tool or CodeInterpreter.from_config(cfg.tool, fault_seed=cfg.seed)
    if grade_fn is None:
        grade_fn = config_grader(cfg)
    params = SamplingParams(
        max_new_tokens=ev.max_response_tokens,
        temperature=ev.temperature,
        top_p=ev.top_p,
        top_k=ev.top_k,
    )
    loop = AgentLoopConfig.from_config(
        cfg, max_turns=ev.max_turns, max_response_tokens=ev.max_response_tokens
    )
    config = OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)
    run = run_metadata(cfg)
    out_dir = label.directory(ev.results_dir)
    results = []
    saved_at = model_saved_at(model_path)
    from sodctl.progress import progress_bar

    with progress_bar(
        "{task.description:>10}", console=console, disable=not show_progress
    ) as progress:
        for bench, problems in benches.items():
            moved = set_aside(stale_outputs(out_dir, bench, saved_at))
            if moved and console is not None:
                console.print(
                    f"{bench}: the results in {out_dir} predate {model_path}; "
                    f"set aside as {', '.join(p.name for p in moved)} and evaluated afresh"
                )
            results.append(
                evaluate_bench(
                    bench,
                    problems,
                    engine=engine,
                    tokenizer=tokenizer,
                    tool=tool,
                    grade_fn=grade_fn,
                    k=ev.k,
                    graders=graders_for(ev.grader),
                    params=params,
                    loop=loop,
                    out_dir=out_dir,
                    label=label,
                    model=model_path,
                    config=config,
                    run=run,
                    batch_size=ev.batch_size,
                    progress=progress,
                    filtered=left_out[bench],
                )
            )
    return results
