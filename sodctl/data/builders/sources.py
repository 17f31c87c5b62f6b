"""The four sources of the RL mixture (paper Table 3) and how each becomes RL rows.

``RL_SOURCES`` maps a source's name (``sodctl data rl --source NAME=PATH``) to an
``RLSource``: its Table 3 label and domain, the hub dataset it comes from, the files of
the right split (``patterns``), the paper's row count, the columns its rows must have,
and a normaliser that turns the source's raw rows into rows of the engines' RL schema
(``schema.rl_row``) and counts what it did (``Normalised``). The schemas and quirks are
those of DATA-SOURCES.md §2-4.

Released behaviour (what the 30K release and the authors' preprocessing did):

- rows keep the source's own prompt text, unwrapped: the engines wrap it at load
  (``data.prompt_wrapping``), as the released loader did;
- ``data_source`` names: ``math_dapo``, Skywork's own (``train-math-*``, ``train-code-*``),
  ``mega-science``; the released reward routes a row to the code scorer iff ``"code"`` is
  in its ``data_source``, so the Skywork names are kept as given;
- Skywork code tests drop their null keys (the Skywork preprocessing did).

Our choices (the release does not say, or says otherwise):

- DAPO-Math-17k holds every problem about 100 times under distinct UUIDs; we keep the
  first row of each problem text (the fixed lead and tail of DAPO's prompt stripped,
  whitespace collapsed, case folded) and count the others as ``duplicates``;
- Skywork math ground truths are JSON lists (``'["12"]'``): the row's ground truth is the
  first answer, ``extra_info.answers`` holds them all when there are several;
- Skywork code rows whose tests ``sodctl.rewards.code.parse_tests`` cannot read are
  dropped (the grader could never score them);
- MegaScience: which 3k "verifiable" rows the authors took is unknown. ``answers=
  "numeric"`` (default) keeps rows whose ``reference_answer`` is a number
  (``numeric_answer`` says which forms, and the form they are written in); ``"all"``
  keeps every non-empty one. The worked ``answer`` is kept as ``extra_info.solution``.

A row that breaks its source's schema (a required column missing, a prompt that is not a
list of messages, a ``reward_model`` that is not a struct) stops the build with one line
naming the file, the row and the column (``common.row_error``); a row whose ground truth
is merely unusable is dropped and counted under a reason.
"""

from __future__ import annotations

import ast
import contextlib
import json
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sodctl.data.builders.common import row_error
from sodctl.data.builders.schema import rl_row
from sodctl.data.files import to_python
from sodctl.errors import SodctlUsageError

#: Where a normaliser's rows came from, for its error messages: one file, or the files of
#: a directory in read order with their row counts (row ``i`` of the whole list is then
#: named by its own file and its row within that file).
Origin = str | Path | Sequence[tuple[str | Path, int]]

MEGASCIENCE_ANSWERS: tuple[str, ...] = ("numeric", "all")


@dataclass
class Normalised:
    """What a normaliser made of a source's rows: the output ``rows`` (``schema.rl_row``,
    in the source's order) and its counts: rows ``read``, ``duplicates`` removed,
    ``dropped`` rows by reason, and ``shapes`` (per-source tallies: the answers' forms, the
    code tests' shapes, ...)."""

    rows: list[dict[str, Any]]
    read: int
    duplicates: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    shapes: dict[str, int] = field(default_factory=dict)

    @property
    def usable(self) -> int:
        return len(self.rows)

    def stats(self) -> dict[str, Any]:
        """The counts, JSON-able (the manifest's per-source entry)."""
        return {
            "read": self.read,
            "duplicates": self.duplicates,
            "dropped": dict(sorted(self.dropped.items())),
            "usable": self.usable,
            "shapes": dict(sorted(self.shapes.items())),
        }


Normaliser = Callable[..., Normalised]


@dataclass(frozen=True)
class RLSource:
    """One source of the RL mixture (module docstring). ``options`` names the keyword
    options its normaliser takes (MegaScience: ``answers``)."""

    name: str
    title: str
    domain: str
    hub_repo: str
    patterns: tuple[str, ...]
    default_count: int
    columns: tuple[str, ...]
    normaliser: Normaliser
    options: tuple[str, ...] = ()

    def normalise(
        self, rows: Sequence[Mapping[str, Any]], file: Origin, **options: Any
    ) -> Normalised:
        """The source's ``rows`` (plain dicts, as ``common.read_table`` gives them) as RL
        rows; ``file`` names where they came from in errors (``Origin``)."""
        unknown = sorted(set(options) - set(self.options))
        if unknown:
            raise SodctlUsageError(
                f"data rl: source {self.name} takes no option(s) {unknown}; "
                f"it takes {list(self.options) or 'none'}"
            )
        return self.normaliser(rows, _Locator(file, len(rows)), self, **options)


