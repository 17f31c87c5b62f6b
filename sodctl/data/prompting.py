"""Prompts built from the pieces of a templates file (``prompts.yaml``), as released.

The authors' prompt builder (``recipe/demystify/reward.py`` of YoungZ365/SOD) joins a
few string constants around each problem, with one branch per kind of data; the
functions here join the pieces of a templates file in the same order (each piece
carries its own newlines; nothing is put between them):

==================  =====================================================================
AIME                math_lead + problem + tool_note + agent_note + answer_format
GPQA                science_lead(domain) + problem + tool_note + agent_note + answer_format
                    + letter_note
LiveCodeBench       code_lead + problem + examples + agent_note + code_io + code_submit
RL ``units``        the row's prompt + units_note (math_dapo, mega-science)
RL ``skywork``      code rows: prompt + agent_note + code_submit; other rows: math_lead +
                    prompt + tool_note + agent_note + answer_format + units_note_skywork
==================  =====================================================================

The released loader picked ONE branch per parquet file, from its first row's
``data_source`` (``released_branch``), and applied it to every row of the file;
``wrap_rl_rows`` reproduces that (``"released"``), wraps each row by its own source
(``"per-source"``), or leaves the rows alone (``"none"``).

Everything here is pure: the templates come from ``sodctl.data.loaders.load_prompts``.
"""

from __future__ import annotations

import string
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

from sodctl.data.files import to_python
from sodctl.errors import SodctlUsageError
from sodctl.rewards.mcq import option_letter

# What OPSD appends to the last user turn for its self-teacher (the solution or the hint);
# the tiny world's SFT set carries a few prompts with them, so its models can read one.
PRIVILEGED_LEADS: dict[str, str] = {
    "solution": "\n\nA reference solution, for you alone: {text}",
    "hint": "\n\nA hint: {text}",
}


def privileged_messages(
    messages: Sequence[Mapping[str, Any]], text: str, lead: str
) -> list[dict[str, Any]]:
    """The self-teacher's prompt: the last user turn extended with ``lead`` filled with ``text``
    (both engines' OPSD and the tiny world's privileged SFT prompts build it here)."""
    msgs = [dict(m) for m in messages]
    users = [i for i, m in enumerate(msgs) if m.get("role") == "user"]
    if not users:
        raise SodctlUsageError("OPSD: a prompt has no user turn to add the privileged text to")
    msgs[users[-1]]["content"] = str(msgs[users[-1]]["content"]) + lead.format(text=text)
    return msgs


#: The pieces a templates file must hold, and the placeholders each may use.
TEMPLATE_FIELDS: dict[str, tuple[str, ...]] = {
    "math_lead": (),
    "science_lead": ("domain",),
    "tool_note": (),
    "agent_note": (),
    "answer_format": (),
    "letter_note": (),
    "units_note": (),
    "units_note_skywork": (),
    "code_lead": (),
    "code_examples": ("inputs", "outputs"),
    "code_example": ("input", "output"),
    "code_io": (),
    "code_submit": (),
}
REQUIRED_KEYS: tuple[str, ...] = tuple(TEMPLATE_FIELDS)

BRANCHES: tuple[str, ...] = ("aime", "units", "gpqa", "lcb", "skywork")
WRAPPING_MODES: tuple[str, ...] = ("released", "per-source", "none")
LCB_EXAMPLES_MODES: tuple[str, ...] = ("released", "public", "none")

Templates = Mapping[str, str]
T = TypeVar("T")


def check_templates(templates: Mapping[str, Any], where: object) -> None:
    """One-line ``SodctlUsageError`` if a piece is missing or does not format (an unknown
    placeholder, a lone brace); ``where`` names the file in the message."""
    missing = sorted(k for k in REQUIRED_KEYS if k not in templates)
    if missing:
        raise SodctlUsageError(f"prompts file {where} lacks the templates {missing}")
    for key, fields in TEMPLATE_FIELDS.items():
        text = str(templates[key])
        try:
            text.format(**{f: "" for f in fields})
        except (KeyError, IndexError, ValueError) as e:
            allowed = ", ".join("{" + f + "}" for f in fields) or "none"
            raise SodctlUsageError(
                f"prompts file {where}: template {key!r} does not format "
                f"({type(e).__name__}: {e}); placeholders allowed: {allowed}; "
                "write a literal brace as {{ or }}"
            ) from None


def piece(templates: Templates, key: str, **fields: Any) -> str:
    """One piece, formatted (every piece goes through ``str.format``: ``{{`` is a brace)."""
    return str(templates[key]).format(**fields)


def _pieces(templates: Templates) -> Callable[..., str]:
    return lambda key, **fields: piece(templates, key, **fields)


# --- evaluation prompts --------------------------------------------------------------------


def compose_math(templates: Templates, problem: str) -> str:
    """AIME: math_lead + problem + tool_note + agent_note + answer_format."""
    p = _pieces(templates)
    return p("math_lead") + problem + p("tool_note") + p("agent_note") + p("answer_format")


