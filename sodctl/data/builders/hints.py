"""``sodctl data hints RL_FILE``: OPSD's privileged texts for every row of an RL file.

OPSD's self-teacher is the student itself with extra text in its prompt
(``sodctl.engines.local.rl.privileged_messages``): ``extra_info.solution`` for OPSD-gt,
``extra_info.hint`` for OPSD-hint. The 30K release has neither, so this builder adds
them; rows that already have one keep it.

Hints, the paper's recipe (E.2): given a problem and its full solution, an instruction
model writes the key insight or critical intermediate step (a useful substitution, a
relevant theorem, a strategic decomposition) without the final answer or the complete
derivation. The paper's template was lost, so the prompt is ours
(``hint_prompts.yaml``). Our choices:

- generation: ``engine.generate`` on the chat prompt (no tools), sampled with the
  config's evaluation settings (``eval.temperature/top_p/top_k``), seeded per shard and
  attempt, at most ``hint_tokens`` new tokens; up to ``attempts`` tries per row;
- a hint is rejected (counted by reason) when it is empty or was cut off
  (``truncated``), holds ``\\boxed`` (``boxed``), or leaks the answer (``answer``, see
  ``leak_reason``: the normalised ground truth as a standalone token; numbers compared
  by value, so ``12.0`` and ``1,000`` match ``12`` and ``1000``); for code rows the
  answer test does not apply, a hint holding a fenced code block is rejected
  (``code_block``);
- the hint prompt's "solution" is the row's solution when it has one (or the model's,
  below), else OPSD-gt's answer text: DAPO and Skywork rows carry only answers;
- a row that gets no valid hint keeps ``hint`` None and is counted (``hints.missing``);
  OPSD-hint refuses a file with such rows, so either rerun with more ``attempts`` or
  pass ``drop_missing=True`` to leave those rows out of the output (counted).

OPSD-gt's solution for a row without one (our choices; the paper does not say how a
"ground-truth solution" was had for answer-only sets):

- ``solution_source="answer"`` (default): ``answer_solution`` of the templates, "The final
  answer is <ground truth>." - the answer only, not a worked solution;
- ``solution_source="model"``: the instruction model writes a worked solution given the
  problem and the answer, kept only when its last ``\\boxed{}`` matches the ground truth
  exactly (the strict grader's comparison), else, after ``attempts`` tries, the answer
  text (counted as ``answer_fallback``);
- code rows: an answer is not meaningful, so the text is one of the row's tests
  (``code_example``: its first test; counted as ``code_example``); with ``model`` the
  model writes a program, kept only when it passes every test (graded by the reward's
  code-test rules), else the test text (``code_example_fallback``).

Rows keep their schema: the output is the input's columns, with ``extra_info.solution``
and ``extra_info.hint`` added when absent (``rl_schema()`` for files built by
``sodctl data rl``). Work is kept in restartable shards (``Shards``). Output:
``out/rl-privileged.parquet`` and ``out/manifest.json`` (kind ``hints``).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from sodctl.data.builders.common import (
    Shards,
    chunks,
    counted,
    file_identity,
    fingerprint_of,
    input_entry,
    output_entry,
    write_manifest,
    write_parquet,
)
from sodctl.data.prompting import json_cell
from sodctl.errors import SodctlUsageError

BUILDER_VERSION = "hints-1"
TEMPLATES_FILE = Path(__file__).with_name("hint_prompts.yaml")
TEMPLATE_FIELDS: dict[str, tuple[str, ...]] = {
    "hint_request": ("problem", "solution"),
    "solution_request": ("problem", "answer"),
    "code_solution_request": ("problem", "example"),
    "answer_solution": ("answer",),
    "code_example": ("example",),
    "example_io": ("input", "output"),
    "example_assert": ("assert_line", "entry_point"),
}
OUTPUT_FILE = "rl-privileged.parquet"
SHARDS_DIR = "shards"
SOLUTION_SOURCES = ("answer", "model")
END_TOKENS = ("<|im_end|>", "<|endoftext|>")


# --- templates -----------------------------------------------------------------------------


def load_templates(path: str | Path | None = None) -> dict[str, str]:
    """The hint templates (``hint_prompts.yaml`` or a user's copy); one line for a missing
    piece or one that does not format."""
    import yaml

    file = Path(path) if path else TEMPLATES_FILE
    if not file.is_file():
        raise SodctlUsageError(f"hint templates: no such file {file}")
    try:
        data = yaml.safe_load(file.read_text())
    except yaml.YAMLError as e:
        raise SodctlUsageError(f"hint templates: {file} is not YAML ({type(e).__name__})") from None
    if not isinstance(data, dict):
        raise SodctlUsageError(f"hint templates: {file} is not a mapping of templates")
    missing = sorted(k for k in TEMPLATE_FIELDS if k not in data)
    if missing:
        raise SodctlUsageError(f"hint templates: {file} lacks {missing}")
    for key, fields in TEMPLATE_FIELDS.items():
        try:
            str(data[key]).format(**dict.fromkeys(fields, ""))
        except (KeyError, IndexError, ValueError) as e:
            raise SodctlUsageError(
                f"hint templates: {file}: {key!r} does not format ({type(e).__name__}: {e}); "
                f"placeholders allowed: {', '.join('{' + f + '}' for f in fields)}"
            ) from None
    return {k: str(data[k]) for k in TEMPLATE_FIELDS}


# --- leak tests ----------------------------------------------------------------------------

_LATEX_NOISE = re.compile(r"\\left|\\right|\\displaystyle|\\[!,;:]|\$|\s+")
_NUMBER = re.compile(r"(?<![\w.])(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d+))?(?![\w]|\.\d)")
_FRACTION = re.compile(r"\\[dt]?frac\{(\d+)\}\{(\d+)\}|(?<![\w.])(\d+)\s*/\s*(\d+)(?![\w.])")
_GT_NUMBER = re.compile(r"^[-+]?(\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?$")
_GT_FRACTION = re.compile(r"^[-+]?(?:\\[dt]?frac\{(\d+)\}\{(\d+)\}|(\d+)/(\d+))$")
_CODE_BLOCK = re.compile(r"```[^\n`]*\n.*?```", re.S)


def _latex_norm(text: str) -> str:
    text = _LATEX_NOISE.sub("", text.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac"))
    return text.replace("{,}", ",").rstrip(".")


def numeric_value(text: str) -> Fraction | None:
    """The value of a numeric ground truth (``12``, ``-3``, ``0.5``, ``1,000``, ``\\frac{1}{2}``,
    ``3/4``), unsigned; None for anything else."""
    t = _latex_norm(text)
    if _GT_NUMBER.match(t):
        return abs(Fraction(t.replace(",", "")))
    m = _GT_FRACTION.match(t)
    if m:
        num, den = (m.group(1), m.group(2)) if m.group(1) else (m.group(3), m.group(4))
        return Fraction(int(num), int(den)) if int(den) else None
    return None


def numbers_in(text: str) -> set[Fraction]:
    """Every number written in ``text`` (unsigned), fractions included by value."""
    text = re.sub(r"(?<=\d)\\,(?=\d{3})", "", text).replace("{,}", ",")
    values = {
        Fraction(f"{m.group(1).replace(',', '')}.{m.group(2) or '0'}")
        for m in _NUMBER.finditer(text)
    }
    for m in _FRACTION.finditer(text):
        num, den = (m.group(1), m.group(2)) if m.group(1) else (m.group(3), m.group(4))
        if int(den):
            values.add(Fraction(int(num), int(den)))
    return values


def _letter_leak(hint: str, letter: str) -> bool:
    L = re.escape(letter)
    patterns = (
        rf"\(\s*{L}\s*\)",
        rf"(?<![A-Za-z]){L}\)",
        rf"(?i:\b(?:option|choice|answer|letter))\s*(?i:is)?\s*:?\s*\(?{L}(?![A-Za-z])",
    )
    return any(re.search(p, hint) for p in patterns)


def answer_leaks(hint: str, answer: str, kind: str) -> bool:
    """Whether ``hint`` states ``answer`` as a standalone token: numbers by value (word and
    number boundaries), LaTeX expressions after normalisation (spacing, ``\\left``,
    ``\\dfrac``), words case-insensitively, an option letter only in an answer-like
    position (``(B)``, ``B)``, ``option B``)."""
    answer = answer.strip()
    if not answer:
        return False
    value = numeric_value(answer)
    if value is not None:
        return value in numbers_in(hint)
    if kind == "mcq" and len(answer) == 1 and answer.isalpha():
        return _letter_leak(hint, answer.upper())
    norm = _latex_norm(answer)
    if not norm:
        return False
    if not norm.isalnum():  # an expression: look for it in the normalised hint
        return norm in _latex_norm(hint)
    return re.search(rf"(?<![A-Za-z0-9]){re.escape(norm)}(?![A-Za-z0-9])", hint, re.I) is not None


def leak_reason(hint: str, answers: Sequence[str], kind: str) -> str | None:
    """Why a hint is rejected (``empty``, ``boxed``, ``code_block``, ``answer``), or None."""
    if not hint.strip():
        return "empty"
    if "\\boxed" in hint:
        return "boxed"
    if _CODE_BLOCK.search(hint):
        return "code_block"
    if kind != "code" and any(answer_leaks(hint, a, kind) for a in answers):
        return "answer"
    return None


# --- rows ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class HintRow:
    """What the builder needs of one RL row."""

    index: int
    problem: str
    kind: str
    ground_truth: str  # as the graders take it (code: the JSON tests spec)
    answers: tuple[str, ...]
    solution: str | None
    hint: str | None


def hint_row(row: Mapping[str, Any], index: int, file: str) -> HintRow:
    """A row of the RL file as the builder reads it; one line for a broken row."""
    from sodctl.data.builders.common import row_error
    from sodctl.rewards.mcq import option_letter
    from sodctl.rewards.verl_compat import kind_for_source

    prompt = json_cell(row.get("prompt"))
    if isinstance(prompt, str):
        problem = prompt
    elif isinstance(prompt, list) and prompt and all(isinstance(m, Mapping) for m in prompt):
        user = next((m for m in prompt if m.get("role") == "user"), prompt[0])
        problem = str(user.get("content") or "")
    else:
        raise row_error(file, index, "prompt", "expected a list of {role, content} messages")
    rm = json_cell(row.get("reward_model"))
    if not isinstance(rm, Mapping) or rm.get("ground_truth") is None:
        raise row_error(file, index, "reward_model", "no ground_truth")
    gt = rm["ground_truth"]
    extra = json_cell(row.get("extra_info")) or {}
    extra = extra if isinstance(extra, Mapping) else {}
    kind = str(extra.get("kind") or kind_for_source(str(row.get("data_source") or ""), gt))
    truth = gt if isinstance(gt, str) else json.dumps(gt)
    answers: list[str] = []
    if kind != "code":
        listed = extra.get("answers")
        decoded = json_cell(gt)
        if listed:
            answers = [str(a) for a in listed]
        elif isinstance(decoded, list) and decoded and all(isinstance(a, str) for a in decoded):
            # Skywork math: '["12"]'
            answers = [str(a) for a in decoded]
        else:
            answers = [str(gt)]
        if kind == "mcq":
            answers = [option_letter(a) for a in answers]
    return HintRow(
        index, problem, kind, truth, tuple(answers),
        str(extra["solution"]) if extra.get("solution") else None,
        str(extra["hint"]) if extra.get("hint") else None,
    )  # fmt: skip


def code_example(templates: Mapping[str, str], ground_truth: str) -> str | None:
    """The first test of a code row in the templates' words, or None without one."""
    from sodctl.rewards.code import AssertCase, parse_tests

    try:
        first = parse_tests(ground_truth)[0]
    except (ValueError, IndexError):
        return None
    if isinstance(first, AssertCase):
        example = templates["example_assert"].format(
            assert_line=first.assert_line.strip(), entry_point=first.entry_point
        )
    else:
        example = templates["example_io"].format(input=first.input, output=first.output)
    return templates["code_example"].format(example=example)


