"""Prompt composition as released (sodctl.data.prompting): the order of the pieces, the
RL branches and the released first-row quirk, the prompt-length filter, GPQA letters."""

from __future__ import annotations

import copy
import json

import numpy as np
import pandas as pd
import pytest

from sodctl.data.loaders import load_prompts
from sodctl.data.prompting import (
    REQUIRED_KEYS,
    check_templates,
    compose_code,
    compose_math,
    compose_science,
    compose_skywork,
    compose_units,
    filter_long_prompts,
    lcb_examples_text,
    normalise_letter,
    prompt_length,
    public_examples,
    released_branch,
    released_examples,
    wrap_rl_rows,
)
from sodctl.errors import SodctlUsageError

pytestmark = pytest.mark.unit

# Every piece names itself, so a composed prompt shows its pieces in order.
T = {k: f"[{k}]" for k in REQUIRED_KEYS} | {
    "science_lead": "[science_lead {domain}]",
    "code_examples": "[code_examples {inputs} | {outputs}]",
    "code_example": "[code_example {input} > {output}]",
}
TESTS = {"inputs": ["1 2\n", "5 7\n"], "outputs": ["3\n", "12\n"]}


def _row(source: str, content: str, **extra) -> dict:
    return {
        "data_source": source,
        "prompt": [{"role": "user", "content": content}],
        "ability": "math",
        "reward_model": {"ground_truth": "1", "style": "rule"},
        "extra_info": {"index": 0},
        **extra,
    }


# --- the compositions ----------------------------------------------------------------------


def test_eval_compositions_put_the_pieces_in_the_released_order():
    assert compose_math(T, "P") == "[math_lead]P[tool_note][agent_note][answer_format]"
    assert (
        compose_science(T, "P", "Physics")
        == "[science_lead Physics]P[tool_note][agent_note][answer_format][letter_note]"
    )
    assert compose_code(T, "P", "<ex>") == "[code_lead]P<ex>[agent_note][code_io][code_submit]"
    assert compose_code(T, "P") == "[code_lead]P[agent_note][code_io][code_submit]"


def test_lcb_examples_released_is_one_block_of_the_ground_truth_lists():
    want = "[code_examples ['1 2\\n', '5 7\\n'] | ['3\\n', '12\\n']]"
    assert released_examples(T, TESTS) == want
    assert lcb_examples_text(T, "released", TESTS, [{"input": "x", "output": "y"}]) == want
    # parquet hands lists back as NumPy arrays: the block is the same str() of a list
    arrays = {k: np.array(v, dtype=object) for k, v in TESTS.items()}
    assert released_examples(T, arrays) == want
    # the case-list shape of a tests spec lists the same inputs and outputs
    cases = [{"input": i, "output": o} for i, o in zip(TESTS["inputs"], TESTS["outputs"])]
    assert released_examples(T, cases) == want
    with pytest.raises(ValueError, match="no inputs/outputs"):
        released_examples(T, {"import_prefix": "", "test_code": "", "entry_point": "f"})


def test_lcb_examples_public_one_by_one_and_none():
    public = [{"input": "1 2", "output": "3"}, {"input": "4 4", "output": "8"}]
    assert public_examples(T, public) == "[code_example 1 2 > 3][code_example 4 4 > 8]"
    assert lcb_examples_text(T, "public", TESTS, public) == public_examples(T, public)
    assert lcb_examples_text(T, "public", TESTS, None) == ""
    assert lcb_examples_text(T, "none", TESTS, public) == ""
    with pytest.raises(SodctlUsageError, match="not one of released, public, none"):
        lcb_examples_text(T, "all", TESTS, public)


def test_training_compositions():
    assert compose_units(T, "Q") == "Q[units_note]"
    assert compose_skywork(T, "Q", "skywork_code") == "Q[agent_note][code_submit]"
    assert (
        compose_skywork(T, "Q", "skywork_math")
        == "[math_lead]Q[tool_note][agent_note][answer_format][units_note_skywork]"
    )
    # the released test is `"code" in data_source`, case as given
    assert compose_skywork(T, "Q", "Code").startswith("[math_lead]")


def test_real_templates_keep_the_released_separators():
    real = load_prompts()
    math = compose_math(real, "PROBLEM")
    lead, rest = math.split("PROBLEM")
    assert lead.endswith(".\n\n") and rest.startswith("\n\n")  # blank lines around the problem
    assert "\n\nNote:" in rest and "\\boxed{your final answer}" in rest
    gpqa = compose_science(real, "PROBLEM", "Organic Chemistry")
    assert "following Organic Chemistry problem" in gpqa and gpqa.startswith(
        compose_science(real, "", "Organic Chemistry").split("\n\n")[0]
    )
    assert gpqa.endswith(real["letter_note"].replace("{{", "{").replace("}}", "}"))
    code = compose_code(real, "PROBLEM", released_examples(real, TESTS))
    assert "PROBLEM\nExamples of the expected input and output:\nInputs: ['1 2\\n'," in code
    assert code.count("```python") == 2 and "standard input" in code
    assert compose_units(real, "Q").startswith("Q\n") and "\\boxed{}" in compose_units(real, "Q")


