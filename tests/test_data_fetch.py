"""`sodctl data fetch | inspect | stats` and what every builder shares (sodctl.data.builders.common):
released sets in their schemas, checked and normalised; one-line errors; restartable shards."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from eval_fixtures import write_eval_release

from sodctl.cli import main
from sodctl.config import load_config
from sodctl.data.builders.common import (
    HubOptions,
    Shards,
    hub_snapshot,
    read_manifest,
    read_table,
    sha256,
)
from sodctl.data.builders.fetch import fetch_release
from sodctl.errors import SodctlUsageError

pytestmark = pytest.mark.unit

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "code_interpreter",
            "description": "A tool for executing code.",
            "parameters": {
                "type": "object",
                "properties": {"code": {"type": "string"}},
                "required": ["code"],
            },
        },
    }
]


def sft_release_rows(arguments: str = "dict") -> list[dict]:
    """Rows in the SFT-3K schema, tool-call arguments as a dict or as a JSON string (the
    release's form is not verified; both are read)."""

    def call(code: str) -> dict:
        args = {"code": code} if arguments == "dict" else json.dumps({"code": code})
        return {"type": "function", "function": {"name": "code_interpreter", "arguments": args}}

    math = [
        {"role": "user", "content": "What is 6*7?"},
        {"role": "assistant", "content": "Compute it.", "tool_calls": [call("print(6*7)")]},
        {"role": "tool", "content": "42"},
        {"role": "assistant", "content": "\\boxed{42}"},
    ]
    code = [
        {"role": "user", "content": "Print 1."},
        {"role": "assistant", "content": "", "tool_calls": [call("print(1)")]},
        {"role": "tool", "content": "1"},
        {"role": "assistant", "content": "```python\nprint(1)\n```"},
    ]
    return [
        {"messages": math, "tools": json.dumps(TOOLS)},
        {"messages": code, "tools": json.dumps(TOOLS)},
    ]


def write_sft_release(path: Path, rows: list[dict] | None = None) -> Path:
    """The rows as nested parquet columns (as pyarrow writes them from Python objects)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(sft_release_rows() if rows is None else rows), path)
    return path


def rl_release_rows() -> list[dict]:
    def row(source, content, truth, ability="math", extra=None):
        return {
            "data_source": source,
            "prompt": [{"role": "user", "content": content}],
            "ability": ability,
            "reward_model": {"ground_truth": truth, "style": "rule"},
            "extra_info": extra or {"index": 0, "split": "train"},
        }

    tests = json.dumps({"inputs": ["1 2\n"], "outputs": ["3\n"]})
    return [
        row("math_dapo", "Solve 1+1.", "2", "MATH"),
        row("train-math-deepscaler", "Find x if x=12.", '["12"]'),
        row("train-code-taco-easy", "Sum two ints.", tests, "code"),
        row("mega-science", "Speed of 3 m in 1 s?", "3"),
    ]


# --- common -----------------------------------------------------------------------------------


def test_read_table_reads_parquet_jsonl_and_folders_and_names_bad_lines(tmp_path):
    pd.DataFrame({"a": [1, 2]}).to_parquet(tmp_path / "x.parquet")
    (tmp_path / "y.jsonl").write_text('{"a": 3}\n\n{"a": 4}\n')
    assert [r["a"] for r in read_table(tmp_path, what="t")] == [1, 2, 3, 4]
    (tmp_path / "bad.jsonl").write_text('{"a": 5}\nnot json\n')
    with pytest.raises(SodctlUsageError, match=r"bad.jsonl: line 2 is not JSON"):
        read_table(tmp_path / "bad.jsonl", what="t")
    with pytest.raises(SodctlUsageError, match=r"lacks column\(s\) \['b'\]"):
        read_table(tmp_path / "y.jsonl", what="t", columns=["b"])
    (tmp_path / "z.parquet").write_text("not parquet")
    with pytest.raises(SodctlUsageError, match="cannot read .* as parquet"):
        read_table(tmp_path / "z.parquet", what="t")


def test_shards_skip_finished_refuse_other_inputs_and_set_aside_on_force(tmp_path):
    root = tmp_path / "shards"
    s = Shards(root, {"input": "a", "seed": 1})
    s.write(0, [{"x": 1}])
    assert Shards(root, {"input": "a", "seed": 1}).done(0)
    with pytest.raises(SodctlUsageError, match=r"other inputs \(changed: seed\).*--force"):
        Shards(root, {"input": "a", "seed": 2})
    fresh = Shards(root, {"input": "a", "seed": 2}, force=True)
    assert not fresh.done(0)
    assert (tmp_path / "shards.stale-1" / "shard-00000.parquet").is_file()  # never deleted
    assert not list(root.glob(".*.tmp"))


def test_hub_snapshot_offline_is_one_line_naming_the_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "cache"))
    with pytest.raises(SodctlUsageError) as e:
        hub_snapshot(
            "Gen-Verse/Open-AgentRL-30K",
            ["*.parquet"],
            what="data fetch rl-30k",
            fix="pass --from PATH",
            hub=HubOptions(offline=True, cache_dir=str(tmp_path / "cache")),
        )
    assert "offline" in e.value.message and "pass --from PATH" in e.value.message
    assert "\n" not in e.value.message


# --- fetch ----------------------------------------------------------------------------------


@pytest.mark.parametrize("arguments", ["dict", "string"])
def test_fetch_sft_normalises_both_argument_forms_and_loads(tmp_path, arguments):
    src = write_sft_release(
        tmp_path / "release" / "full_sft_3k_shuffled_v4.parquet", sft_release_rows(arguments)
    )
    result = fetch_release("sft-3k", tmp_path / "out", source=str(src.parent))
    out = tmp_path / "out" / "sft.parquet"
    rows = pd.read_parquet(out)
    assert len(rows) == 2
    for messages in rows["messages"]:
        for m in messages:
            for c in m["tool_calls"] if m["tool_calls"] is not None else []:
                assert json.loads(c["function"]["arguments"])["code"]
    manifest = read_manifest(tmp_path / "out")
    assert manifest["kind"] == "fetch" and manifest["release"] == "sft-3k"
    assert manifest["outputs"][0]["sha256"] == sha256(out)
    assert manifest["counts"]["by_final_answer"] == {"code": 1, "math": 1}
    assert "data.sft_path=" in result.summary()
    # the SFT stage reads it
    from sodctl.data.corpora import sft_conversations

    cfg = load_config(preset="smoke", overrides=[f"data.sft_path={out}"])
    convs = sft_conversations(cfg)
    assert convs[0].tools[0]["function"]["name"] == "code_interpreter"
    assert convs[0].messages[1]["tool_calls"][0]["function"]["name"] == "code_interpreter"


def test_fetch_sft_bad_row_names_file_row_and_column(tmp_path):
    rows = sft_release_rows("string")
    rows[1]["messages"][1]["tool_calls"][0]["function"]["arguments"] = "{not json"
    src = write_sft_release(tmp_path / "r.parquet", rows)
    with pytest.raises(
        SodctlUsageError,
        match=r"r.parquet: row 1, column 'messages': message 1's tool-call arguments are not JSON",
    ):
        fetch_release("sft-3k", tmp_path / "out", source=str(src))
    assert not (tmp_path / "out" / "sft.parquet").exists()


def test_fetch_rl_normalises_to_the_engine_schema(tmp_path):
    src = tmp_path / "Open-AgentRL-30K.parquet"
    pd.DataFrame(rl_release_rows()).to_parquet(src)
    fetch_release("rl-30k", tmp_path / "out", source=str(src))
    manifest = read_manifest(tmp_path / "out")
    assert manifest["counts"]["list_ground_truths"] == 1
    assert {r["source"]: r["samples"] for r in manifest["table3"]} == {
        "DAPO-Math": 1,
        "Skywork-or1 (Math)": 1,
        "Skywork-or1 (Code)": 1,
        "MegaScience": 1,
    }
    from sodctl.engines.local.rl import load_rl_problems

    cfg = load_config(preset="smoke", overrides=[f"data.rl_path={tmp_path / 'out' / 'rl.parquet'}"])
    data = load_rl_problems(cfg)
    assert [p.kind for p in data.problems] == ["math", "math", "code", "math"]
    assert data.problems[1].ground_truth == "12"
    assert json.loads(data.problems[2].ground_truth)["outputs"] == ["3\n"]
    frame = pd.read_parquet(tmp_path / "out" / "rl.parquet")
    assert set(frame["agent_name"]) == {"tool_agent"}
    assert frame["extra_info"][2]["tools_kwargs"]["code_interpreter"]["create_kwargs"][
        "ground_truth"
    ]


def test_fetch_rl_refuses_multi_turn_prompts_and_missing_truths(tmp_path):
    rows = rl_release_rows()
    rows[2]["reward_model"] = {"ground_truth": "", "style": "rule"}
    pd.DataFrame(rows).to_parquet(tmp_path / "a.parquet")
    with pytest.raises(
        SodctlUsageError, match=r"a.parquet: row 2, column 'reward_model': has no ground_truth"
    ):
        fetch_release("rl-30k", tmp_path / "out", source=str(tmp_path / "a.parquet"))


def test_fetch_eval_finds_files_by_data_source_and_evaluation_reads_them(tmp_path):
    release = write_eval_release(tmp_path / "release")
    # a user's copy with other file names: found by the data_source column, as the loader dispatched
    flat = tmp_path / "flat"
    flat.mkdir()
    for i, f in enumerate(sorted(release.rglob("*.parquet"))):
        (flat / f"part-{i}.parquet").write_bytes(f.read_bytes())
    fetch_release("eval", tmp_path / "out", source=str(flat))
    manifest = read_manifest(tmp_path / "out")
    assert manifest["counts"] == {"aime24": 2, "aime25": 4, "gpqa": 2, "lcb": 1, "total": 9}
    from sodctl.data.loaders import load_benchmark

    assert len(load_benchmark("aime25", data_dir=str(tmp_path / "out"))) == 4


def test_eval_loader_refuses_another_benchmarks_file(tmp_path):
    release = write_eval_release(tmp_path / "release")
    from sodctl.data.loaders import load_benchmark

    with pytest.raises(SodctlUsageError, match=r"holds data_source \['AIME2025'\], not 'AIME2024'"):
        load_benchmark("aime24", path=str(release / "aime2025/aime_2025_problems.parquet"))


def test_fetch_eval_names_what_is_missing(tmp_path):
    release = write_eval_release(tmp_path / "release")
    (release / "gpqa-diamond/gpqa_diamond.parquet").unlink()
    with pytest.raises(SodctlUsageError, match=r"holds no file for gpqa"):
        fetch_release("eval", tmp_path / "out", source=str(release))


# --- the CLI --------------------------------------------------------------------------------


def one_line(capsys, *args) -> str:
    assert main(list(args)) == 2
    err = capsys.readouterr().err.strip()
    assert err and "\n" not in err and "Traceback" not in err, err
    return err


def test_cli_fetch_without_hub_says_what_to_pass(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.chdir(tmp_path)
    line = one_line(
        capsys, "data", "fetch", "rl-30k", "--offline", "--cache-dir", str(tmp_path / "c")
    )
    assert "--from PATH" in line


def test_cli_fetch_inspect_and_stats_end_to_end(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    pd.DataFrame(rl_release_rows()).to_parquet(tmp_path / "rl.parquet")
    write_sft_release(tmp_path / "sft.parquet")
    assert main(["data", "fetch", "rl-30k", "--from", "rl.parquet"]) == 0
    assert main(["data", "fetch", "sft-3k", "--from", "sft.parquet"]) == 0
    assert main(["data", "sft", "--from", "sft.parquet", "--out", "data/sft-copy"]) == 0
    capsys.readouterr()
    assert main(["data", "stats"]) == 0
    table = capsys.readouterr().out
    assert "| RL Dataset | Mathematical | DAPO-Math | 1 | 17,000 |" in table
    assert "| RL Dataset | **Total** | | **4** |" in table
    assert "SFT Dataset" in table
    tok = _tiny_tokenizer(tmp_path)
    assert (
        main(["data", "inspect", "data/rl-30k/rl.parquet", "--tokenizer", tok, "--row", "2"]) == 0
    )
    report = capsys.readouterr().out
    assert "schema: ok" in report and "train-code-taco-easy: 1 (code)" in report
    assert "tokens: min" in report and "code_interpreter" in report  # rendered with the tool schema
    assert main(["data", "inspect", "data/sft-3k/sft.parquet", "--tokenizer", tok]) == 0
    report = capsys.readouterr().out
    assert "final answer: \\boxed: 1, python block: 1" in report and "<tool_call>" in report


def _tiny_tokenizer(tmp_path: Path) -> str:
    from sodctl.models.tiny import build_tokenizer

    where = tmp_path / "tok"
    build_tokenizer().save_pretrained(where)
    return str(where)


def test_cli_inspect_names_every_bad_column_and_exits_2(capsys, tmp_path):
    rows = rl_release_rows()
    rows[1]["prompt"] = []
    rows[3]["reward_model"] = {"ground_truth": None, "style": "x"}
    frame = pd.DataFrame(rows).drop(columns=["data_source"])
    frame.to_parquet(tmp_path / "bad.parquet")
    assert main(["data", "inspect", str(tmp_path / "bad.parquet")]) == 2
    captured = capsys.readouterr()
    assert "column 'data_source' is missing" in captured.out
    assert "column 'prompt': row 1: not a non-empty list" in captured.out
    assert "column 'reward_model': row 3: has no ground_truth" in captured.out
    assert "3 schema problem(s)" in captured.err and "\n" not in captured.err.strip()


def test_cli_inspect_benchmark_file_and_unknown_file(capsys, tmp_path):
    release = write_eval_release(tmp_path / "release")
    assert main(["data", "inspect", str(release / "gpqa-diamond/gpqa_diamond.parquet")]) == 0
    assert "gpqa: 2 problems (mcq)" in capsys.readouterr().out
    pd.DataFrame({"x": [1]}).to_parquet(tmp_path / "x.parquet")
    assert main(["data", "inspect", str(tmp_path / "x.parquet")]) == 2
    assert "no known schema" in capsys.readouterr().out


@pytest.mark.parametrize(
    "args, expected",
    [
        (["data", "rl", "--source", "nope=x"], "unknown source 'nope'"),
        (["data", "rl", "--count", "dapo=-3"], "positive integer or 'all'"),
        (["data", "rl", "--source", "dapo"], "expected NAME=VALUE"),
        (["data", "sft", "--teacher", "m"], "need --build"),
        (["data", "sft", "--build"], "needs --teacher"),
        (["data", "hints", "rl.parquet"], "needs --model"),
        (["data", "stats"], "no data manifest under"),
        (["data", "inspect", "missing.parquet"], "no such file"),
    ],
)
def test_cli_data_bad_input_is_one_line(capsys, tmp_path, monkeypatch, args, expected):
    monkeypatch.chdir(tmp_path)
    assert expected in one_line(capsys, *args)
