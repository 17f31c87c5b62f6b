"""``sodctl data inspect FILE``: what a data file holds and whether the engines can read it.

The file's kind is told from its columns: RL (``prompt`` + ``reward_model``), SFT
(``messages``), or a benchmark (its ``data_source`` value, else its release columns).
The report gives:

* the schema check: every missing or ill-typed column, with the first bad row and how
  many rows share the problem (the CLI exits 2 when there is any);
* counts per ``data_source`` (RL: with the reward kind each routes to), or per
  conversation shape (SFT: assistant turns, tool calls, the final answer's form);
* token lengths (the prompt as the engine wraps and templates it for RL, as evaluation
  does for benchmarks; the whole conversation with its tool schemas for SFT), with the
  count over ``data.max_prompt_tokens``; character lengths when no tokenizer loads;
* one example (``--row``) rendered with the chat template and the tool schema.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sodctl.data.files import read_parquet, to_python
from sodctl.data.prompting import json_cell
from sodctl.errors import SodctlUsageError

Check = Callable[[Any], str | None]  # a cell -> what is wrong with it, or None


@dataclass
class InspectReport:
    file: Path
    kind: str
    rows: int
    problems: list[str] = field(default_factory=list)
    sections: list[tuple[str, str]] = field(default_factory=list)

    def text(self) -> str:
        lines = [f"{self.file}: {self.kind}, {self.rows} rows"]
        lines.append(
            "schema: ok" if not self.problems else f"schema: {len(self.problems)} problem(s)"
        )
        lines += [f"  - {p}" for p in self.problems]
        for title, body in self.sections:
            lines += ["", f"{title}:", *[f"  {line}" for line in body.splitlines()]]
        return "\n".join(lines)


# --- cell checks ----------------------------------------------------------------------------


def _text(value: Any) -> str | None:
    return None if isinstance(value, str) and value.strip() else "not a non-empty string"


def messages_problem(
    value: Any, roles: Sequence[str] = ("system", "user", "assistant", "tool")
) -> str | None:
    """What is wrong with a ``messages`` cell (roles, text content, tool calls with a
    name and JSON arguments), or None; ``sodctl data fetch sft-3k`` runs it on every row."""
    if isinstance(value, str):
        return None if value.strip() else "empty"
    if not isinstance(value, list) or not value:
        return "not a non-empty list of {role, content} messages"
    for j, m in enumerate(value):
        if not isinstance(m, Mapping):
            return f"message {j} is not a mapping"
        if m.get("role") not in roles:
            return f"message {j} has role {m.get('role')!r} (expected one of {', '.join(roles)})"
        content = m.get("content")
        if content is not None and not isinstance(content, str):
            return f"message {j}'s content is {type(content).__name__}, not text"
        for c in m.get("tool_calls") or []:
            fn = c.get("function", c) if isinstance(c, Mapping) else None
            if not isinstance(fn, Mapping) or not fn.get("name"):
                return f"message {j} has a tool call without a function name"
            args = fn.get("arguments")
            if isinstance(args, str):
                try:
                    json.loads(args)
                except json.JSONDecodeError:
                    return f"message {j}'s tool-call arguments are not JSON"
            elif args is not None and not isinstance(args, Mapping):
                return f"message {j}'s tool-call arguments are {type(args).__name__}"
    return None


def _prompt(value: Any) -> str | None:
    wrong = messages_problem(value, ("system", "user"))
    if (
        wrong is None
        and isinstance(value, list)
        and not any(m.get("role") == "user" for m in value)
    ):
        return "holds no user message"
    return wrong


def _reward_model(value: Any) -> str | None:
    value = json_cell(value)
    if not isinstance(value, Mapping):
        return "not a mapping with a ground_truth"
    if value.get("ground_truth") in (None, "", [], {}):
        return "has no ground_truth"
    return None


def _mapping(value: Any) -> str | None:
    return None if isinstance(json_cell(value), Mapping) else "not a mapping (or its JSON)"


def _tools(value: Any) -> str | None:
    value = json_cell(value)
    if value in (None, ""):
        return None
    if not isinstance(value, list) or not all(isinstance(t, Mapping) for t in value):
        return "not a list of tool schemas (or its JSON)"
    return None


# (column, check, required)
RL_COLUMNS: tuple[tuple[str, Check, bool], ...] = (
    ("data_source", _text, True),
    ("prompt", _prompt, True),
    ("reward_model", _reward_model, True),
    ("ability", lambda v: None if v is None or isinstance(v, str) else "not a string", False),
    ("extra_info", _mapping, False),
    ("agent_name", _text, False),
)
SFT_COLUMNS: tuple[tuple[str, Check, bool], ...] = (
    ("messages", messages_problem, True),
    ("tools", _tools, False),
)


def check_columns(
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[str],
    spec: Sequence[tuple[str, Check, bool]],
) -> tuple[list[str], list[str]]:
    """``(problems, notes)``: every required column missing or with ill-typed cells (the
    first bad row, and how many more), and the optional columns a file lacks."""
    problems, notes = [], []
    for column, check, required in spec:
        if column not in columns:
            (problems if required else notes).append(
                f"column {column!r} is missing" + ("" if required else " (optional)")
            )
            continue
        bad = []
        for i, r in enumerate(rows):
            value = r.get(column)
            why = check(value) if value is not None else ("empty" if required else None)
            if why is not None:
                bad.append((i, why))
        if bad:
            i, why = bad[0]
            more = f" (and {len(bad) - 1} more rows)" if len(bad) > 1 else ""
            problems.append(f"column {column!r}: row {i}: {why}{more}")
    return problems, notes


# --- lengths ----------------------------------------------------------------------------------


def length_stats(lengths: Sequence[int], limit: int | None = None, unit: str = "tokens") -> str:
    import numpy as np

    if not lengths:
        return "no rows"
    a = np.asarray(lengths)
    text = (
        f"{unit}: min {a.min()}, median {int(np.median(a))}, mean {a.mean():.1f}, "
        f"p95 {int(np.percentile(a, 95))}, max {a.max()}"
    )
    if limit is not None:
        text += f"; over {limit}: {int((a > limit).sum())}"
    return text


def _load_tokenizer(name: str | None) -> tuple[Any, str]:
    from sodctl.data.builders.common import load_tokenizer

    if not name:
        return None, "no tokenizer given (pass --tokenizer PATH); lengths in characters"
    try:
        return load_tokenizer(
            name, what="token lengths", fix="pass --tokenizer PATH"
        ), f"tokenizer {name}"
    except SodctlUsageError as e:  # lengths in characters instead
        return None, f"{e.message}; lengths in characters"


# --- the report -------------------------------------------------------------------------------


def detect_kind(columns: Sequence[str], rows: Sequence[Mapping[str, Any]]) -> str:
    from sodctl.data.benchmarks import BENCHMARKS

    if "messages" in columns:
        return "sft"
    if "prompt" in columns and "reward_model" in columns:
        return "rl"
    if "data_source" in columns and rows:
        source = str(rows[0].get("data_source"))
        for name, spec in BENCHMARKS.items():
            if spec.data_source == source:
                return f"benchmark:{name}"
    for name, spec in BENCHMARKS.items():
        if spec.file and set(spec.columns) - {"domain", "extra_info"} <= set(columns):
            return f"benchmark:{name}"
    return "unknown"


def inspect_file(
    file: str | Path, *, cfg: Any, tokenizer: str | None = None, row: int = 0
) -> InspectReport:
    """The report of ``file`` (module docstring); ``cfg`` gives the prompt wrapping, the
    prompts file and the length limits; ``tokenizer`` defaults to ``cfg.model.path``."""
    file = Path(file)
    frame = read_parquet(file, what="data inspect")
    columns = list(frame.columns)
    rows = [to_python(r) for r in frame.to_dict(orient="records")]
    kind = detect_kind(columns, rows)
    report = InspectReport(file, kind, len(rows))
    if kind == "unknown":
        report.problems.append(
            f"no known schema: columns {columns}; expected RL (prompt, reward_model, data_source), "
            "SFT (messages, tools) or a benchmark's release columns"
        )
        return report
    if row >= max(1, len(rows)):
        raise SodctlUsageError(f"data inspect: --row {row} is past the file's {len(rows)} rows")
    tok, tok_note = _load_tokenizer(tokenizer or str(cfg.model.path))
    if kind == "rl":
        _inspect_rl(report, rows, columns, cfg, tok, tok_note, row)
    elif kind == "sft":
        _inspect_sft(report, rows, columns, tok, tok_note, row)
    else:
        _inspect_bench(report, kind.split(":", 1)[1], cfg, tok, tok_note, row)
    return report


def _tool_schemas() -> list[dict[str, Any]]:
    from sodctl.tools.code_interpreter import tool_schema

    return [tool_schema()]


def _inspect_rl(report, rows, columns, cfg, tok, tok_note, row) -> None:
    from sodctl.data.loaders import load_prompts
    from sodctl.data.prompting import prompt_length, wrap_rl_rows
    from sodctl.rewards.verl_compat import kind_for_source

    problems, notes = check_columns(rows, columns, RL_COLUMNS)
    report.problems += problems
    if notes:
        report.sections.append(("notes", "\n".join(notes)))
    if problems:
        return
    by_source = Counter(str(r["data_source"]) for r in rows)
    kinds: dict[str, str] = {}
    for r in rows:
        source = str(r["data_source"])
        if source not in kinds:
            truth = json_cell(json_cell(r["reward_model"])["ground_truth"])
            kinds[source] = kind_for_source(source, truth)
    report.sections.append(
        (
            "rows per data_source (reward kind)",
            "\n".join(f"{s}: {n} ({kinds[s]})" for s, n in sorted(by_source.items())),
        )
    )
    extra = [json_cell(r.get("extra_info")) or {} for r in rows]
    privileged = {
        k: sum(bool(e.get(k)) for e in extra if isinstance(e, Mapping))
        for k in ("solution", "hint")
    }
    report.sections.append(
        (
            "OPSD privileged texts",
            f"rows with extra_info.solution: {privileged['solution']}; with extra_info.hint: {privileged['hint']}",
        )
    )
    wrapped, applied = wrap_rl_rows(
        rows, load_prompts(cfg.data.prompts_file), str(cfg.data.prompt_wrapping)
    )
    limit = int(cfg.data.max_prompt_tokens)
    head = f"prompts wrapped as data.prompt_wrapping={cfg.data.prompt_wrapping} ({', '.join(f'{k}: {v}' for k, v in applied.items())}); {tok_note}"
    _lengths(
        report,
        "prompt lengths",
        head,
        wrapped,
        (lambda w: prompt_length(tok, w["prompt"])) if tok is not None else None,
        lambda w: sum(len(m["content"]) for m in w["prompt"]),
        limit,
    )
    report.sections.append(
        (
            f"row {row}, as the engine prompts it",
            _render(tok, wrapped[row]["prompt"], _tool_schemas(), True),
        )
    )
    report.sections.append(
        (
            f"row {row}'s ground truth",
            str(json_cell(rows[row]["reward_model"])["ground_truth"])[:400],
        )
    )


def _inspect_sft(report, rows, columns, tok, tok_note, row) -> None:
    from sodctl.data.corpora import plain

    problems, notes = check_columns(rows, columns, SFT_COLUMNS)
    report.problems += problems
    if notes:
        report.sections.append(("notes", "\n".join(notes)))
    if problems:
        return
    convs = [plain(json_cell(r["messages"])) for r in rows]
    tools = [plain(json_cell(r.get("tools"))) or None for r in rows]
    turns = Counter(sum(m["role"] == "assistant" for m in c) for c in convs)
    calls = [sum(len(m.get("tool_calls") or []) for m in c) for c in convs]
    finals = Counter(_final_form(c) for c in convs)
    report.sections.append(
        (
            "conversations",
            "assistant turns: "
            + ", ".join(f"{k}: {v}" for k, v in sorted(turns.items()))
            + f"\ntool calls per conversation: mean {sum(calls) / len(calls):.2f}, none in {sum(c == 0 for c in calls)}"
            + "\nfinal answer: "
            + ", ".join(f"{k}: {v}" for k, v in sorted(finals.items()))
            + f"\nwith a tools column entry: {sum(t is not None for t in tools)}",
        )
    )
    _lengths(
        report,
        "conversation lengths (with tool schemas)",
        tok_note,
        list(zip(convs, tools)),
        (lambda ct: len(tok(_render(tok, *ct, False), add_special_tokens=False)["input_ids"]))
        if tok is not None
        else None,
        lambda ct: sum(len(m.get("content") or "") for m in ct[0]),
        None,
    )
    report.sections.append((f"row {row}, rendered", _render(tok, convs[row], tools[row], False)))


def _lengths(report, title, head, items, tokens, chars, limit) -> None:
    """A length section: token lengths (with the count over ``limit``) when a tokenizer
    loaded (``tokens`` not None), else character lengths."""
    if tokens is not None:
        body = length_stats([tokens(x) for x in items], limit)
    else:
        body = length_stats([chars(x) for x in items], None, "characters")
    report.sections.append((title, head + "\n" + body))


def _final_form(messages: Sequence[Mapping[str, Any]]) -> str:
    last = next(
        (m.get("content") or "" for m in reversed(messages) if m["role"] == "assistant"), ""
    )
    if "```python" in last:
        return "python block"
    return "\\boxed" if "\\boxed" in last else "other"


def _inspect_bench(report, bench, cfg, tok, tok_note, row) -> None:
    from sodctl.data.loaders import load_benchmark
    from sodctl.data.prompting import prompt_length

    try:
        problems = load_benchmark(
            bench,
            path=str(report.file),
            prompts_file=cfg.data.prompts_file,
            lcb_examples=str(cfg.eval.lcb_examples),
        )
    except SodctlUsageError as e:
        report.problems.append(e.message)
        return
    report.sections.append(
        (
            "benchmark",
            f"{bench}: {len(problems)} problems ({problems[0].kind if problems else '-'})",
        )
    )
    limit = int(cfg.eval.max_prompt_tokens)
    _lengths(
        report,
        "prompt lengths",
        tok_note,
        problems,
        (lambda p: prompt_length(tok, p.messages())) if tok is not None else None,
        lambda p: len(p.prompt),
        limit,
    )
    if problems:
        report.sections.append(
            (
                f"row {row}, as evaluation prompts it",
                _render(tok, problems[row].messages(), _tool_schemas(), True),
            )
        )


def _render(tok, messages, tools, generation_prompt: bool) -> str:
    if tok is None or getattr(tok, "chat_template", None) is None:
        return json.dumps({"messages": messages, "tools": tools}, indent=1, default=str)[:4000]
    return tok.apply_chat_template(
        [dict(m) for m in messages],
        tools=tools or None,
        add_generation_prompt=generation_prompt,
        tokenize=False,
    )
