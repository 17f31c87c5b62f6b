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