# --- the tiny world's prompts are today's (tiny-1) prompts ----------------------------------

TINY_MATH = "Compute 53 * 27 + 5. Use the tool, then answer in \\boxed{}."
TINY_MOD = "What is 1510 mod 34? Use the tool, then answer in \\boxed{}."
TINY_CODE = (
    "Read a and b from stdin; print (a - b) * 43. Example: 30 36 -> -258\n"
    "Test it with the tool; answer in a ```python block."
)
# tiny-1 had "... (D) 3998 Use the tool, then put the letter in \boxed{}.": the mcq prompt
# is the math pieces plus letter_note now, so it cannot stay the same.
TINY_MCQ = (
    "Which option equals 80 * 50? (A) 4001 (B) 4000 (C) 4010 (D) 3998 "
    "Use the tool, then answer in \\boxed{}. Letter only."
)


def test_tiny_prompts_compose_to_the_tiny_1_prompts():
    from sodctl.data.tiny import load_tiny_arith
    from sodctl.data.tinyworld import draw_problems
    from sodctl.data.tinyworld.problems import as_benchmark_problem

    tiny = load_prompts("tiny_prompts.yaml")
    assert compose_math(tiny, "Compute 53 * 27 + 5.") == TINY_MATH
    assert (
        compose_code(
            tiny,
            "Read a and b from stdin; print (a - b) * 43.",
            public_examples(tiny, [{"input": "30 36", "output": "-258"}]),
        )
        == TINY_CODE
    )
    drawn = draw_problems(0, {"eval": 2})["eval"]
    shown = {f: [as_benchmark_problem(p, tiny).prompt for p in ps] for f, ps in drawn.items()}
    assert shown["math-a"][0] == TINY_MATH and shown["math-b"][1] == TINY_MOD
    assert shown["code"][0] == TINY_CODE and shown["mcq"][0] == TINY_MCQ
    (arith,) = load_tiny_arith(limit=1, prompts_file="tiny_prompts.yaml")
    assert arith.prompt == "Compute 15 * 97 + 70. Use the tool, then answer in \\boxed{}."


# --- RL rows: branches and the released first-row quirk ------------------------------------


def test_released_branch_maps_data_sources():
    assert [
        released_branch(s)
        for s in (
            "AIME2024",
            "AIME2025",
            "math_dapo",
            "mega-science",
            "gpqa_diamond",
            "LiveCodeBench_v6",
            "skywork_code",
            "aime2024",
            "",
            None,
        )
    ] == [
        "aime",
        "aime",
        "units",
        "units",
        "gpqa",
        "lcb",
        "skywork",
        "skywork",
        "skywork",
        "skywork",
    ]


MIXED = [
    _row("math_dapo", "D"),
    _row("skywork_code", "C"),
    _row("skywork_math", "S"),
    _row("mega-science", "M"),
]


def _contents(rows):
    return [r["prompt"][0]["content"] for r in rows]


def test_released_wraps_every_row_by_the_first_rows_source():
    before = copy.deepcopy(MIXED)
    rows, applied = wrap_rl_rows(MIXED, T, "released")
    assert _contents(rows) == ["D[units_note]", "C[units_note]", "S[units_note]", "M[units_note]"]
    assert applied == {"units": 4}
    assert before == MIXED  # the input is left alone
    assert [r["data_source"] for r in rows] == [r["data_source"] for r in MIXED]
    assert rows[0]["reward_model"] == MIXED[0]["reward_model"]
    # a file whose first row is skywork: the skywork branch still tells code rows apart
    rows, applied = wrap_rl_rows(MIXED[1:], T, "released")
    assert _contents(rows) == [
        "C[agent_note][code_submit]",
        "[math_lead]S[tool_note][agent_note][answer_format][units_note_skywork]",
        "[math_lead]M[tool_note][agent_note][answer_format][units_note_skywork]",
    ]
    assert applied == {"skywork": 3}


def test_per_source_wraps_each_row_by_its_own_source():
    rows, applied = wrap_rl_rows(MIXED, T, "per-source")
    assert _contents(rows) == [
        "D[units_note]",
        "C[agent_note][code_submit]",
        "[math_lead]S[tool_note][agent_note][answer_format][units_note_skywork]",
        "M[units_note]",
    ]
    assert applied == {"units": 2, "skywork": 2}


def test_none_leaves_the_rows_as_they_are():
    rows, applied = wrap_rl_rows(MIXED, T, "none")
    assert rows == MIXED and rows is not MIXED and applied == {"none": 4}
    assert wrap_rl_rows([], T, "released") == ([], {})
    with pytest.raises(SodctlUsageError, match="not one of released, per-source, none"):
        wrap_rl_rows(MIXED, T, "sometimes")


