"""``sodctl.data.builders.hints``: OPSD's hints and solutions for an RL file."""

from __future__ import annotations

import json
from collections import Counter

import pyarrow.parquet as pq
import pytest

from sodctl.config import load_config
from sodctl.data.builders.common import write_parquet
from sodctl.data.builders.hints import answer_leaks, build_hints, leak_reason, numeric_value
from sodctl.data.builders.schema import rl_row, rl_schema
from sodctl.engines.local.rl import load_rl_problems, privileged_messages
from sodctl.errors import SodctlUsageError
from sodctl.models.tiny import TinyModelSpec, build_tokenizer, create_tiny_checkpoint
from sodctl.rollout.scripted import ScriptedEngine

TOK = build_tokenizer()
END = "<|im_end|>"
LEETCODE = json.dumps({
    "import_prefix": "", "entry_point": "Solution().addTwo",
    "test_code": "def check(candidate):\n    assert candidate(a = 1, b = 2) == 3\n",
})  # fmt: skip


def write_rl(path, *, with_code: bool = True):
    """DAPO-like rows (answer only), a Skywork math row (JSON-list answer), a row with a
    solution and hint already, a GPQA-like letter row, and a LeetCode-harness code row."""
    rows = [
        rl_row(data_source="math_dapo", content="What is 5+7?", ability="MATH", ground_truth="12", source="dapo", source_id="a"),
        rl_row(data_source="math_dapo", content="How many grams in a kilogram?", ability="MATH", ground_truth="1000", source="dapo", source_id="b"),
        rl_row(data_source="train-math-deepscaler", content="What is 3*3?", ability="math", ground_truth='["9"]', source="skywork", source_id="c"),
        rl_row(data_source="math_dapo", content="What is 2+2?", ability="MATH", ground_truth="4", source="dapo", source_id="d",
               solution="2+2 = \\boxed{4}", hint="Count on your fingers."),
        rl_row(data_source="gpqa-science", content="Which is a noble gas? (A) O (B) Ne", ability="science", ground_truth="B", source="sci", source_id="e"),
    ]  # fmt: skip
    if with_code:
        rows.append(rl_row(data_source="train-code-leetcode-Easy", content="Add a and b.", ability="code",
                           ground_truth=LEETCODE, source="skywork", source_id="f"))  # fmt: skip
    return write_parquet(path, rows, schema=rl_schema())


def cfg_with(*extra):
    return load_config(None, overrides=["engine.device=cpu", "model.dtype=float32", *extra])


class Writer:
    """A scripted instruction model: hints that leak on the first try, then good ones; worked
    solutions right for 5+7 and the code row, wrong for the others."""

    def __init__(self, leak_first: bool = True, good: bool = True) -> None:
        self.leak_first, self.good = leak_first, good
        self.calls = 0
        self.seen: Counter[str] = Counter()

    def __call__(self, prompt: str, turn: int) -> str:
        self.calls += 1
        user = prompt.split("<|im_start|>user\n", 1)[-1]
        problem = user.split("Problem:\n", 1)[-1].split("\n\n", 1)[0]
        if "short hint" in user:
            self.seen[problem] += 1
            if (self.leak_first and self.seen[problem] == 1) or not self.good:
                return f"It comes to 12.0 or 1,000 or 9 or (B).{END}"
            return f"Think about what the operation means.{END}"
        if "Add a and b" in problem:
            return f"```python\nclass Solution:\n    def addTwo(self, a, b):\n        return a + b\n```{END}"
        return f"5+7 = \\boxed{{12}}{END}" if "5+7" in problem else f"I think \\boxed{{0}}{END}"


def run(tmp_path, writer=None, rl=None, **kw):
    writer = writer if writer is not None else Writer()
    rl = rl or write_rl(tmp_path / "rl.parquet")
    kw.setdefault("cfg", cfg_with())
    kw.setdefault("model", "scripted")
    result = build_hints(
        rl, tmp_path / "out", engine=ScriptedEngine(TOK, writer), progress=False, **kw
    )
    return result, writer


def extras(result):
    return [r["extra_info"] for r in pq.read_table(result.path).to_pylist()]