# --- shared row checks -----------------------------------------------------------------------


class _Locator:
    """Row ``i`` of a normaliser's input -> (file, row within that file)."""

    def __init__(self, origin: Origin, n: int) -> None:
        if isinstance(origin, (str, Path)):
            self.segments: list[tuple[str, int]] = [(str(origin), n)]
        else:
            self.segments = [(str(f), int(k)) for f, k in origin]

    def __call__(self, i: int) -> tuple[str, int]:
        start = 0
        for f, k in self.segments:
            if i < start + k:
                return f, i - start
            start += k
        f, _ = self.segments[-1] if self.segments else ("<rows>", 0)
        return f, i - start

    def error(self, i: int, column: str, problem: str, src: RLSource) -> SodctlUsageError:
        f, row = self(i)
        fix = f"the {src.title} schema has columns {', '.join(src.columns)}; pass --source {src.name}=PATH to a file in it"
        return row_error(f, row, column, problem, fix)


def _check_columns(row: Mapping[str, Any], i: int, where: _Locator, src: RLSource) -> None:
    for column in src.columns:
        if column not in row:
            raise where.error(i, column, "missing", src)


def _content(row: Mapping[str, Any], i: int, where: _Locator, src: RLSource) -> str:
    """The user message of a one-turn ``prompt`` cell (a list of {role, content})."""
    prompt = to_python(row.get("prompt"))
    if not (isinstance(prompt, list) and prompt and all(isinstance(m, Mapping) for m in prompt)):
        raise where.error(
            i,
            "prompt",
            f"is not a list of {{role, content}} messages ({type(prompt).__name__})",
            src,
        )
    message = next((m for m in prompt if m.get("role") == "user"), prompt[0])
    content = message.get("content")
    if not isinstance(content, str):
        raise where.error(i, "prompt", "its message has no string 'content'", src)
    return content


def _reward_model(row: Mapping[str, Any], i: int, where: _Locator, src: RLSource) -> dict[str, Any]:
    reward_model = to_python(row.get("reward_model"))
    if isinstance(reward_model, str):  # some copies store the struct as JSON text
        with contextlib.suppress(json.JSONDecodeError):
            reward_model = json.loads(reward_model)
    if not isinstance(reward_model, Mapping):
        raise where.error(i, "reward_model", "is not a {ground_truth, style} struct", src)
    return dict(reward_model)


def _extra(row: Mapping[str, Any]) -> dict[str, Any]:
    extra = to_python(row.get("extra_info"))
    if isinstance(extra, str):
        try:
            extra = json.loads(extra)
        except json.JSONDecodeError:
            return {"text": extra}
    return dict(extra) if isinstance(extra, Mapping) else {}


def _source_id(extra: Mapping[str, Any], i: int) -> str:
    index = extra.get("index")
    return str(i) if index is None else str(index)


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def _data_source(
    row: Mapping[str, Any], i: int, where: _Locator, src: RLSource, *, code: bool
) -> str:
    """A Skywork row's data_source, kept as given; it must say which split it is from,
    because the reward routes ``"code" in data_source`` rows to the code scorer."""
    name = _text(row.get("data_source"))
    if not name:
        raise where.error(i, "data_source", "is empty", src)
    if ("code" in name.lower()) != code:
        expected = "train-code-*" if code else "train-math-*"
        raise where.error(
            i,
            "data_source",
            f"is {name!r}, not a {expected} name: is this the other Skywork split?",
            src,
        )
    return name


# --- DAPO-Math-17k ---------------------------------------------------------------------------

DAPO_LEAD = (
    "Solve the following math problem step by step. The last line of your response should be "
    "of the form Answer: $Answer (without quotes) where $Answer is the answer to the problem."
)
DAPO_TAIL = 'Remember to put your answer on its own line after "Answer:".'


def _squash(text: str) -> str:
    return " ".join(text.split()).casefold()


_LEAD_KEY, _TAIL_KEY = _squash(DAPO_LEAD), _squash(DAPO_TAIL)