def compose_science(templates: Templates, problem: str, domain: str) -> str:
    """GPQA: science_lead (naming ``domain``) + problem + tool_note + agent_note +
    answer_format + letter_note."""
    p = _pieces(templates)
    return (
        p("science_lead", domain=domain)
        + problem
        + p("tool_note")
        + p("agent_note")
        + p("answer_format")
        + p("letter_note")
    )


def compose_code(templates: Templates, problem: str, examples: str = "") -> str:
    """LiveCodeBench: code_lead + problem + examples + agent_note + code_io + code_submit
    (``examples``: from ``lcb_examples_text``)."""
    p = _pieces(templates)
    return p("code_lead") + problem + examples + p("agent_note") + p("code_io") + p("code_submit")


def io_lists(tests: Any) -> tuple[list[Any], list[Any]]:
    """The ``inputs`` and ``outputs`` lists of a tests spec (``{"inputs", "outputs"}``, or
    a list of ``{"input", "output"}`` cases); ``ValueError`` for any other shape."""
    tests = to_python(tests)
    if isinstance(tests, Mapping) and "inputs" in tests and "outputs" in tests:
        return list(tests["inputs"]), list(tests["outputs"])
    if isinstance(tests, list) and tests and all(isinstance(t, Mapping) for t in tests):
        return [t.get("input", "") for t in tests], [t.get("output", "") for t in tests]
    raise ValueError("the tests spec has no inputs/outputs lists")


def released_examples(templates: Templates, tests: Any) -> str:
    """The released examples block: ONE ``code_examples`` block holding ``str()`` of the
    ground truth's inputs and outputs lists, i.e. every test, the grading ones included."""
    inputs, outputs = io_lists(tests)
    return piece(templates, "code_examples", inputs=str(inputs), outputs=str(outputs))


def public_examples(templates: Templates, public_tests: Iterable[Any] | None) -> str:
    """One ``code_example`` per public test (``{"input", "output"}`` dicts), joined with
    nothing between them (each piece starts with its own separator)."""
    return "".join(
        piece(templates, "code_example", input=t.get("input", ""), output=t.get("output", ""))
        for t in ([] if public_tests is None else to_python(list(public_tests)))
        if isinstance(t, Mapping)
    )


def lcb_examples_text(
    templates: Templates, mode: str, tests: Any, public_tests: Iterable[Any] | None = None
) -> str:
    """The examples of a LiveCodeBench prompt: ``"released"`` (``released_examples`` of the
    ground truth), ``"public"`` (``public_examples``), ``"none"`` (nothing)."""
    mode = str(mode)
    if mode == "released":
        return released_examples(templates, tests)
    if mode == "public":
        return public_examples(templates, public_tests)
    if mode == "none":
        return ""
    raise SodctlUsageError(f"lcb_examples={mode!r} is not one of {', '.join(LCB_EXAMPLES_MODES)}")


# --- training (RL) prompts -----------------------------------------------------------------


def compose_units(templates: Templates, content: str) -> str:
    """math_dapo and mega-science rows: their prompt + units_note."""
    return content + piece(templates, "units_note")


def compose_skywork(templates: Templates, content: str, data_source: str) -> str:
    """Every other training row: code rows (``"code"`` in ``data_source``, case as given)
    get agent_note + code_submit appended; the others are wrapped like an AIME problem
    and get units_note_skywork."""
    if "code" in str(data_source):
        return content + piece(templates, "agent_note") + piece(templates, "code_submit")
    return compose_math(templates, content) + piece(templates, "units_note_skywork")


def released_branch(data_source: str | None) -> str:
    """The released loader's branch for a ``data_source``: ``aime`` (AIME2024, AIME2025),
    ``units`` (math_dapo, mega-science), ``gpqa`` (gpqa_diamond), ``lcb``
    (LiveCodeBench_v6), else ``skywork``."""
    source = str(data_source or "")
    if source in ("AIME2024", "AIME2025"):
        return "aime"
    if source in ("math_dapo", "mega-science"):
        return "units"
    if source == "gpqa_diamond":
        return "gpqa"
    if source == "LiveCodeBench_v6":
        return "lcb"
    return "skywork"


def _messages(row: Mapping[str, Any], i: int) -> list[dict[str, Any]]:
    prompt = to_python(row.get("prompt"))
    if isinstance(prompt, str):
        prompt = [{"role": "user", "content": prompt}]
    if not (isinstance(prompt, list) and prompt and isinstance(prompt[0], Mapping)):
        raise SodctlUsageError(
            f"RL row {i} (data_source {row.get('data_source')!r}): 'prompt' is not a list of "
            "{role, content} messages"
        )
    return [dict(m) for m in prompt]


