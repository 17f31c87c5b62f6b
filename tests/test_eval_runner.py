"""The eval loop: records, resume after a kill (torn line included), summaries."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
from eval_fixtures import write_eval_release
from rollout_fixtures import TOK, FakeTool, ids

from sodctl.data.loaders import load_benchmark
from sodctl.eval.runner import EvalLabel, RecordFile, evaluate_bench
from sodctl.rollout.agent import AgentLoopConfig
from sodctl.rollout.engine import SamplingParams
from sodctl.rollout.scripted import ScriptedEngine
from sodctl.tools.parsing import render_tool_call

pytestmark = pytest.mark.integration


def answer_script(prompt, turn):
    """Calls the tool once, then answers: right for even sums, wrong for odd ones."""
    a, b = (int(x) for x in prompt.split("Compute ")[1].split(".")[0].split(" + "))
    if turn == 0:
        return render_tool_call("code_interpreter", {"code": f"{a}+{b}"}) + "<|im_end|>"
    s = a + b
    return f"The answer is \\boxed{{{s if s % 2 == 0 else s + 1}}}.<|im_end|>"


@dataclass(frozen=True)
class GradeResult:
    correct: bool
    score: float
    pred: str | None


def exact_grade(response, gt, *, kind, grader):
    pred = response.rsplit("\\boxed{", 1)[-1].split("}")[0] if "\\boxed{" in response else None
    return GradeResult(correct=pred == gt, score=float(pred == gt), pred=pred)


@pytest.fixture
def setup(tmp_path):
    root = write_eval_release(tmp_path / "eval")
    problems = load_benchmark("aime25", data_dir=str(root))
    kw = dict(
        engine=ScriptedEngine(TOK, answer_script),
        tokenizer=TOK,
        tool=FakeTool(),
        grade_fn=exact_grade,
        k=3,
        graders=("strict", "math-verify"),
        params=SamplingParams(max_new_tokens=100),
        loop=AgentLoopConfig(max_response_tokens=400),
        out_dir=tmp_path / "out",
        label=EvalLabel("tiny", "1.7b", "sod", 42),
        model="scripted",
        config={},
        run={},
        batch_size=5,
    )
    return problems, kw


def test_records_and_summary(setup):
    problems, kw = setup
    res = evaluate_bench("aime25", problems, **kw)
    recs = RecordFile(res.records_path).load()
    assert res.new_records == len(recs) == 4 * 3
    assert {(r["problem_id"], r["sample"]) for r in recs} == {
        (p.id, s) for p in problems for s in range(3)
    }
    r0 = recs[0]
    assert r0["num_turns"] == 2 and r0["n_tool_calls"] == 1 and r0["tool_calls"][0]["code"] == "1+2"
    assert r0["pred"] == {"strict": "4", "math-verify": "4"} and r0["correct"]["strict"] is False
    s = json.loads(res.summary_path.read_text())
    # sums 3, 42, 15, 123: only 42 is even, so exactly one problem is right in every sample
    assert s["graders"]["strict"]["avg_at_k"] == pytest.approx(25.0)
    assert s["graders"]["strict"]["maj_at_k"] == pytest.approx(25.0)
    assert (
        s["n_records"] == 12
        and s["k"] == 3
        and s["mean_turns"] == 2.0
        and s["tool_error_rate"] == 0.0
    )
    assert s["stop_reasons"] == {"answer": 12} and s["label"]["method"] == "sod"


def test_resume_after_a_kill_mid_write(setup):
    problems, kw = setup
    first = evaluate_bench("aime25", problems[:2], **kw)  # as if killed after two problems
    path = first.records_path
    whole = path.read_bytes()
    path.write_bytes(whole + b'{"bench": "aime25", "problem_id": "2", "sam')  # torn last line
    res = evaluate_bench("aime25", problems, **kw)
    assert res.new_records == 2 * 3  # only the missing problems ran
    recs = RecordFile(path).load()
    keys = [(r["problem_id"], r["sample"]) for r in recs]
    assert len(keys) == len(set(keys)) == 12
    assert path.read_bytes().startswith(whole) and path.read_bytes().endswith(b"\n")
    again = evaluate_bench("aime25", problems, **kw)  # a finished bench does nothing new
    assert again.new_records == 0 and json.loads(again.summary_path.read_text())["n_records"] == 12


def test_a_corrupt_record_file_is_refused(setup, tmp_path):
    problems, kw = setup
    bad = kw["out_dir"] / "aime25.jsonl"
    bad.parent.mkdir(parents=True)
    bad.write_text('{"ok": 1}\nnot json\n{"ok": 2}\n')
    with pytest.raises(ValueError, match="aime25.jsonl:2"):
        evaluate_bench("aime25", problems, **kw)


def test_prompts_are_chat_rendered_with_the_tool_schema(setup):
    problems, kw = setup
    seen = []

    def spy(prompt, turn):
        seen.append(prompt)
        return "\\boxed{1}<|im_end|>"

    kw["engine"] = ScriptedEngine(TOK, spy)
    kw["k"] = 1
    evaluate_bench("aime25", problems[:1], **kw)
    assert (
        seen[0].startswith("<|im_start|>system\n# Tools")
        and '"name": "code_interpreter"' in seen[0]
    )
    assert seen[0].endswith("<|im_start|>assistant\n") and ids(seen[0])


def test_results_older_than_the_model_are_set_aside_not_resumed(setup, tmp_path):
    """A model retrained (or results checked out of git) after its records were written:
    the old records and summary are kept under .stale-N and the bench is evaluated afresh;
    records newer than the model are resumed as usual."""
    import os

    from sodctl.eval.runner import model_saved_at, set_aside, stale_outputs

    problems, kw = setup
    first = evaluate_bench("aime25", problems, **kw)
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    before = first.records_path.stat().st_mtime
    os.utime(model / "config.json", (before - 10, before - 10))  # saved before the records
    assert stale_outputs(kw["out_dir"], "aime25", model_saved_at(str(model))) == []
    os.utime(model / "config.json", (before + 10, before + 10))  # retrained since
    stale = stale_outputs(kw["out_dir"], "aime25", model_saved_at(str(model)))
    assert sorted(p.name for p in stale) == ["aime25.json", "aime25.jsonl"]
    old = first.records_path.read_bytes()
    moved = set_aside(stale)
    assert sorted(p.name for p in moved) == ["aime25.json.stale-1", "aime25.jsonl.stale-1"]
    assert (kw["out_dir"] / "aime25.jsonl.stale-1").read_bytes() == old
    again = evaluate_bench("aime25", problems, **kw)
    assert again.new_records == 12
    assert model_saved_at("Qwen/Qwen3-1.7B") is None  # a hub id: nothing to compare
