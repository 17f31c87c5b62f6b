"""`sodctl eval` end to end on a tiny random checkpoint, then table and report from its results."""

from __future__ import annotations

import json

import pytest

from sodctl.cli import main
from sodctl.models.tiny import create_tiny_checkpoint

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    return create_tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny", seed=0)


def test_eval_a_tiny_checkpoint_resume_and_report(ckpt, tmp_path, capsys):
    results = tmp_path / "results"
    args = [
        "eval", "--bench", "tiny-arith", "--k", "8", "--model", str(ckpt), "--preset", "tiny",
        "eval.limit=3", "eval.max_response_tokens=48", f"eval.results_dir={results}", "eval.batch_size=12",
    ]  # fmt: skip
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "tiny-arith" in out and "generated tokens/s" in out
    base = results / "tiny" / "tiny" / "external"
    records = [json.loads(line) for line in (base / "tiny-arith.jsonl").read_text().splitlines()]
    assert len(records) == 3 * 8
    assert {(r["problem_id"], r["sample"]) for r in records} == {
        (str(p), s) for p in range(3) for s in range(8)
    }
    assert all(
        r["response_tokens"] <= 48 and set(r["correct"]) == {"strict", "math-verify"}
        for r in records
    )
    summary = json.loads((base / "tiny-arith.json").read_text())
    assert summary["k"] == 8 and summary["n_problems"] == 3 and summary["n_records"] == 24
    assert summary["label"] == {
        "preset": "tiny",
        "model": "tiny",
        "method": "external",
        "seed": "42",
    }
    assert summary["run"]["git"] is None or "commit" in summary["run"]["git"]
    assert summary["config"]["eval"]["k"] == 8
    # a second run finds everything done and adds nothing
    assert main(args) == 0
    assert "0 new records" in capsys.readouterr().out
    assert len((base / "tiny-arith.jsonl").read_text().splitlines()) == 24
    # the report picks the summary up
    report = tmp_path / "report.md"
    assert (
        main(["report", str(results), "--runs", str(tmp_path / "runs"), "--out", str(report)]) == 0
    )
    assert "tiny-arith" in report.read_text()


def test_same_seed_same_samples(ckpt, tmp_path):
    def run(out):
        assert main(["eval", "--bench", "tiny-arith", "--k", "2", "--model", str(ckpt), "--preset", "tiny",
                     "eval.limit=2", "eval.max_response_tokens=32", f"eval.results_dir={out}"]) == 0  # fmt: skip
        path = out / "tiny" / "tiny" / "external" / "tiny-arith.jsonl"
        return [json.loads(line)["response"] for line in path.read_text().splitlines()]

    assert run(tmp_path / "a") == run(tmp_path / "b")


def test_prompts_over_the_limit_are_left_out_counted_and_named(ckpt, tmp_path, capsys):
    # B4: the released evaluation dropped problems whose prompt exceeded MAX_PROMPT_LENGTH
    from eval_fixtures import write_eval_release
    from transformers import AutoTokenizer

    from sodctl.data.loaders import load_benchmark
    from sodctl.data.prompting import prompt_length

    root = write_eval_release(tmp_path / "eval")
    tok = AutoTokenizer.from_pretrained(ckpt)
    problems = load_benchmark("aime24", data_dir=str(root), prompts_file="tiny_prompts.yaml")
    short, long_ = sorted(prompt_length(tok, p.messages()) for p in problems)
    assert short < long_
    results = tmp_path / "results"
    args = [
        "eval", "--bench", "aime24", "--k", "2", "--model", str(ckpt), "--preset", "tiny",
        f"eval.data_dir={root}", "eval.max_response_tokens=32", f"eval.results_dir={results}",
        f"eval.max_prompt_tokens={short}",  # a prompt of exactly the limit is kept
    ]  # fmt: skip
    assert main(args) == 0
    assert "1 of 2 problems have a prompt over" in capsys.readouterr().out
    summary = json.loads((results / "tiny" / "tiny" / "external" / "aime24.json").read_text())
    assert (summary["n_problems"], summary["n_filtered"], summary["n_records"]) == (1, 1, 2)
    assert summary["filtered_ids"] == ["2024-I-2"]