# --- generation ----------------------------------------------------------------------------


def _clean(text: str) -> tuple[str, bool]:
    """The generated text without end tokens and thinking; and whether it is complete."""
    for tok in END_TOKENS:
        text = text.replace(tok, "")
    text = re.sub(r"<think>.*?</think>", "", text, flags=re.S)
    return text.strip(), "<think>" not in text


def _seed(seed: int, *parts: object) -> int:
    digest = hashlib.sha256("/".join(str(p) for p in (seed, *parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


@dataclass
class _Writer:
    """The instruction model; its engine is made on first use."""

    cfg: Any
    model: str | None
    engine: Any
    seed: int
    hint_tokens: int
    solution_tokens: int

    def generate(
        self, requests: Sequence[str], max_tokens: int, *parts: object
    ) -> list[tuple[str, bool]]:
        from sodctl.rollout.agent import chat_prompt_ids
        from sodctl.rollout.engine import SamplingParams

        if self.engine is None:
            from sodctl.eval.runner import make_engine

            if self.model is None:
                raise SodctlUsageError(
                    "data hints needs --model (the instruction model that writes the texts)"
                )
            self.engine = make_engine(self.cfg, self.model)
        tok = self.engine.tokenizer
        ev = self.cfg.eval
        params = SamplingParams(
            max_new_tokens=max_tokens, temperature=ev.temperature, top_p=ev.top_p, top_k=ev.top_k,
            seed=_seed(self.seed, *parts),
        )  # fmt: skip
        prompts = [chat_prompt_ids(tok, [{"role": "user", "content": r}]) for r in requests]
        out = []
        for c in self.engine.generate(prompts, params):
            text, complete = _clean(c.text)
            out.append((text, complete and c.finish_reason != "length"))
        return out


def _solution_verdict(row: HintRow, text: str, complete: bool) -> str | None:
    """Why a model's math solution is not kept (None: kept)."""
    from sodctl.rewards.boxed import last_box
    from sodctl.rewards.mcq import option_letter

    if not complete:
        return "truncated"
    box = last_box(text)
    if box is None:
        return "no_box"
    pred = option_letter(box) if row.kind == "mcq" else box
    return None if pred in row.answers else "wrong_answer"


def _passes_tests(programs: Sequence[str], rows: Sequence[HintRow], cfg: Any) -> list[bool]:
    """Whether each generated program passes every test of its row (the reward's rules)."""
    from sodctl.rewards import grade_many
    from sodctl.rewards.reward import code_test_options

    if not programs:
        return []
    results = grade_many(
        list(programs), [r.ground_truth for r in rows], kind="code", **code_test_options(cfg.reward)
    )
    return [g.correct for g in results]


def _make_solutions(
    rows: Sequence[HintRow], writer: _Writer | None, templates: Mapping[str, str], *,
    source: str, attempts: int, shard: int, cfg: Any, rejected: dict[int, Counter[str]],
) -> dict[int, tuple[str | None, str]]:  # fmt: skip
    """``index -> (solution, origin)`` for every row of a shard."""
    result: dict[int, tuple[str | None, str]] = {}
    fallback: dict[int, tuple[str | None, str]] = {}
    pending: list[HintRow] = []
    for r in rows:
        if r.solution:
            result[r.index] = (r.solution, "existing")
            continue
        if r.kind == "code":
            example = code_example(templates, r.ground_truth)
            fallback[r.index] = (example, "code_example" if example else "none")
        else:
            fallback[r.index] = (templates["answer_solution"].format(answer=r.answers[0]), "answer")
        if source == "model":
            pending.append(r)
    for attempt in range(attempts if writer is not None else 0):
        if not pending:
            break
        requests = [
            templates["code_solution_request"].format(
                problem=r.problem, example=fallback[r.index][0] or ""
            )
            if r.kind == "code"
            else templates["solution_request"].format(problem=r.problem, answer=r.answers[0])
            for r in pending
        ]
        outs = writer.generate(requests, writer.solution_tokens, "solution", shard, attempt)
        code_at = [k for k, r in enumerate(pending) if r.kind == "code" and outs[k][1]]
        passed = _passes_tests([outs[k][0] for k in code_at], [pending[k] for k in code_at], cfg)
        graded = dict(zip(code_at, passed))
        left = []
        for k, (r, (text, complete)) in enumerate(zip(pending, outs)):
            if r.kind == "code":
                why = "truncated" if not complete else (None if graded[k] else "tests_failed")
            else:
                why = _solution_verdict(r, text, complete)
            if why is None:
                result[r.index] = (text, "model")
            else:
                rejected.setdefault(r.index, Counter())[why] += 1
                left.append(r)
        pending = left
    for r in rows:
        if r.index not in result:
            text, origin = fallback[r.index]
            if source == "model" and text is not None:
                origin += "_fallback"
            result[r.index] = (text, origin)
    return result


def _make_hints(
    rows: Sequence[HintRow], solutions: Mapping[int, tuple[str | None, str]], writer: _Writer,
    templates: Mapping[str, str], *, attempts: int, shard: int, rejected: dict[int, Counter[str]],
) -> dict[int, tuple[str | None, str, int]]:  # fmt: skip
    """``index -> (hint, origin, generations)`` for every row of a shard."""
    result: dict[int, tuple[str | None, str, int]] = {}
    pending = []
    for r in rows:
        if r.hint:
            result[r.index] = (r.hint, "existing", 0)
        else:
            pending.append(r)
    tries: Counter[int] = Counter()
    for attempt in range(attempts):
        if not pending:
            break
        requests = [
            templates["hint_request"].format(
                problem=r.problem, solution=solutions[r.index][0] or ""
            )
            for r in pending
        ]
        outs = writer.generate(requests, writer.hint_tokens, "hint", shard, attempt)
        left = []
        for r, (text, complete) in zip(pending, outs):
            tries[r.index] += 1
            why = "truncated" if not complete else leak_reason(text, r.answers, r.kind)
            if why is None:
                result[r.index] = (text, "model", tries[r.index])
            else:
                rejected.setdefault(r.index, Counter())[why] += 1
                left.append(r)
        pending = left
    for r in pending:
        result[r.index] = (None, "none", tries[r.index])
    return result


# --- the build -----------------------------------------------------------------------------


def shard_schema() -> Any:
    import pyarrow as pa

    return pa.schema(
        [
            ("index", pa.int64()),
            ("solution", pa.string()),
            ("solution_origin", pa.string()),
            ("hint", pa.string()),
            ("hint_origin", pa.string()),
            ("hint_generations", pa.int64()),
            # the row's rejections, JSON: {"hint": {reason: n}, "solution": {reason: n}}
            ("rejected", pa.string()),
        ]
    )


@dataclass
class HintsBuild:
    """What ``build_hints`` wrote and counted."""

    out: Path
    path: Path
    rows: int
    manifest: dict[str, Any]
    generated_shards: int

    def summary(self) -> str:
        m = self.manifest
        sol = ", ".join(f"{k} {v}" for k, v in m["solutions"]["origins"].items())
        text = f"OPSD privileged texts: {self.rows} rows -> {self.path}; solutions: {sol}"
        if m["hints"]["enabled"]:
            h = m["hints"]
            text += (
                f"; hints: {h['origins'].get('model', 0)} written, {h['origins'].get('existing', 0)} kept, "
                f"{h['generations']} generated, rejected {h['rejected'] or 0}"
            )
            if h["missing"]:
                text += f"; WARNING: {h['missing']} row(s) have no hint" + (
                    " and were left out"
                    if h["dropped"]
                    else " (OPSD-hint refuses them: rebuild with --force and more --attempts, "
                    "or leave them out with --drop-missing)"
                )
        return text


def _read_rows(rl_file: str | Path) -> tuple[list[dict[str, Any]], Any]:
    import pyarrow.parquet as pq

    path = Path(rl_file)
    if not path.is_file():
        raise SodctlUsageError(
            f"RL file: no such file {path}; build it with sodctl data rl or fetch rl-30k"
        )
    try:
        table = pq.read_table(path)
    except Exception as e:  # noqa: BLE001 - pyarrow raises many kinds; all mean "not parquet"
        raise SodctlUsageError(
            f"RL file: cannot read {path} as parquet ({type(e).__name__})"
        ) from None
    missing = [c for c in ("prompt", "reward_model") if c not in table.column_names]
    if missing:
        raise SodctlUsageError(
            f"RL file: {path} lacks column(s) {missing}; found {table.column_names}"
        )
    return table.to_pylist(), table.schema.remove_metadata()


def _output_schema(schema: Any) -> Any:
    """The input's schema with string ``solution`` / ``hint`` fields in ``extra_info``."""
    import pyarrow as pa

    if "extra_info" not in schema.names:
        extra = pa.struct([("solution", pa.string()), ("hint", pa.string())])
        return schema.append(pa.field("extra_info", extra))
    i = schema.get_field_index("extra_info")
    typ = schema.field(i).type
    if not pa.types.is_struct(typ):
        return schema  # a JSON string: updated as text
    fields = [typ.field(k) for k in range(typ.num_fields)]
    names = {f.name for f in fields}
    fields += [pa.field(n, pa.string()) for n in ("solution", "hint") if n not in names]
    return schema.set(i, pa.field("extra_info", pa.struct(fields)))


def _with_texts(row: dict[str, Any], solution: str | None, hint: str | None) -> dict[str, Any]:
    extra = row.get("extra_info")
    as_text = isinstance(extra, str)
    data = dict(json_cell(extra) or {}) if as_text or extra is None else dict(extra)
    data["solution"], data["hint"] = solution, hint
    return {**row, "extra_info": json.dumps(data) if as_text else data}


def build_hints(
    rl_file: str | Path,
    out: str | Path,
    *,
    model: str | None,
    cfg: Any,
    solution_source: str = "answer",
    hints: bool = True,
    attempts: int = 3,
    seed: int = 42,
    shard_size: int = 64,
    force: bool = False,
    progress: bool = True,
    engine: Any = None,
    drop_missing: bool = False,
    hint_tokens: int = 512,
    solution_tokens: int = 4096,
    templates_file: str | Path | None = None,
) -> HintsBuild:
    """Add OPSD's hints and solutions to every row of ``rl_file`` (module docstring).
    ``engine`` replaces ``make_engine(cfg, model)`` (tests); ``drop_missing`` leaves out
    rows that got no valid hint."""
    from omegaconf import OmegaConf

    from sodctl.progress import progress_bar

    if solution_source not in SOLUTION_SOURCES:
        raise SodctlUsageError(
            f"--solution-source {solution_source!r}: choose {' or '.join(SOLUTION_SOURCES)}"
        )
    if attempts < 1 or shard_size < 1:
        raise SodctlUsageError("--attempts and --shard-size must be positive integers")
    needs_model = hints or solution_source == "model"
    if needs_model and model is None and engine is None:
        raise SodctlUsageError(
            "data hints needs --model (the instruction model that writes the hints); "
            "--no-hints --solution-source answer needs none"
        )
    templates = load_templates(templates_file)
    raw_rows, schema = _read_rows(rl_file)
    rows = [hint_row(r, i, str(rl_file)) for i, r in enumerate(raw_rows)]
    ev = cfg.eval
    fingerprint = {
        "builder": BUILDER_VERSION,
        "rl_file": file_identity(rl_file),
        "model": model if needs_model else None,
        "solution_source": solution_source,
        "hints": hints,
        "attempts": attempts,
        "seed": seed,
        "shard_size": shard_size,
        "sampling": {"temperature": ev.temperature, "top_p": ev.top_p, "top_k": ev.top_k,
                     "hint_tokens": hint_tokens, "solution_tokens": solution_tokens},
        "templates": fingerprint_of(templates),
        "code_tests": fingerprint_of(OmegaConf.to_container(cfg.reward, resolve=True, enum_to_str=True)),
    }  # fmt: skip
    out = Path(out)
    shards = Shards(out / SHARDS_DIR, fingerprint, force=force)
    writer = (
        _Writer(cfg, model, engine, seed, hint_tokens, solution_tokens) if needs_model else None
    )
    ranges = chunks(len(rows), shard_size)
    generated = 0
    with progress_bar("{task.description}", disable=not progress) as bar:
        task = bar.add_task("privileged texts", total=len(rows))
        for index, r in enumerate(ranges):
            if not shards.done(index):
                shards.write(index, _run_shard([rows[i] for i in r], writer, templates, index, cfg=cfg,
                             solution_source=solution_source, hints=hints, attempts=attempts),
                             schema=shard_schema())  # fmt: skip
                generated += 1
            bar.update(task, advance=len(r))
    import pyarrow.parquet as pq

    done = {
        int(d["index"]): d
        for i in range(len(ranges))
        for d in pq.read_table(shards.path(i)).to_pylist()
    }
    return _finish(out, rl_file, raw_rows, rows, done, schema, model=model if needs_model else None,
                   solution_source=solution_source, hints=hints, attempts=attempts, seed=seed,
                   drop_missing=drop_missing, generated=generated)  # fmt: skip


def _run_shard(
    rows: Sequence[HintRow], writer: _Writer | None, templates: Mapping[str, str], shard: int, *,
    cfg: Any, solution_source: str, hints: bool, attempts: int,
) -> list[dict[str, Any]]:  # fmt: skip
    sol_rejected: dict[int, Counter[str]] = {}
    hint_rejected: dict[int, Counter[str]] = {}
    solutions = _make_solutions(rows, writer, templates, source=solution_source, attempts=attempts,
                                shard=shard, cfg=cfg, rejected=sol_rejected)  # fmt: skip
    made = (
        _make_hints(
            rows,
            solutions,
            writer,
            templates,
            attempts=attempts,
            shard=shard,
            rejected=hint_rejected,
        )
        if hints and writer is not None
        else {r.index: (r.hint, "existing" if r.hint else "disabled", 0) for r in rows}
    )
    out = []
    for r in rows:
        solution, sol_origin = solutions[r.index]
        hint, hint_origin, gens = made[r.index]
        rejected = {
            "hint": dict(hint_rejected.get(r.index, {})),
            "solution": dict(sol_rejected.get(r.index, {})),
        }
        out.append({
            "index": r.index, "solution": solution, "solution_origin": sol_origin, "hint": hint,
            "hint_origin": hint_origin, "hint_generations": gens, "rejected": json.dumps(rejected),
        })  # fmt: skip
    return out


def _finish(
    out: Path, rl_file: str | Path, raw_rows: Sequence[dict[str, Any]], rows: Sequence[HintRow],
    done: Mapping[int, Mapping[str, Any]], schema: Any, *, model: str | None, solution_source: str,
    hints: bool, attempts: int, seed: int, drop_missing: bool, generated: int,
) -> HintsBuild:  # fmt: skip
    hint_rejected: Counter[str] = Counter()
    sol_rejected: Counter[str] = Counter()
    for d in done.values():
        rej = json.loads(d["rejected"] or "{}")
        hint_rejected.update(rej.get("hint", {}))
        sol_rejected.update(rej.get("solution", {}))
    written = []
    missing = 0
    for r, raw in zip(rows, raw_rows):
        d = done[r.index]
        if hints and not d["hint"]:
            missing += 1
            if drop_missing:
                continue
        written.append(_with_texts(raw, d["solution"], d["hint"]))
    if not written:
        raise SodctlUsageError(
            f"data hints: no row of {rl_file} got a valid hint ({dict(hint_rejected)} rejected); "
            f"the shards in {out / SHARDS_DIR} are left for inspection"
        )
    path = write_parquet(out / OUTPUT_FILE, written, schema=_output_schema(schema))
    body = {
        "builder": BUILDER_VERSION,
        "seed": seed,
        "model": model,
        "solution_source": solution_source,
        "attempts": attempts,
        "inputs": [input_entry("rl", rl_file, rows=len(raw_rows))],
        "outputs": [output_entry(path, len(written), root=out)],
        "rows": len(raw_rows),
        "kinds": counted(r.kind for r in rows),
        "solutions": {
            "origins": counted(str(d["solution_origin"]) for d in done.values()),
            "rejected": dict(sorted(sol_rejected.items())),
        },
        "hints": {
            "enabled": hints,
            "origins": counted(str(d["hint_origin"]) for d in done.values()),
            "generations": sum(int(d["hint_generations"]) for d in done.values()),
            "rejected": dict(sorted(hint_rejected.items())),
            "missing": missing if hints else 0,
            "dropped": missing if hints and drop_missing else 0,
        },
    }
    write_manifest(out, "hints", body)
    manifest = json.loads((out / "manifest.json").read_text())
    return HintsBuild(out, path, len(written), manifest, generated)