def json_cell(value: Any) -> Any:
    """A JSON-encoded cell (the LCB release stores dicts as strings) or the value itself."""
    import json

    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def _ground_truth(row: Mapping[str, Any]) -> Any:
    decoded = json_cell
    reward_model = decoded(to_python(row.get("reward_model")))
    truth = reward_model.get("ground_truth") if isinstance(reward_model, Mapping) else None
    return decoded(truth)


def _domain(row: Mapping[str, Any]) -> str:
    extra = row.get("extra_info")
    for value in (
        row.get("domain"),
        extra.get("domain") if isinstance(extra, Mapping) else None,
        row.get("ability"),
    ):
        if value:
            return str(value)
    return "science"


def compose_training(
    templates: Templates, row: Mapping[str, Any], branch: str, index: int = 0
) -> str:
    """The user message of one RL row (verl schema) wrapped by ``branch``. The eval
    branches wrap the row's message as the eval loaders wrap a problem (``gpqa``: the
    domain from ``domain``, ``extra_info.domain`` or ``ability``; ``lcb``: the released
    examples of ``reward_model.ground_truth``)."""
    content = str(_messages(row, index)[0].get("content") or "")
    source = str(row.get("data_source") or "")
    if branch == "units":
        return compose_units(templates, content)
    if branch == "skywork":
        return compose_skywork(templates, content, source)
    if branch == "aime":
        return compose_math(templates, content)
    if branch == "gpqa":
        return compose_science(templates, content, _domain(row))
    if branch == "lcb":
        try:
            examples = released_examples(templates, _ground_truth(row))
        except ValueError as e:
            raise SodctlUsageError(
                f"RL row {index} (data_source {source!r}): the lcb wrapping lists "
                f"reward_model.ground_truth's tests, but {e}"
            ) from None
        return compose_code(templates, content, examples)
    raise SodctlUsageError(f"unknown prompt branch {branch!r}; known: {', '.join(BRANCHES)}")


def wrap_rl_rows(
    rows: Sequence[Mapping[str, Any]], templates: Templates, mode: str
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """RL rows (verl schema: ``data_source``, ``prompt`` = [{role, content}], ...) with
    their first message wrapped, and how many rows each branch wrapped (for the log).

    ``mode``: ``"released"``: one branch for all rows, from ``rows[0]``'s data_source (the
    released loader did this per parquet file: a file whose first row is math_dapo gives
    every row, code rows included, only the units suffix); ``"per-source"``: each row by
    its own data_source; ``"none"``: unchanged (counted as ``"none"``). The input rows are
    not modified; the new rows' ``prompt`` is a list of dicts.
    """
    mode = str(mode)
    if mode not in WRAPPING_MODES:
        raise SodctlUsageError(
            f"prompt wrapping {mode!r} is not one of {', '.join(WRAPPING_MODES)}"
        )
    if mode == "none":
        return [dict(r) for r in rows], ({"none": len(rows)} if rows else {})
    first = released_branch(rows[0].get("data_source")) if rows else "skywork"
    out: list[dict[str, Any]] = []
    applied: Counter[str] = Counter()
    for i, row in enumerate(rows):
        branch = first if mode == "released" else released_branch(row.get("data_source"))
        messages = _messages(row, i)
        messages[0]["content"] = compose_training(templates, row, branch, i)
        out.append({**row, "prompt": messages})
        applied[branch] += 1
    return out, dict(applied)


# --- prompt length filter ------------------------------------------------------------------


def prompt_length(tokenizer: Any, messages: Sequence[Mapping[str, Any]]) -> int:
    """Tokens of the chat prompt (template with the generation prompt, NO tool schema), as
    the released ``data.filter_overlong_prompts`` counted them."""
    text = tokenizer.apply_chat_template(
        [dict(m) for m in messages], add_generation_prompt=True, tokenize=False
    )
    return len(tokenizer(text, add_special_tokens=False)["input_ids"])


def filter_long_prompts(
    tokenizer: Any,
    items: Iterable[T],
    limit: int,
    messages_of: Callable[[T], Sequence[Mapping[str, Any]]],
) -> tuple[list[T], list[T]]:
    """``(kept, dropped)``: an item is kept iff ``prompt_length`` of ``messages_of(item)``
    is at most ``limit``; ``dropped`` holds the others, in order, to count and name."""
    kept: list[T] = []
    dropped: list[T] = []
    for item in items:
        messages = to_python(list(messages_of(item)))
        (kept if prompt_length(tokenizer, messages) <= limit else dropped).append(item)
    return kept, dropped


# --- ground truths -------------------------------------------------------------------------



def normalise_letter(ground_truth: Any) -> str:
    """The option letter of a GPQA ground truth given as ``B``, ``\\boxed{B}`` (spaces
    around either allowed), upper-cased (``sodctl.rewards.mcq.option_letter``, which the
    reward uses too); ``ValueError`` if it holds no single letter."""
    letter = option_letter(str(ground_truth))
    if len(letter) != 1 or letter not in string.ascii_uppercase:
        raise ValueError(f"{ground_truth!r} is not an option letter (B or \\boxed{{B}})")
    return letter
