"""Benchmark loaders and avg@k / pass@k / maj@k metrics."""

from __future__ import annotations

import json
from math import comb

import pandas as pd
import pytest
from eval_fixtures import write_eval_release
from hypothesis import given
from hypothesis import strategies as st

from sodctl.data.loaders import load_benchmark, load_prompts
from sodctl.errors import SodctlUsageError
from sodctl.eval.metrics import majority, pass_at, pass_at_ns, summarize_outcomes

pytestmark = pytest.mark.unit


def test_loaders_read_every_schema(tmp_path):
    root = write_eval_release(tmp_path / "eval")
    a24 = load_benchmark("aime24", data_dir=str(root))
    assert [(p.id, p.ground_truth, p.kind) for p in a24] == [
        ("2024-I-1", "42", "math"),
        ("2024-I-2", "1024", "math"),
    ]
    assert "What is 6*7?" in a24[0].prompt and "\\boxed{answer}" in a24[0].prompt
    a25 = load_benchmark("aime25", data_dir=str(root), limit=2)
    assert len(a25) == 2 and a25[1].ground_truth == "42"
    gpqa = load_benchmark("gpqa", data_dir=str(root))
    assert [p.ground_truth for p in gpqa] == ["B", "D"] and gpqa[0].kind == "mcq"
    assert "Chemistry" in gpqa[0].prompt and "letter" in gpqa[0].prompt
    (lcb,) = load_benchmark("lcb", data_dir=str(root))
    assert lcb.kind == "code" and lcb.id == "synth-1"
    assert json.loads(lcb.ground_truth) == {
        "inputs": ["1 2\n", "5 7\n"],
        "outputs": ["3\n", "12\n"],
    }
    assert "Example input:\n1 2" in lcb.prompt and "```python" in lcb.prompt
    # a single parquet file works as well as the release folder
    assert (
        len(load_benchmark("aime25", path=str(root / "aime2025/aime_2025_problems.parquet"))) == 4
    )


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


def test_prompt_templates_have_their_placeholders():
    prompts = load_prompts()
    assert (
        "{problem}" in prompts["math"]
        and "{domain}" in prompts["science_mcq"]
        and "{examples}" in prompts["code"]
    )


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