# --- leak tests ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "hint, answer, kind, leaks",
    [
        ("The sum is 12.0 in the end.", "12", "math", True),
        ("About 1,000 of them.", "1000", "math", True),
        ("It has 1000 parts.", "1,000", "math", True),
        ("Note that -12 appears.", "12", "math", True),
        ("Half of it: \\frac{1}{2}.", "0.5", "math", True),
        ("Try 3 / 4 of the total.", "\\frac{3}{4}", "math", True),
        ("It is 120 or 212 or 12th or x12.", "12", "math", False),
        ("Use 12.5 as a bound.", "12", "math", False),
        ("We get x^2 + 1 here.", "x^2+1", "math", True),
        ("Yes, it holds.", "yes", "math", True),
        ("Option (B) is the one.", "B", "mcq", True),
        ("The answer is C.", "C", "mcq", True),
        ("A useful idea: balance the charges.", "A", "mcq", False),
        ("Nothing to see.", "\\sqrt{2}", "math", False),
    ],
)
def test_answer_leaks(hint, answer, kind, leaks):
    assert answer_leaks(hint, answer, kind) is leaks


def test_leak_reasons():
    assert leak_reason("  ", ["1"], "math") == "empty"
    assert leak_reason("So \\boxed{7}.", ["8"], "math") == "boxed"
    assert leak_reason("It is 8.", ["8"], "math") == "answer"
    assert leak_reason("Loop 8 times.", [], "code") is None  # numbers are fine in code hints
    assert leak_reason("Like this:\n```python\nprint(1)\n```", [], "code") == "code_block"
    assert leak_reason("Think of symmetry.", ["8", "9"], "math") is None
    assert numeric_value("1,000") == 1000 and numeric_value("-\\frac{1}{2}") == numeric_value("0.5")
    assert numeric_value("x+1") is None


# --- the build -------------------------------------------------------------------------------


def test_hints_retry_after_a_leak_and_count_rejections(tmp_path):
    result, writer = run(tmp_path)
    h = result.manifest["hints"]
    assert h["origins"] == {"existing": 1, "model": 5} and h["missing"] == 0
    assert h["rejected"] == {"answer": 4}  # the code row's first hint is not a leak
    assert h["generations"] == 9  # four rows tried twice, the code row once
    ex = extras(result)
    assert ex[3]["hint"] == "Count on your fingers." and ex[3]["solution"] == "2+2 = \\boxed{4}"
    assert {e["hint"] for i, e in enumerate(ex) if i not in (3, 5)} == {
        "Think about what the operation means."
    }
    assert result.manifest["kind"] == "hints" and result.manifest["model"] == "scripted"


def test_code_rows_skip_the_answer_test(tmp_path):
    # the first hint of the code row says "12.0 ... (B)": not a leak for code, kept at once
    result, _ = run(tmp_path)
    assert extras(result)[5]["hint"].startswith("It comes to 12.0")


def test_answer_solutions_and_code_examples(tmp_path):
    result, _ = run(tmp_path, hints=False, model=None)
    ex = extras(result)
    assert [e["solution"] for e in ex[:5]] == [
        "The final answer is 12.", "The final answer is 1000.", "The final answer is 9.",
        "2+2 = \\boxed{4}", "The final answer is B.",
    ]  # fmt: skip
    assert (
        "assert candidate(a = 1, b = 2) == 3" in ex[5]["solution"]
        and "Solution().addTwo" in ex[5]["solution"]
    )
    assert all(e["hint"] is None for i, e in enumerate(ex) if i != 3)
    m = result.manifest
    assert m["solutions"]["origins"] == {"answer": 4, "code_example": 1, "existing": 1}
    assert m["hints"]["enabled"] is False and m["model"] is None


def test_model_solutions_kept_only_when_right(tmp_path):
    result, _ = run(tmp_path, hints=False, solution_source="model", attempts=2)
    ex = extras(result)
    assert ex[0]["solution"] == "5+7 = \\boxed{12}"
    assert (
        ex[1]["solution"] == "The final answer is 1000."
        and ex[4]["solution"] == "The final answer is B."
    )
    assert ex[5]["solution"].startswith("```python")  # passes its test
    o = result.manifest["solutions"]
    assert o["origins"] == {"answer_fallback": 3, "existing": 1, "model": 2}
    assert o["rejected"] == {"wrong_answer": 6}  # three rows, two tries each