def test_eval_branches_wrap_rl_rows_like_the_eval_loaders():
    aime = [_row("AIME2024", "A"), _row("math_dapo", "D")]
    rows, applied = wrap_rl_rows(aime, T, "released")
    assert _contents(rows) == [compose_math(T, "A"), compose_math(T, "D")]
    assert applied == {"aime": 2}
    gpqa = _row("gpqa_diamond", "G", extra_info={"domain": "Physics"})
    (row,), _ = wrap_rl_rows([gpqa], T, "per-source")
    assert row["prompt"][0]["content"] == compose_science(T, "G", "Physics")
    lcb = _row("LiveCodeBench_v6", "L", reward_model=json.dumps({"ground_truth": TESTS}))
    (row,), _ = wrap_rl_rows([lcb], T, "per-source")
    assert row["prompt"][0]["content"] == compose_code(T, "L", released_examples(T, TESTS))
    with pytest.raises(SodctlUsageError, match="RL row 0 .*lcb wrapping"):
        wrap_rl_rows([_row("LiveCodeBench_v6", "L")], T, "released")


def test_rows_read_back_from_parquet_are_wrapped(tmp_path):
    pd.DataFrame(MIXED).to_parquet(tmp_path / "rl.parquet")
    rows = pd.read_parquet(tmp_path / "rl.parquet").to_dict(orient="records")
    wrapped, _ = wrap_rl_rows(rows, T, "per-source")
    assert _contents(wrapped)[1] == "C[agent_note][code_submit]"
    assert wrapped[1]["prompt"] == [{"role": "user", "content": "C[agent_note][code_submit]"}]


# --- the prompt-length filter --------------------------------------------------------------


def test_filter_long_prompts_at_the_boundary():
    from sodctl.models.tiny import build_tokenizer

    tok = build_tokenizer()  # one token per character; chat tags are one token each

    def msgs(n: int) -> list[dict[str, str]]:
        return [{"role": "user", "content": "x" * n}]

    base = prompt_length(tok, msgs(0))
    assert [prompt_length(tok, msgs(n)) for n in (1, 5)] == [base + 1, base + 5]
    # the same count as the template's own tokenization (generation prompt, no tools)
    ids = tok.apply_chat_template(
        msgs(5), add_generation_prompt=True, tokenize=True, return_dict=False
    )
    assert len(ids) == base + 5
    limit = base + 10
    items = [(f"p{n}", n) for n in (9, 10, 11, 12, 0)]
    kept, dropped = filter_long_prompts(tok, items, limit, lambda item: msgs(item[1]))
    assert [name for name, _ in kept] == ["p9", "p10", "p0"]  # length == limit is kept
    assert [name for name, _ in dropped] == ["p11", "p12"]  # limit + 1 is dropped
    # the tool schema is not counted (the agent's prompt with it is much longer)
    from sodctl.rollout.agent import chat_prompt_ids
    from sodctl.tools import CODE_INTERPRETER_SCHEMA

    assert len(chat_prompt_ids(tok, msgs(10), [CODE_INTERPRETER_SCHEMA])) > limit + 100


# --- GPQA letters and the templates check --------------------------------------------------


@pytest.mark.parametrize(
    "given", ["B", " B ", "b", "\\boxed{B}", " \\boxed{ B } ", "$\\boxed{b}$", "\\boxed {B}"]
)
def test_normalise_letter(given):
    assert normalise_letter(given) == "B"


@pytest.mark.parametrize("given", ["", "AB", "\\boxed{}", "\\boxed{12}", "(B)", "7"])
def test_normalise_letter_refuses_what_is_no_letter(given):
    with pytest.raises(ValueError, match="not an option letter"):
        normalise_letter(given)


def test_templates_check_names_what_is_wrong(tmp_path):
    with pytest.raises(SodctlUsageError, match=r"lacks the templates \['code_io', 'letter_note'\]"):
        check_templates({k: v for k, v in T.items() if k not in ("code_io", "letter_note")}, "x")
    # the released answer format pasted without doubling its braces
    bad = T | {"answer_format": "\\boxed{'The final answer goes here.'}"}
    with pytest.raises(SodctlUsageError, match=r"'answer_format' does not format.*\{\{"):
        check_templates(bad, "x")
    with pytest.raises(SodctlUsageError, match="'tool_note' does not format"):
        check_templates(T | {"tool_note": "{problem}"}, "x")
    file = tmp_path / "old.yaml"
    file.write_text("version: 1\nmath: '{problem}'\n")
    with pytest.raises(SodctlUsageError, match="lacks the templates") as e:
        load_prompts(str(file))
    assert "\n" not in str(e.value) and "math_lead" in str(e.value)
