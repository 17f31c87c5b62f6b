"""Benchmark loaders and avg@k / pass@k / maj@k metrics."""

from __future__ import annotations

import json
import logging
from math import comb

import pandas as pd
import pytest
from eval_fixtures import write_eval_release
from hypothesis import given
from hypothesis import strategies as st

from sodctl.data.loaders import load_benchmark, load_prompts
from sodctl.data.prompting import (
    REQUIRED_KEYS,
    compose_code,
    compose_math,
    compose_science,
    released_examples,
)
from sodctl.errors import SodctlUsageError
from sodctl.eval.metrics import majority, pass_at, pass_at_ns, summarize_outcomes

pytestmark = pytest.mark.unit


def test_loaders_read_every_schema(tmp_path):
    root = write_eval_release(tmp_path / "eval")
    prompts = load_prompts()
    a24 = load_benchmark("aime24", data_dir=str(root))
    assert [(p.id, p.ground_truth, p.kind) for p in a24] == [
        ("2024-I-1", "42", "math"),
        ("2024-I-2", "1024", "math"),
    ]
    assert a24[0].prompt == compose_math(prompts, "What is 6*7?")
    assert "What is 6*7?" in a24[0].prompt and "\\boxed{your final answer}" in a24[0].prompt
    a25 = load_benchmark("aime25", data_dir=str(root), limit=2)
    assert len(a25) == 2 and a25[1].ground_truth == "42"
    gpqa = load_benchmark("gpqa", data_dir=str(root))
    assert [p.ground_truth for p in gpqa] == ["B", "D"] and gpqa[0].kind == "mcq"
    assert gpqa[0].prompt == compose_science(
        prompts, "Which is a noble gas? (A) N (B) Ne (C) Na (D) Ni", "Chemistry"
    )
    assert "following Chemistry problem" in gpqa[0].prompt and "letter" in gpqa[0].prompt
    (lcb,) = load_benchmark("lcb", data_dir=str(root))
    assert lcb.kind == "code" and lcb.id == "synth-1"
    assert json.loads(lcb.ground_truth) == TESTS
    # the default is the released layout: one block of the ground truth's lists
    assert "Inputs: ['1 2\\n', '5 7\\n']\nOutputs:\n['3\\n', '12\\n']" in lcb.prompt
    assert lcb.prompt == compose_code(
        prompts, "Read two integers and print their sum.", released_examples(prompts, TESTS)
    )
    assert "```python" in lcb.prompt
    # a single parquet file works as well as the release folder
    assert (
        len(load_benchmark("aime25", path=str(root / "aime2025/aime_2025_problems.parquet"))) == 4
    )


TESTS = {"inputs": ["1 2\n", "5 7\n"], "outputs": ["3\n", "12\n"]}


def _lcb_file(tmp_path, hidden: bool = True):
    """Two LCB rows; the ground truth holds a hidden test beside the public one."""
    file = tmp_path / "lcb.parquet"
    rows = []
    for n in range(2):
        rows.append(
            {
                "problem": f"Problem {n}: print the sum.",
                "reward_model": json.dumps({"ground_truth": json.dumps(TESTS), "style": "rule"}),
                "extra_info": json.dumps(
                    {
                        "question_id": f"q{n}",
                        "public_tests": [{"input": "1 2\n", "output": "3\n"}],
                    }
                ),
            }
        )
    pd.DataFrame(rows).to_parquet(file)
    return str(file)


def _loader_warnings(caplog):
    return [
        r for r in caplog.records if r.name == "sodctl.data.loaders" and r.levelname == "WARNING"
    ]


def test_lcb_examples_released_lists_every_test_and_warns_once(tmp_path, caplog):
    file = _lcb_file(tmp_path)
    with caplog.at_level(logging.WARNING, logger="sodctl.data.loaders"):
        problems = load_benchmark("lcb", path=file, lcb_examples="released")
    assert len(problems) == 2
    for p in problems:
        assert "['1 2\\n', '5 7\\n']" in p.prompt and "['3\\n', '12\\n']" in p.prompt
        assert "Example input:" not in p.prompt
    (warning,) = _loader_warnings(caplog)
    assert "every test of reward_model.ground_truth" in warning.getMessage()
    assert "grading tests" in warning.getMessage()


def test_lcb_examples_public_and_none(tmp_path, caplog):
    file = _lcb_file(tmp_path)
    prompts = load_prompts()
    with caplog.at_level(logging.WARNING, logger="sodctl.data.loaders"):
        public = load_benchmark("lcb", path=file, lcb_examples="public")
        none = load_benchmark("lcb", path=file, lcb_examples="none")
    assert not _loader_warnings(caplog)
    assert public[0].prompt == compose_code(
        prompts, "Problem 0: print the sum.", "\nExample input:\n1 2\n\nExample output:\n3\n"
    )
    assert "5 7" not in public[0].prompt  # the hidden test stays hidden
    assert none[1].prompt == compose_code(prompts, "Problem 1: print the sum.", "")
    assert "Example" not in none[1].prompt and "1 2" not in none[1].prompt
    # the ground truth is the same whatever the prompt shows
    assert [p.ground_truth for p in public] == [p.ground_truth for p in none]
    with pytest.raises(SodctlUsageError, match="lcb_examples='all' is not one of"):
        load_benchmark("lcb", path=file, lcb_examples="all")