def test_missing_hints_are_kept_or_dropped(tmp_path):
    result, _ = run(
        tmp_path,
        writer=Writer(leak_first=True, good=False),
        attempts=2,
        rl=write_rl(tmp_path / "rl.parquet", with_code=False),
    )
    assert result.manifest["hints"]["missing"] == 4 and result.rows == 5
    assert result.manifest["hints"]["rejected"] == {"answer": 8}
    assert "WARNING: 4 row(s) have no hint" in result.summary()
    cfg = cfg_with(f"data.rl_path={result.path}", "data.prompt_wrapping=none")
    problems = load_rl_problems(cfg).problems
    with pytest.raises(SodctlUsageError, match="extra_info.hint"):
        [privileged_messages(p, "hint") for p in problems]
    dropped, _ = run(tmp_path / "b", writer=Writer(leak_first=True, good=False), attempts=2, drop_missing=True,
                     rl=write_rl(tmp_path / "rl.parquet", with_code=False))  # fmt: skip
    assert dropped.rows == 1 and dropped.manifest["hints"]["dropped"] == 4


def test_output_loads_for_opsd(tmp_path):
    result, _ = run(tmp_path)
    assert pq.read_schema(result.path).remove_metadata().equals(rl_schema())
    cfg = cfg_with(f"data.rl_path={result.path}", "data.prompt_wrapping=none")
    problems = load_rl_problems(cfg).problems
    assert [p.kind for p in problems] == ["math", "math", "math", "math", "mcq", "code"]
    for p in problems:
        for which in ("solution", "hint"):
            msgs = privileged_messages(p, which)
            assert msgs[0]["content"].startswith(p.messages[0]["content"]) and len(
                msgs[0]["content"]
            ) > len(p.messages[0]["content"])


def test_restart_skips_finished_shards(tmp_path):
    rl = write_rl(tmp_path / "rl.parquet")

    class Stop(Exception):
        pass

    first = Writer()

    def flaky(prompt, turn):
        if "Add a and b" in prompt:
            raise Stop
        return first(prompt, turn)

    with pytest.raises(Stop):
        build_hints(rl, tmp_path / "out", model="scripted", cfg=cfg_with(), engine=ScriptedEngine(TOK, flaky),
                    shard_size=2, progress=False)  # fmt: skip
    again, writer = run(tmp_path, rl=rl, shard_size=2)
    assert (
        again.generated_shards == 1 and writer.calls == 3
    )  # the last shard only: (B) twice, code once
    assert again.manifest["hints"]["origins"] == {"existing": 1, "model": 5}
    _, writer = run(tmp_path, rl=rl, shard_size=2)
    assert writer.calls == 0


def test_one_line_errors(tmp_path):
    rl = write_rl(tmp_path / "rl.parquet")
    for kw, match in (
        (dict(model=None, engine=None), "needs --model"),
        (dict(solution_source="paper"), "--solution-source"),
        (dict(templates_file=str(tmp_path / "nope.yaml")), "no such file"),
    ):
        with pytest.raises(SodctlUsageError, match=match) as e:
            build_hints(
                rl, tmp_path / "out", cfg=cfg_with(), progress=False, **{"model": "m", **kw}
            )
        assert "\n" not in str(e.value)
    with pytest.raises(SodctlUsageError, match="no such file"):
        build_hints(
            tmp_path / "absent.parquet", tmp_path / "out", model=None, cfg=cfg_with(), hints=False
        )
    bad = tmp_path / "bad.yaml"
    bad.write_text("hint_request: '{problem} {answer}'\n")
    with pytest.raises(SodctlUsageError, match="lacks"):
        build_hints(rl, tmp_path / "out", model="m", cfg=cfg_with(), templates_file=bad)


# --- a real tiny model -------------------------------------------------------------------------


@pytest.mark.integration
def test_a_tiny_instruction_model(tmp_path):
    spec = TinyModelSpec(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=1,
                         num_key_value_heads=1, head_dim=32)  # fmt: skip
    ckpt = create_tiny_checkpoint(tmp_path / "writer", spec, seed=5)
    rl = write_rl(tmp_path / "rl.parquet")
    cfg = cfg_with("rollout.engine=hf")
    result = build_hints(
        rl, tmp_path / "out", model=str(ckpt), cfg=cfg, attempts=1, hint_tokens=16, progress=False
    )
    h = result.manifest["hints"]
    assert (
        h["origins"].get("model", 0) + h["origins"].get("none", 0) == 5
        and h["origins"]["existing"] == 1
    )
    assert (
        h["generations"] == 5
        and sum(h["rejected"].values()) == h["origins"].get("none", 0) == h["missing"]
    )
    assert result.rows == 6