def dapo_problem_key(content: str) -> str:
    """The text DAPO rows are de-duplicated on: the prompt without DAPO's fixed lead and
    tail, whitespace collapsed to single spaces, case folded."""
    key = _squash(content)
    if key.startswith(_LEAD_KEY):
        key = key[len(_LEAD_KEY) :]
    if key.endswith(_TAIL_KEY):
        key = key[: -len(_TAIL_KEY)]
    return key.strip()


def normalise_dapo(rows: Sequence[Mapping[str, Any]], where: _Locator, src: RLSource) -> Normalised:
    """DAPO-Math-17k: the first row of every problem text (``dapo_problem_key``), its
    prompt kept as written, ``data_source`` ``math_dapo``, ability ``MATH``, the integer
    answer as the ground truth. ``shapes["conflicting_duplicates"]`` counts duplicates
    whose answer differs from the kept row's."""
    out: list[dict[str, Any]] = []
    first: dict[str, str] = {}
    dropped: Counter[str] = Counter()
    duplicates = conflicts = 0
    for i, row in enumerate(rows):
        _check_columns(row, i, where, src)
        content = _content(row, i, where, src)
        reward_model = _reward_model(row, i, where, src)
        truth = _text(reward_model.get("ground_truth"))
        key = dapo_problem_key(content)
        if key in first:
            duplicates += 1
            conflicts += first[key] != truth
            continue
        if not key:
            dropped["empty problem"] += 1
            continue
        if not truth:
            dropped["empty ground truth"] += 1
            continue
        first[key] = truth
        extra = _extra(row)
        out.append(
            rl_row(
                data_source="math_dapo",
                content=content,
                ability="MATH",
                ground_truth=truth,
                style=_text(reward_model.get("style")) or "rule",
                source=src.name,
                source_id=_source_id(extra, i),
                raw=extra,
            )
        )
    shapes = {"conflicting_duplicates": conflicts} if conflicts else {}
    return Normalised(out, len(rows), duplicates, dict(dropped), shapes)


# --- Skywork-OR1 math ------------------------------------------------------------------------


def decode_answers(value: Any) -> list[str] | None:
    """The answers of a Skywork math ground truth: a JSON list string (``'["12"]'``), a
    Python-literal list (``"['8']"``), a real list, or a plain answer string. Each answer
    is stripped; empty ones and repeats are left out. ``[]`` = no answer, None = cannot
    be decoded (a broken list, a nested value). A string that does not start with ``[`` or
    a quote is the answer itself (``"1.50"`` stays ``"1.50"``)."""
    value = to_python(value)
    if value is None:
        return []
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return []
        if text[0] not in "[\"'":
            items: list[Any] = [text]
        else:
            try:
                decoded = json.loads(text)
            except json.JSONDecodeError:
                try:
                    decoded = ast.literal_eval(text)
                except Exception:  # noqa: BLE001 - literal_eval raises many kinds
                    return None
            items = list(decoded) if isinstance(decoded, (list, tuple)) else [decoded]
    elif isinstance(value, (list, tuple)):
        items = list(value)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        items = [value]
    else:
        return None
    answers: list[str] = []
    for item in items:
        if item is None:
            continue
        if isinstance(item, (list, tuple, dict, bool)):
            return None
        text = str(item).strip()
        if text and text not in answers:
            answers.append(text)
    return answers


def normalise_skywork_math(
    rows: Sequence[Mapping[str, Any]], where: _Locator, src: RLSource
) -> Normalised:
    """Skywork-OR1 math: ``data_source`` as given (``train-math-*``), the first decoded
    answer as the ground truth, every answer in ``extra_info.answers`` when there are
    several (``shapes["multi_answer"]``)."""
    out: list[dict[str, Any]] = []
    dropped: Counter[str] = Counter()
    multi = 0
    for i, row in enumerate(rows):
        _check_columns(row, i, where, src)
        content = _content(row, i, where, src)
        reward_model = _reward_model(row, i, where, src)
        data_source = _data_source(row, i, where, src, code=False)
        answers = decode_answers(reward_model.get("ground_truth"))
        if answers is None:
            dropped["undecodable ground truth"] += 1
            continue
        if not answers:
            dropped["empty ground truth"] += 1
            continue
        multi += len(answers) > 1
        extra = _extra(row)
        out.append(
            rl_row(
                data_source=data_source,
                content=content,
                ability=_text(row.get("ability")) or "math",
                ground_truth=answers[0],
                style=_text(reward_model.get("style")) or "rule",
                source=src.name,
                source_id=_source_id(extra, i),
                answers=answers if len(answers) > 1 else None,
                raw=extra,
            )
        )
    return Normalised(out, len(rows), 0, dict(dropped), {"multi_answer": multi})