def test_gpqa_ground_truths_may_come_boxed(tmp_path):
    file = tmp_path / "gpqa.parquet"
    pd.DataFrame(
        {
            "problem": ["(A) a (B) b", "(A) a (B) b (C) c", "(A) a (D) d"],
            "solution": ["\\boxed{B}", " C ", "\\boxed{ d }"],
            "domain": ["Physics", "Biology", None],
        }
    ).to_parquet(file)
    problems = load_benchmark("gpqa", path=str(file))
    assert [p.ground_truth for p in problems] == ["B", "C", "D"]
    assert "following science problem" in problems[2].prompt  # no domain: "science"
    pd.DataFrame({"problem": ["x"], "solution": ["maybe"], "domain": ["Physics"]}).to_parquet(file)
    with pytest.raises(SodctlUsageError, match="row 0's solution 'maybe' is not an option letter"):
        load_benchmark("gpqa", path=str(file))


def test_loader_errors_name_the_problem(tmp_path):
    root = write_eval_release(tmp_path / "eval")
    with pytest.raises(SodctlUsageError, match="no data at"):
        load_benchmark("aime25", data_dir=str(tmp_path / "nowhere"))
    pd.DataFrame({"question": ["x"], "answer": ["1"]}).to_parquet(tmp_path / "bad.parquet")
    with pytest.raises(SodctlUsageError, match=r"lacks column\(s\) \['problem'\]"):
        load_benchmark("aime25", path=str(tmp_path / "bad.parquet"))
    (tmp_path / "junk.parquet").write_text("not parquet")
    with pytest.raises(SodctlUsageError, match="cannot read"):
        load_benchmark("aime25", path=str(tmp_path / "junk.parquet"))
    with pytest.raises(SodctlUsageError, match="unknown benchmark"):
        load_benchmark("aime26", data_dir=str(root))


def test_prompt_templates_have_their_pieces_and_placeholders(tmp_path):
    prompts = load_prompts()
    assert set(REQUIRED_KEYS) <= set(prompts) and prompts["version"] == "2"
    assert "{domain}" in prompts["science_lead"]
    assert "{inputs}" in prompts["code_examples"] and "{outputs}" in prompts["code_examples"]
    assert "{input}" in prompts["code_example"] and "{output}" in prompts["code_example"]
    # the pieces carry the released separators: a lead ends, a note starts, with a blank line
    assert prompts["math_lead"].endswith("\n\n") and prompts["tool_note"].startswith("\n\n")
    assert prompts["agent_note"].startswith("\n\n") and prompts["answer_format"].startswith("\n")
    # an older file (one template per benchmark) gets a one-line error naming what it lacks
    old = tmp_path / "prompts-v1.yaml"
    old.write_text("version: 1\nmath: '{problem}'\nscience_mcq: '{problem}'\n")
    with pytest.raises(SodctlUsageError) as e:
        load_prompts(str(old))
    message = str(e.value)
    assert "\n" not in message and "lacks the templates" in message
    assert all(k in message for k in REQUIRED_KEYS)


@given(st.integers(1, 40), st.data())
def test_pass_at_matches_the_closed_form(n_samples, data):
    c = data.draw(st.integers(0, n_samples))
    n = data.draw(st.integers(1, n_samples))
    want = 1.0 - comb(n_samples - c, n) / comb(n_samples, n)
    assert pass_at(n_samples, c, n) == pytest.approx(want, abs=1e-12)


def test_summary_numbers_on_constructed_outcomes():
    correct = [[1, 1, 1, 1], [1, 0, 0, 0], [0, 0, 0, 0]]
    preds = [["7", "7", "7", "7"], ["3", "4", "4", None], [None, None, "x", "y"]]
    out = summarize_outcomes(correct, preds, ["7", "3", "z"], k=4)
    assert out["avg_at_k"] == pytest.approx(100 * (1 + 0.25 + 0) / 3)
    acc = [1.0, 0.25, 0.0]
    mean = sum(acc) / 3
    sd = (sum((a - mean) ** 2 for a in acc) / 2) ** 0.5
    assert out["stderr"] == pytest.approx(100 * sd / 3**0.5)
    assert out["mean_sample_std"] == pytest.approx(100 * (0 + (0.25 * 0.75) ** 0.5 + 0) / 3)
    assert out["pass_at"] == pytest.approx(
        {"1": 100 * 1.25 / 3, "2": 100 * (1 + 0.5) / 3, "4": 100 * 2 / 3}
    )
    assert out["maj_at_k"] == pytest.approx(100 / 3)  # only problem 0's majority is right
    assert pass_at_ns(32) == [1, 2, 4, 8, 16, 32] and pass_at_ns(6) == [1, 2, 4, 6]
    assert majority(["b", "a", "a", "b"]) == "b" and majority([None, None]) is None
