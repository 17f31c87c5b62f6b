"""Benchmark loaders: parquet rows in the Open-AgentRL-Eval schemas -> ``Problem`` records.

A benchmark's rows come from a local file (``path``: the parquet itself, or a
directory holding the release's relative file path), from a local copy of the
whole eval repository (``data_dir``), or from the Hugging Face hub. Every
problem carries the chat prompt composed from the pieces of ``prompts.yaml`` as the
released prompts were (``sodctl.data.prompting``) and the ground truth the graders
take (the answer, the option letter, or the JSON tests spec of a code problem).

Other benchmarks (the tiny task suite) register themselves with
``register_benchmark``; everything downstream treats them alike.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from sodctl.data.benchmarks import BENCHMARKS, BenchKind, BenchmarkSpec
from sodctl.data.files import read_parquet, require_columns
from sodctl.data.prompting import (
    LCB_EXAMPLES_MODES,
    check_templates,
    compose_code,
    compose_math,
    compose_science,
    json_cell,
    lcb_examples_text,
    normalise_letter,
)
from sodctl.errors import SodctlUsageError

PROMPTS_FILE = Path(__file__).with_name("prompts.yaml")
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Problem:
    """One evaluation problem, ready for the agent loop and the graders."""

    bench: str
    id: str
    kind: BenchKind
    prompt: str  # the user message
    ground_truth: str
    meta: dict[str, Any] = field(default_factory=dict)

    def messages(self) -> list[dict[str, str]]:
        return [{"role": "user", "content": self.prompt}]


def prompts_path(path: str | None = None) -> Path:
    """The prompts file ``data.prompts_file`` names: the packaged default for null; a path
    that exists as given; else a name relative to the packaged data directory (so
    ``tiny_prompts.yaml`` works from any working directory)."""
    if not path:
        return PROMPTS_FILE
    given = Path(path)
    if given.is_file():
        return given
    packaged = PROMPTS_FILE.parent / given
    if not given.is_absolute() and packaged.is_file():
        return packaged
    raise SodctlUsageError(
        f"prompts file {path} does not exist (nor in {PROMPTS_FILE.parent}); fix data.prompts_file"
    )


@lru_cache(maxsize=4)
def load_prompts(path: str | None = None) -> dict[str, str]:
    """The prompt pieces (``prompts.yaml``, or a user's copy; see ``prompts_path``); a
    one-line error names the pieces a file lacks or one that does not format."""
    from omegaconf import OmegaConf

    file = prompts_path(path)
    raw = OmegaConf.to_container(OmegaConf.load(file))
    if not isinstance(raw, dict):
        raise SodctlUsageError(f"prompts file {file} is not a mapping of templates")
    templates = {str(k): "" if v is None else str(v) for k, v in raw.items()}
    check_templates(templates, file)
    return templates


# mapper(row, index, prompts, *, lcb_examples="released") -> Problem; the keyword is for the
# LiveCodeBench mapper (see load_benchmark), the others take and ignore it.
RowMapper = Callable[..., Problem]
Loader = Callable[..., list[Problem]]
_CUSTOM_LOADERS: dict[str, Loader] = {}


def register_benchmark(spec: BenchmarkSpec, loader: Loader) -> None:
    """Add a benchmark (e.g. the tiny suite's); ``loader(path=, limit=, prompts_file=)`` returns its problems."""
    BENCHMARKS[spec.name] = spec
    _CUSTOM_LOADERS[spec.name] = loader


def _cell(row: dict[str, Any], column: str, bench: str) -> Any:
    value = row[column]
    if value is None:
        raise SodctlUsageError(f"benchmark {bench!r}: column {column!r} is empty in a row")
    return value


def _missing(value: Any) -> bool:
    """An empty cell: None, NaN or NA (how parquet hands back a missing string), or ""."""
    try:
        return value is None or bool(value != value) or not value
    except (TypeError, ValueError):  # pd.NA has no truth value
        return True


def _answer(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def _aime(problem_col: str, answer_col: str) -> RowMapper:
    def mapper(row: dict[str, Any], i: int, prompts: dict[str, str], **_: Any) -> Problem:
        bench = row["__bench__"]
        text = str(_cell(row, problem_col, bench))
        return Problem(
            bench,
            str(row.get("ID") or row.get("id") or i),
            "math",
            compose_math(prompts, text),
            _answer(_cell(row, answer_col, bench)),
        )

    return mapper


def _gpqa(row: dict[str, Any], i: int, prompts: dict[str, str], **_: Any) -> Problem:
    bench = row["__bench__"]
    solution = _cell(row, "solution", bench)
    try:
        letter = normalise_letter(_answer(solution))
    except ValueError:
        raise SodctlUsageError(
            f"benchmark {bench!r}: row {i}'s solution {solution!r} is not an option letter "
            "(B or \\boxed{B})"
        ) from None
    domain = "science" if _missing(row.get("domain")) else str(row["domain"])
    prompt = compose_science(prompts, str(_cell(row, "problem", bench)), domain)
    return Problem(bench, str(row.get("id") or i), "mcq", prompt, letter, {"domain": domain})


def _lcb(
    row: dict[str, Any], i: int, prompts: dict[str, str], *, lcb_examples: str = "released"
) -> Problem:
    """A LiveCodeBench row; ``lcb_examples``: the prompt's examples (``load_benchmark``)."""
    bench = row["__bench__"]
    reward_model = json_cell(_cell(row, "reward_model", bench))
    extra = json_cell(row.get("extra_info") or {}) or {}
    tests = reward_model.get("ground_truth") if isinstance(reward_model, dict) else reward_model
    tests = json_cell(tests)
    if tests in (None, "", [], {}):
        raise SodctlUsageError(
            f"benchmark {bench!r}: row {i} has no tests in reward_model.ground_truth"
        )
    public = json_cell(extra.get("public_tests")) if isinstance(extra, dict) else None
    if isinstance(public, (str, bytes, dict)):
        public = None
    try:
        examples = lcb_examples_text(prompts, lcb_examples, tests, public)
    except ValueError as e:
        raise SodctlUsageError(
            f"benchmark {bench!r}: row {i}: lcb_examples=released lists the ground truth's "
            f"tests, but {e}; use lcb_examples=public or none"
        ) from None
    prompt = compose_code(prompts, str(_cell(row, "problem", bench)), examples)
    pid = (
        str(extra.get("question_id") or extra.get("index") or i)
        if isinstance(extra, dict)
        else str(i)
    )
    return Problem(
        bench,
        pid,
        "code",
        prompt,
        json.dumps(tests),
        {"extra_info": extra if isinstance(extra, dict) else {}},
    )


ROW_MAPPERS: dict[str, RowMapper] = {
    "aime24": _aime("Problem", "Answer"),
    "aime25": _aime("problem", "answer"),
    "gpqa": _gpqa,
    "lcb": _lcb,
}


def _locate(spec: BenchmarkSpec, path: str | None, data_dir: str | None) -> Path:
    """The parquet file of a benchmark: an explicit path, a local copy of the release, or the hub."""
    for base in (path, data_dir):
        if base is None:
            continue
        p = Path(base)
        if p.is_file():
            return p
        if p.is_dir() and spec.file and (p / spec.file).is_file():
            return p / spec.file
        raise SodctlUsageError(
            f"benchmark {spec.name!r}: no data at {p}"
            + (
                f" (expected a parquet file, or a directory holding {spec.file})"
                if spec.file
                else ""
            )
        )
    if not (spec.hub_repo and spec.file):
        raise SodctlUsageError(
            f"benchmark {spec.name!r} has no hub release; pass a local path to its data"
        )
    return _hub_file(spec.hub_repo, spec.file, what=f"benchmark {spec.name!r}")


def _hub_file(
    repo: str, file: str, *, what: str, fix: str = "set eval.data_dir to its folder"
) -> Path:
    """A dataset file from the hub cache, else from the hub; fails fast and in one line
    offline (``sodctl.data.builders.common.hub_snapshot``)."""
    from sodctl.data.builders.common import hub_snapshot

    folder, _ = hub_snapshot(repo, [file], what=what, fix=f"download the dataset {repo} and {fix}")
    return folder / file


def _check_data_source(spec: BenchmarkSpec, frame: Any, file: Path) -> None:
    """A release file's ``data_source`` column names its benchmark (the released loader
    dispatched on the first row's): a file of another benchmark is refused in one line.
    Files without the column (the tiny world's, a user's own) are read as given."""
    if spec.data_source is None or "data_source" not in frame.columns or frame.empty:
        return
    values = {str(v) for v in frame["data_source"].dropna().unique()}
    if values and values != {spec.data_source}:
        raise SodctlUsageError(
            f"benchmark {spec.name!r}: {file} holds data_source {sorted(values)}, not "
            f"{spec.data_source!r}: it is another benchmark's file; point {spec.name} at "
            f"its own ({spec.file})"
        )


def load_benchmark(
    name: str,
    *,
    path: str | None = None,
    data_dir: str | None = None,
    limit: int | None = None,
    prompts_file: str | None = None,
    lcb_examples: str = "released",
) -> list[Problem]:
    """Load a benchmark's problems (the first ``limit`` of them when given).

    ``lcb_examples`` (``eval.lcb_examples``), the examples of a LiveCodeBench prompt:
    ``"released"``: one block listing every test of ``reward_model.ground_truth``, as the
    released prompt did (the grading tests themselves where the data holds hidden ones;
    one warning is logged per load); ``"public"``: ``extra_info.public_tests``, one
    ``code_example`` each; ``"none"``: no examples.
    """
    if name not in BENCHMARKS:
        raise SodctlUsageError(
            f"unknown benchmark {name!r}; known: {', '.join(sorted(BENCHMARKS))}"
        )
    lcb_examples = str(lcb_examples)
    if lcb_examples not in LCB_EXAMPLES_MODES:
        raise SodctlUsageError(
            f"lcb_examples={lcb_examples!r} is not one of {', '.join(LCB_EXAMPLES_MODES)}"
        )
    if name == "tiny-arith" and name not in _CUSTOM_LOADERS:
        from sodctl.data.tiny import load_tiny_arith

        _CUSTOM_LOADERS[name] = load_tiny_arith
    if name in _CUSTOM_LOADERS:
        return _CUSTOM_LOADERS[name](path=path, limit=limit, prompts_file=prompts_file)
    spec = BENCHMARKS[name]
    file = _locate(spec, path, data_dir)
    required = [c for c in spec.columns if c != "extra_info" and c != "domain"]
    frame = read_parquet(file, what=f"benchmark {name!r}")
    _check_data_source(spec, frame, file)  # a wrong file is named as such, before its columns
    require_columns(frame, required, file, what=f"benchmark {name!r}")
    if limit is not None:
        frame = frame.head(limit)
    prompts = load_prompts(prompts_file)
    mapper = ROW_MAPPERS[name]
    rows = frame.to_dict(orient="records")
    problems = [
        mapper({**row, "__bench__": name}, i, prompts, lcb_examples=lcb_examples)
        for i, row in enumerate(rows)
    ]
    if name == "lcb" and lcb_examples == "released" and problems:
        log.warning(
            "benchmark 'lcb': each prompt lists every test of reward_model.ground_truth, as "
            "the released prompt did: these may be the grading tests themselves; "
            "eval.lcb_examples=public shows only extra_info.public_tests"
        )
    return problems