# --- Skywork-OR1 code ------------------------------------------------------------------------

_LEETCODE_KEYS = ("import_prefix", "test_code", "entry_point")


def clean_tests(value: Any) -> tuple[Any, str, bool]:
    """``(spec, shape, had_nulls)`` of a Skywork code ground truth: the decoded JSON with its
    null keys dropped (``had_nulls``: it had some), checked with ``sodctl.rewards.code.parse_tests``; ``shape`` is ``leetcode``
    (``{import_prefix?, test_code, entry_point}``), ``taco-functional`` (``{inputs,
    outputs, fn_name}``), ``taco`` (stdin/stdout ``{inputs, outputs}``) or ``cases`` (a list
    of test cases). ``ValueError`` whose message is the drop reason otherwise."""
    from sodctl.rewards.code import parse_tests

    value = to_python(value)
    if value is None or (isinstance(value, str) and not value.strip()):
        raise ValueError("empty ground truth")
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise ValueError("ground truth not JSON") from None
    had_nulls = False
    if isinstance(value, Mapping):
        had_nulls = any(v is None for v in value.values())
        value = {k: v for k, v in value.items() if v is not None}
    elif not isinstance(value, list):
        raise ValueError("tests not parseable")
    try:
        parse_tests(value)
    except (ValueError, TypeError, AttributeError):
        raise ValueError("tests not parseable") from None
    if isinstance(value, list):
        return value, "cases", had_nulls
    if any(k in value for k in _LEETCODE_KEYS) and "inputs" not in value:
        return value, "leetcode", had_nulls
    return value, "taco-functional" if value.get("fn_name") else "taco", had_nulls


def normalise_skywork_code(
    rows: Sequence[Mapping[str, Any]], where: _Locator, src: RLSource
) -> Normalised:
    """Skywork-OR1 code: ``data_source`` as given (``train-code-taco-*``,
    ``train-code-leetcode-*``), the tests spec (``clean_tests``) re-encoded with
    ``json.dumps`` as the ground truth. ``shapes``: rows per test shape, and
    ``null_keys_dropped`` (rows whose spec had null keys)."""
    out: list[dict[str, Any]] = []
    dropped: Counter[str] = Counter()
    shapes: Counter[str] = Counter()
    for i, row in enumerate(rows):
        _check_columns(row, i, where, src)
        content = _content(row, i, where, src)
        reward_model = _reward_model(row, i, where, src)
        data_source = _data_source(row, i, where, src, code=True)
        truth = reward_model.get("ground_truth")
        try:
            spec, shape, had_nulls = clean_tests(truth)
        except ValueError as e:
            dropped[str(e)] += 1
            continue
        shapes[shape] += 1
        shapes["null_keys_dropped"] += had_nulls
        extra = _extra(row)
        out.append(
            rl_row(
                data_source=data_source,
                content=content,
                ability=_text(row.get("ability")) or "code",
                ground_truth=json.dumps(spec),
                style=_text(reward_model.get("style")) or "rule",
                source=src.name,
                source_id=_source_id(extra, i),
                raw=extra,
            )
        )
    return Normalised(out, len(rows), 0, dict(dropped), dict(shapes))


# --- MegaScience -----------------------------------------------------------------------------

_DIGITS = r"(?:\d{1,3}(?:,\d{3})+|\d+)"
_NUMBER = rf"[+-]?(?:{_DIGITS}(?:\.\d+)?|\.\d+)"
_PLAIN = re.compile(rf"({_NUMBER})")
_SCI_TIMES = re.compile(
    rf"({_NUMBER})\s*(?:\\times|\\cdot|×|\*|x)\s*10\s*\^\s*(?:\{{\s*([+-]?\d+)\s*\}}|([+-]?\d+))"
)
_SCI_POWER = re.compile(r"10\s*\^\s*(?:\{\s*([+-]?\d+)\s*\}|([+-]?\d+))")
_SCI_E = re.compile(r"([+-]?(?:\d+(?:\.\d+)?|\.\d+))[eE]([+-]?\d+)")
_FRAC_TEX = re.compile(r"([+-]?)\s*\\[dt]?frac\s*\{\s*([+-]?\d+)\s*\}\s*\{\s*([+-]?\d+)\s*\}")
_FRAC_SLASH = re.compile(r"([+-]?\d+)\s*/\s*([+-]?\d+)")
_WRAPPERS = (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]"))


