"""``sodctl.data.builders.sft``: the SFT corpus built from its sources by a teacher."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from sft_fixtures import PLAYS, PrintTool, ScriptedTeacher, tool_turn, write_s1k, write_sources

from sodctl.config import load_config
from sodctl.data.builders.common import HubOptions
from sodctl.data.builders.sft import (
    SFT_SOURCES,
    UnusableTrajectory,
    build_sft,
    final_answer_of,
    read_shard,
    trajectory_messages,
)
from sodctl.errors import SodctlUsageError
from sodctl.models.tiny import TinyModelSpec, build_tokenizer, create_tiny_checkpoint
from sodctl.rewards.code import parse_tests
from sodctl.rollout.agent import AgentLoopConfig, chat_prompt_ids, run_agent_loop
from sodctl.rollout.engine import SamplingParams
from sodctl.rollout.scripted import ScriptedEngine
from sodctl.tools.code_interpreter import tool_schema

TOK = build_tokenizer()
SCHEMA = tool_schema("released")
BASE = [
    "eval.max_response_tokens=600",
    "eval.max_turns=4",
    "engine.device=cpu",
    "model.dtype=float32",
]


def cfg_with(*extra: str):
    return load_config(None, overrides=[*BASE, *extra])


@pytest.fixture
def sources(tmp_path):
    return write_sources(tmp_path / "src")


def build(tmp_path, sources, teacher=None, **kw):
    teacher = teacher or ScriptedTeacher()
    kw.setdefault("cfg", cfg_with())
    result = build_sft(
        tmp_path / "out", teacher="scripted-teacher", sources=sources,
        engine=ScriptedEngine(TOK, teacher), tool=PrintTool(), progress=False, **kw,
    )  # fmt: skip
    return result, teacher


# --- a scorer for "module:function" ----------------------------------------------------------


def fewest_messages(problem: dict, messages: list[dict]) -> float:
    """A stand-in for a process reward model: shorter conversations score higher."""
    assert {"source", "id", "kind", "prompt", "ground_truth"} <= set(problem)
    return -float(len(messages))


NOT_CALLABLE = 3


# --- the build -------------------------------------------------------------------------------


def test_counts_manifest_and_table3(tmp_path, sources):
    result, _ = build(tmp_path, sources)
    m = result.manifest
    assert m["kind"] == "sft" and m["teacher"] == "scripted-teacher" and m["scorer"] == "rule"
    s1k, retool, leet = (m["sources"][n] for n in ("s1k", "retool", "leetcode"))
    assert s1k["keep"] is None and s1k["dropped"] == {"no_short_answer": 1}
    assert (s1k["problems"], s1k["trajectories"], s1k["correct"], s1k["kept"]) == (2, 2, 1, 1)
    assert retool["dropped"] == {"no_final_answer": 1} and retool["rows"] == 3
    assert retool["stop_reasons"] == {"answer": 1, "length": 1} and retool["kept"] == 1
    assert leet["dropped"] == {"bad_tests": 1} and (leet["correct"], leet["kept"]) == (1, 1)
    assert [(r["domain"], r["source"], r["samples"]) for r in m["table3"]] == [
        ("Mathematical", "s1-1k", 1), ("Tool-use", "ReTool", 1), ("Coding", "LeetCode", 1),
    ]  # fmt: skip
    assert [i["name"] for i in m["inputs"]] == ["s1k", "retool", "leetcode"]
    assert m["outputs"][0]["file"] == "sft.parquet" and m["outputs"][0]["rows"] == 3 == result.rows
    assert "3 conversations" in result.summary()


def test_ground_truths_of_each_source():
    assert final_answer_of("so <answer>\\boxed{12}</answer>") == "12"
    assert final_answer_of("so <answer> 7 </answer>") == "7"
    assert final_answer_of("no answer here") is None
    spec = json.loads(
        SFT_SOURCES["leetcode"].to_problem(
            {"task_id": "t", "problem_description": "d", "starter_code": "", "prompt": "import x\n",
             "entry_point": "Solution().f", "test": "def check(candidate):\n    assert candidate(1) == 1\n"},
            0, _templates(), "f.jsonl",
        ).ground_truth
    )  # fmt: skip
    assert spec == {
        "import_prefix": "import x\n",
        "test_code": spec["test_code"],
        "entry_point": "Solution().f",
    }
    assert len(parse_tests(spec)) == 1


def _templates():
    from sodctl.data.loaders import load_prompts

    return load_prompts(None)


def test_output_is_an_sft_corpus_the_trainer_reads(tmp_path, sources):
    from sodctl.data.corpora import sft_conversations
    from sodctl.engines.local.sft import tokenize_conversation

    result, _ = build(tmp_path, sources)
    frame = pd.read_parquet(result.path)
    assert set(frame["tools"]) == {json.dumps([SCHEMA])}
    convs = sft_conversations(load_config(None, overrides=[f"data.sft_path={result.path}"]))
    assert len(convs) == 3 and all(c.tools == [SCHEMA] for c in convs)
    by_problem = {c.messages[0]["content"].split("\n\n")[1]: c.messages for c in convs}
    multi = by_problem["What is 3*4?"]
    assert [m["role"] for m in multi] == [
        "user",
        "assistant",
        "tool",
        "assistant",
        "tool",
        "assistant",
    ]
    assert multi[1]["content"] == "First a check."
    assert multi[1]["tool_calls"] == [
        {
            "type": "function",
            "function": {"name": "code_interpreter", "arguments": '{"code": "print(3*4)"}'},
        }
    ]
    assert multi[2] == {"role": "tool", "content": "12"} and multi[-1] == {
        "role": "assistant",
        "content": "\\boxed{12}",
    }
    for c in convs:
        ids, mask = tokenize_conversation(TOK, c.messages, c.tools)
        assert len(ids) == len(mask) and 0 < sum(mask) < len(mask)


def _rollout(plays, layout):
    teacher = ScriptedTeacher(plays)
    prompt = next(iter(plays))
    ids = chat_prompt_ids(TOK, [{"role": "user", "content": prompt}], [SCHEMA])
    loop = AgentLoopConfig(max_turns=5, max_response_tokens=2000, turn_layout=layout)
    (traj,) = run_agent_loop(
        ScriptedEngine(TOK, teacher), TOK, PrintTool(), [ids], SamplingParams(800), loop
    )
    return prompt, ids, traj


@pytest.mark.parametrize("layout", ["verl", "chat-template"])
def test_messages_round_trip_through_the_chat_template(layout):
    plays = {"What is 3*4?": PLAYS["What is 3*4?"]}
    prompt, ids, traj = _rollout(plays, layout)
    messages = trajectory_messages(prompt, traj)
    plain = [{k: v for k, v in m.items() if v is not None} for m in messages]
    rendered = TOK.apply_chat_template(plain, tools=[SCHEMA], tokenize=False)
    played = TOK.decode(ids + traj.response_ids, skip_special_tokens=False)
    if layout == "verl":  # verl's observation turn follows <|im_end|> with no newline
        played = played.replace("<|im_end|><|im_start|>", "<|im_end|>\n<|im_start|>")
    assert rendered.rstrip("\n") == played


def test_trajectories_that_cannot_be_messages_are_named():
    bad = {
        "Q1": [
            'Search.\n<tool_call>\n{"name": "web_search", "arguments": {}}\n</tool_call><|im_end|>',
            "\\boxed{1}<|im_end|>",
        ],
        "Q2": [
            tool_turn("Run.", "print(1)").replace("<|im_end|>", " and more words<|im_end|>"),
            "\\boxed{1}<|im_end|>",
        ],
    }
    reasons = []
    for key, turns in bad.items():
        prompt, _, traj = _rollout({key: turns}, "verl")
        with pytest.raises(UnusableTrajectory) as e:
            trajectory_messages(prompt, traj)
        reasons.append(e.value.reason)
    assert reasons == ["invalid_call_block", "text_after_tool_call"]
    for turns, stop in (
        (["y" * 900], "length"),
        (["<tool_call>\n{not json}\n</tool_call><|im_end|>"], "invalid_call"),
    ):
        prompt, _, traj = _rollout({"Q3": turns}, "verl")
        with pytest.raises(UnusableTrajectory, match=stop):
            trajectory_messages(prompt, traj)


def test_custom_scorer_ranks_and_keeps_the_top(tmp_path, sources):
    result, _ = build(
        tmp_path, sources, scorer="test_data_sft:fewest_messages", keep={"s1k": 1, "leetcode": 2}
    )
    s = result.manifest["sources"]
    assert result.manifest["scorer"] == "test_data_sft:fewest_messages"
    # the wrong 2+3 answer is one message shorter than the tool trajectory of 6*7: it wins
    assert (s["s1k"]["scored"], s["s1k"]["kept"], s["s1k"]["correct"]) == (2, 1, 1)
    assert s["leetcode"]["kept"] == 2  # the wrong program is kept too: the scorer decides
    kept = pd.read_parquet(result.path)["messages"].tolist()
    assert any("\\boxed{6}" in str(m[-1]["content"]) for m in kept)


def test_restart_skips_finished_shards_and_reselects_without_generating(tmp_path, sources):
    class Interrupt(Exception):
        pass

    first = ScriptedTeacher()
    calls = {"n": 0}

    def flaky(prompt, turn):
        if "Return the product" in prompt:  # the last problem: its shard is never finished
            raise Interrupt
        calls["n"] += 1
        return first(prompt, turn)

    cfg = cfg_with()
    with pytest.raises(Interrupt):
        build_sft(tmp_path / "out", teacher="scripted-teacher", cfg=cfg, sources=sources, engine=ScriptedEngine(TOK, flaky),
                  tool=PrintTool(), shard_size=1, progress=False)  # fmt: skip
    assert calls["n"] > 0 and not (tmp_path / "out" / "sft.parquet").exists()
    again, teacher = build(tmp_path, sources, shard_size=1, cfg=cfg)
    assert again.generated_shards == 1 and teacher.calls == 1  # only the unfinished problem
    assert again.rows == 3
    fewer, teacher = build(
        tmp_path, sources, shard_size=1, cfg=cfg, keep={"s1k": 1, "retool": 1, "leetcode": 1}
    )
    assert teacher.calls == 0 and fewer.generated_shards == 0 and fewer.rows == 3
    with pytest.raises(SodctlUsageError, match="--force"):
        build(tmp_path, sources, shard_size=1, cfg=cfg, samples=2)


def test_samples_and_counts(tmp_path, sources):
    result, teacher = build(
        tmp_path, sources, samples=2, counts={"s1k": 1, "retool": 1, "leetcode": 1}
    )
    s = result.manifest["sources"]
    assert [s[n]["problems"] for n in ("s1k", "retool", "leetcode")] == [1, 1, 1]
    assert all(s[n]["trajectories"] == 2 for n in s)
    assert result.rows == sum(s[n]["kept"] for n in s) <= 3  # one kept per problem


def test_nothing_correct_is_one_line_and_keeps_the_shards(tmp_path, sources):
    wrong = ScriptedTeacher({"": ["\\boxed{nope}<|im_end|>"]})
    with pytest.raises(SodctlUsageError) as e:
        build(tmp_path, sources, teacher=wrong)
    msg = str(e.value)
    assert "\n" not in msg and "no trajectory was correct" in msg and "s1k: 2 problems" in msg
    assert list((tmp_path / "out" / "shards").glob("shard-*.parquet"))
    assert not (tmp_path / "out" / "sft.parquet").exists()


@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(scorer="nosuchmodule_xyz:f"), "cannot import nosuchmodule_xyz"),
        (dict(scorer="prm"), "expected 'rule' or MODULE:FUNCTION"),
        (dict(scorer="test_data_sft:NOT_CALLABLE"), "is not callable"),
        (dict(scorer="test_data_sft:missing"), "has no attribute"),
        (dict(keep={"s1k": 0}), "expected a positive integer"),
        (dict(counts={"nope": 3}), "unknown SFT source 'nope'"),
    ],
)
def test_one_line_errors(tmp_path, sources, kw, match):
    with pytest.raises(SodctlUsageError, match=match) as e:
        build(tmp_path, sources, **kw)
    assert "\n" not in str(e.value)


def test_source_errors_are_one_line(tmp_path, sources):
    with pytest.raises(SodctlUsageError, match="unknown SFT source 'foo'"):
        build(tmp_path, {**sources, "foo": "x"})
    bad = tmp_path / "bad.parquet"
    pd.read_parquet(write_s1k(tmp_path / "s1k.parquet")).drop(columns=["question"]).to_parquet(bad)
    with pytest.raises(
        SodctlUsageError, match=r"lacks column\(s\) \['question'\].*--source s1k=PATH"
    ) as e:
        build(tmp_path, {**sources, "s1k": str(bad)})
    assert "\n" not in str(e.value)
    with pytest.raises(SodctlUsageError, match="no such file or folder"):
        build(tmp_path, {**sources, "retool": str(tmp_path / "absent")})
    offline = HubOptions(offline=True, cache_dir=str(tmp_path / "empty-cache"))
    with pytest.raises(SodctlUsageError, match="pass --source leetcode=PATH") as e:
        build(tmp_path, {k: v for k, v in sources.items() if k != "leetcode"}, hub=offline)
    assert "\n" not in str(e.value) and "newfacade/LeetCodeDataset" in str(e.value)


# --- a real tiny model -------------------------------------------------------------------------

SMALLEST = TinyModelSpec(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=1,
                         num_key_value_heads=1, head_dim=32)  # fmt: skip


@pytest.mark.integration
def test_a_tiny_teacher_through_the_real_engine_and_tool(tmp_path, sources):
    ckpt = create_tiny_checkpoint(tmp_path / "teacher", SMALLEST, seed=3)
    cfg = load_config(None, overrides=["eval.max_response_tokens=16", "eval.max_turns=2", "engine.device=cpu",
                                       "model.dtype=float32", "rollout.engine=hf", "tool.run_timeout_s=5"])  # fmt: skip
    counts = {"s1k": 1, "retool": 1, "leetcode": 1}
    out = tmp_path / "out"
    try:
        result = build_sft(
            out, teacher=str(ckpt), cfg=cfg, sources=sources, counts=counts, progress=False
        )
    except SodctlUsageError as e:  # an untrained model gets nothing right: the expected outcome
        assert "no trajectory was correct" in str(e) and "\n" not in str(e)
        rows = read_shard(out / "shards" / "shard-00000.parquet")
        assert len(rows) == 3 and {r["source"] for r in rows} == set(counts)
        assert all(
            r["stop_reason"] in ("answer", "length", "max_turns", "invalid_call") for r in rows
        )
        assert all(r["response_tokens"] > 0 for r in rows)
    else:
        s = result.manifest["sources"]
        assert sum(s[n]["trajectories"] for n in s) == 3 and result.rows == sum(
            s[n]["kept"] for n in s
        )