def unwrap_answer(text: str) -> str:
    """A reference answer without what a grader never sees inside the box: surrounding
    whitespace, a final full stop, ``$...$`` / ``$$...$$`` / ``\\(...\\)`` / ``\\[...\\]``
    and a ``\\boxed{...}`` around the whole (repeatedly)."""
    from sodctl.rewards.boxed import matched_box

    s = text.strip()
    while True:
        before = s
        if s.endswith(".") and not s.endswith(".."):
            s = s[:-1].strip()
        for lead, tail in _WRAPPERS:
            if len(s) >= len(lead) + len(tail) and s.startswith(lead) and s.endswith(tail):
                s = s[len(lead) : len(s) - len(tail)].strip()
        if s.startswith("\\boxed{"):
            inner = matched_box(s, 0)
            if inner is not None and len(inner) + len("\\boxed{}") == len(s):
                s = inner.strip()
        if s == before:
            return s


def _plain(number: str) -> str:
    """``+1,234.50`` -> ``1234.50``; ``-.5`` -> ``-0.5`` (digits otherwise as written)."""
    s = number.replace(",", "").lstrip("+")
    sign = "-" if s.startswith("-") else ""
    s = s.lstrip("-")
    return sign + ("0" + s if s.startswith(".") else s)


def numeric_answer(text: str) -> tuple[str, str] | None:
    """``(plain form, shape)`` of a reference answer that is a number, else None.

    Accepted (after ``unwrap_answer``; a Unicode minus counts as ``-``; ``\\,``, ``{,}``
    and ``\\!`` are thousands separators / spacing): integers and decimals with a sign and
    ``,`` thousands separators (shape ``integer`` / ``decimal``), written ``-1234.5``: no
    ``+``, no separators, ``.5`` as ``0.5``, the digits otherwise as given (``2.50`` stays);
    scientific notation ``3.2 \\times 10^{5}``, ``3.2\\cdot10^5``, ``3.2 x 10^5``,
    ``3.2e5``, ``10^{-3}`` (``scientific``), written ``3.2 \\times 10^{5}`` /
    ``10^{-3}`` (mantissa plain, exponent an integer); fractions of integers ``\\frac{a}{b}``,
    ``\\dfrac``, ``\\tfrac``, ``a/b`` with b != 0 (``fraction``), written ``\\frac{a}{b}``
    or ``-\\frac{a}{b}`` (the sign in front, not reduced). Nothing else: no units, no
    percent signs, no surds, no lists.

    The strict grader compares the box's content with the ground truth as a string, so
    this fixes ONE form (ours, the plainest LaTeX a model would box); a model that writes
    ``1,000`` or ``3.2e5`` still scores 0 against ``1000`` / ``3.2 \\times 10^{5}``.
    """
    s = unwrap_answer(text).replace("−", "-")
    s = s.replace("{,}", ",").replace("\\,", ",").replace("\\!", "").strip()
    if not s:
        return None
    if m := _PLAIN.fullmatch(s):
        plain = _plain(m.group(1))
        return plain, "decimal" if "." in plain else "integer"
    if m := _SCI_TIMES.fullmatch(s):
        exponent = int(m.group(2) or m.group(3))
        return f"{_plain(m.group(1))} \\times 10^{{{exponent}}}", "scientific"
    if m := _SCI_E.fullmatch(s):
        return f"{_plain(m.group(1))} \\times 10^{{{int(m.group(2))}}}", "scientific"
    if m := _SCI_POWER.fullmatch(s):
        return f"10^{{{int(m.group(1) or m.group(2))}}}", "scientific"
    m = _FRAC_TEX.fullmatch(s)
    parts = (m.group(1), m.group(2), m.group(3)) if m else None
    if parts is None and (m := _FRAC_SLASH.fullmatch(s)):
        parts = ("", m.group(1), m.group(2))
    if parts is not None:
        sign, numerator, denominator = parts
        a, b = int(numerator), int(denominator)
        if b == 0:
            return None
        negative = (sign == "-") != ((a < 0) != (b < 0))
        return f"{'-' if negative else ''}\\frac{{{abs(a)}}}{{{abs(b)}}}", "fraction"
    return None


def normalise_megascience(
    rows: Sequence[Mapping[str, Any]], where: _Locator, src: RLSource, *, answers: str = "numeric"
) -> Normalised:
    """MegaScience: ``question`` as the prompt, ``data_source`` ``mega-science``, ability
    ``science``, the reference answer as the ground truth (``numeric_answer``'s form for
    numbers; with ``answers="all"`` any other answer ``unwrap_answer``-ed, shape ``text``),
    the worked ``answer`` as ``extra_info.solution``, ``subject`` and ``source`` as
    ``raw``. ``source_id``: the row's position in the source's read order."""
    if answers not in MEGASCIENCE_ANSWERS:
        raise SodctlUsageError(
            f"data rl: megascience answers={answers!r} is not one of {', '.join(MEGASCIENCE_ANSWERS)}"
        )
    out: list[dict[str, Any]] = []
    dropped: Counter[str] = Counter()
    shapes: Counter[str] = Counter()
    for i, row in enumerate(rows):
        _check_columns(row, i, where, src)
        question = row.get("question")
        if question is not None and not isinstance(question, str):
            raise where.error(i, "question", f"is not a string ({type(question).__name__})", src)
        if not (question or "").strip():
            dropped["empty question"] += 1
            continue
        reference = _text(row.get("reference_answer"))
        if not unwrap_answer(reference):
            dropped["empty reference answer"] += 1
            continue
        number = numeric_answer(reference)
        if number is not None:
            truth, shape = number
        elif answers == "all":
            truth, shape = unwrap_answer(reference), "text"
        else:
            dropped["reference answer not numeric"] += 1
            continue
        shapes[shape] += 1
        solution = row.get("answer")
        out.append(
            rl_row(
                data_source="mega-science",
                content=question,
                ability="science",
                ground_truth=truth,
                source=src.name,
                source_id=str(i),
                solution=solution if isinstance(solution, str) and solution.strip() else None,
                raw={
                    "subject": row.get("subject"),
                    "source": row.get("source"),
                    "reference_answer": reference,
                },
            )
        )
    return Normalised(out, len(rows), 0, dict(dropped), dict(shapes))


# --- the registry ----------------------------------------------------------------------------

_VERL_COLUMNS = ("data_source", "prompt", "ability", "reward_model", "extra_info")

# The hub file patterns are NOT verified against the repositories (no network here): they
# select every parquet file of the split, whatever its shard names ("data/math-00000-of-
# 00003.parquet" and the like). If a repository lays its files out otherwise, pass a local
# copy with --source NAME=PATH.
RL_SOURCES: dict[str, RLSource] = {
    "dapo": RLSource(
        name="dapo",
        title="DAPO-Math",
        domain="Mathematical",
        hub_repo="BytedTsinghua-SIA/DAPO-Math-17k",
        patterns=("*.parquet",),
        default_count=17000,
        columns=_VERL_COLUMNS,
        normaliser=normalise_dapo,
    ),
    "skywork-math": RLSource(
        name="skywork-math",
        title="Skywork-or1 (Math)",
        domain="Mathematical",
        hub_repo="Skywork/Skywork-OR1-RL-Data",
        patterns=("*math*.parquet",),
        default_count=4902,
        columns=_VERL_COLUMNS,
        normaliser=normalise_skywork_math,
    ),
    "skywork-code": RLSource(
        name="skywork-code",
        title="Skywork-or1 (Code)",
        domain="Coding",
        hub_repo="Skywork/Skywork-OR1-RL-Data",
        patterns=("*code*.parquet",),
        default_count=3586,
        columns=_VERL_COLUMNS,
        normaliser=normalise_skywork_code,
    ),
    "megascience": RLSource(
        name="megascience",
        title="MegaScience",
        domain="Scientific",
        hub_repo="MegaScience/MegaScience",
        patterns=("*.parquet",),
        default_count=3000,
        columns=("question", "answer", "subject", "reference_answer", "source"),
        normaliser=normalise_megascience,
        options=("answers",),
    ),
}


def rl_source(name: str) -> RLSource:
    """The registry entry of ``name``; one line listing the known names otherwise."""
    if name not in RL_SOURCES:
        raise SodctlUsageError(f"data rl: unknown source {name!r}; known: {', '.join(RL_SOURCES)}")
    return RL_SOURCES[name]
