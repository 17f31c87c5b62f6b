"""The RL-mixture builder (``sodctl data rl``): sources, sampling, restarts, filters, output."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from data_fixtures import (
    DAPO_COPIES,
    DAPO_PROBLEMS,
    MEGASCIENCE,
    SKYWORK_CODE,
    SKYWORK_MATH,
    dapo_rows,
    write_all_sources,
    write_dapo,
    write_megascience,
    write_rows,
    write_skywork_code,
    write_skywork_math,
)

from sodctl.config import load_config
from sodctl.data.builders.common import HubOptions, read_table
from sodctl.data.builders.rl import RL_FILE, build_rl, filter_overlong_rows
from sodctl.data.builders.schema import rl_schema
from sodctl.data.builders.sources import (
    RL_SOURCES,
    dapo_problem_key,
    decode_answers,
    numeric_answer,
)
from sodctl.errors import SodctlUsageError

ALL = {"dapo": None, "skywork-math": None, "skywork-code": None, "megascience": None}


def _normalise(name: str, path: Path, **options):
    return RL_SOURCES[name].normalise(read_table(path, what="test"), path, **options)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _build(tmp_path: Path, out: str = "out", **kwargs):
    if "sources" not in kwargs:
        kwargs["sources"] = write_all_sources(tmp_path / "src")
    kwargs.setdefault("counts", ALL)
    return build_rl(tmp_path / out, progress=False, **kwargs)


@pytest.fixture(scope="module")
def tiny_tokenizer(tmp_path_factory) -> str:
    from sodctl.models.tiny import build_tokenizer

    path = tmp_path_factory.mktemp("tok")
    build_tokenizer().save_pretrained(path)
    return str(path)


# --- the registry ----------------------------------------------------------------------------


def test_registry_matches_table3():
    assert list(RL_SOURCES) == ["dapo", "skywork-math", "skywork-code", "megascience"]
    assert [s.title for s in RL_SOURCES.values()] == [
        "DAPO-Math",
        "Skywork-or1 (Math)",
        "Skywork-or1 (Code)",
        "MegaScience",
    ]
    assert [s.domain for s in RL_SOURCES.values()] == [
        "Mathematical",
        "Mathematical",
        "Coding",
        "Scientific",
    ]
    assert [s.default_count for s in RL_SOURCES.values()] == [17000, 4902, 3586, 3000]
    assert (
        RL_SOURCES["skywork-math"].hub_repo
        == RL_SOURCES["skywork-code"].hub_repo
        == "Skywork/Skywork-OR1-RL-Data"
    )


# --- the normalisers -------------------------------------------------------------------------


def test_dapo_dedups_on_problem_text(tmp_path):
    path = write_dapo(tmp_path / "dapo.parquet")
    norm = _normalise("dapo", path)
    assert norm.read == len(DAPO_PROBLEMS) * DAPO_COPIES + 1
    assert norm.usable == len(DAPO_PROBLEMS)
    assert norm.duplicates == len(DAPO_PROBLEMS) * (DAPO_COPIES - 1) + 1  # + the near-duplicate
    assert [r["reward_model"]["ground_truth"] for r in norm.rows] == [a for _, a in DAPO_PROBLEMS]
    first = dapo_rows()[0]
    row = norm.rows[0]
    assert row["prompt"] == [
        {"role": "user", "content": first["prompt"][0]["content"]}
    ]  # kept as written
    assert (row["data_source"], row["ability"], row["agent_name"]) == (
        "math_dapo",
        "MATH",
        "tool_agent",
    )
    assert row["extra_info"]["source_id"] == first["extra_info"]["index"]  # the first copy's UUID
    assert json.loads(row["extra_info"]["raw"]) == first["extra_info"]
    assert (
        row["extra_info"]["tools_kwargs"]["code_interpreter"]["create_kwargs"]["ground_truth"]
        == "7"
    )
    assert dapo_problem_key(first["prompt"][0]["content"]) == "what is $3 + 4$?"


def test_skywork_math_ground_truths(tmp_path):
    norm = _normalise("skywork-math", write_skywork_math(tmp_path / "math.parquet"))
    expected = [(ds, gt, extra) for ds, _, gt, extra in SKYWORK_MATH if gt is not None]
    assert norm.read == len(SKYWORK_MATH)
    assert [(r["data_source"], r["reward_model"]["ground_truth"]) for r in norm.rows] == [
        (d, g) for d, g, _ in expected
    ]
    assert [r["extra_info"]["answers"] for r in norm.rows] == [e for _, _, e in expected]
    assert norm.dropped == {"empty ground truth": 2, "undecodable ground truth": 1}
    assert norm.shapes == {"multi_answer": 1}
    assert norm.rows[0]["extra_info"]["source_id"] == "1000"
    assert (
        json.loads(norm.rows[0]["extra_info"]["raw"])["model_difficulty"][
            "DeepSeek-R1-Distill-Qwen-7B"
        ]
        == 8
    )


def test_decode_answers_shapes():
    assert decode_answers('["12"]') == ["12"]
    assert decode_answers("['8']") == ["8"]
    assert decode_answers(["1", "1", " 2 "]) == ["1", "2"]
    assert decode_answers("1.50") == ["1.50"]
    assert decode_answers(None) == decode_answers("  ") == decode_answers("[]") == []
    assert decode_answers('["a", ') is None
    assert decode_answers('[["nested"]]') is None


def test_skywork_code_tests(tmp_path):
    norm = _normalise("skywork-code", write_skywork_code(tmp_path / "code.parquet"))
    kept = [(ds, spec) for ds, _, spec, _ in SKYWORK_CODE if spec is not None]
    assert [
        (r["data_source"], json.loads(r["reward_model"]["ground_truth"])) for r in norm.rows
    ] == kept
    assert norm.dropped == {"ground truth not JSON": 1, "tests not parseable": 2}
    assert norm.shapes == {"taco": 1, "taco-functional": 1, "leetcode": 2, "null_keys_dropped": 2}
    assert all(r["ability"] == "code" for r in norm.rows)


def test_megascience_numeric_and_all(tmp_path):
    path = write_megascience(tmp_path / "mega.parquet")
    numeric = _normalise("megascience", path)
    assert [r["reward_model"]["ground_truth"] for r in numeric.rows] == [
        g for _, g, _ in MEGASCIENCE if g
    ]
    assert numeric.dropped == {"reference answer not numeric": 2, "empty reference answer": 1}
    assert numeric.shapes == {"integer": 3, "decimal": 1, "fraction": 2, "scientific": 2}
    row = numeric.rows[0]
    assert (row["data_source"], row["ability"]) == ("mega-science", "science")
    assert row["extra_info"]["solution"].startswith("Step 1.")
    assert json.loads(row["extra_info"]["raw"])["subject"] == "physics"
    every = _normalise("megascience", path, answers="all")
    assert every.usable == len(MEGASCIENCE) - 1
    assert every.shapes["text"] == 2
    assert "The mitochondria" in [r["reward_model"]["ground_truth"] for r in every.rows]
    with pytest.raises(SodctlUsageError, match="takes no option"):
        _normalise("dapo", path, answers="all")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("+1,234.50", "1234.50"),
        ("-.5", "-0.5"),
        ("$$12$$", "12"),
        ("1{,}000", "1000"),
        ("\\(\\dfrac{-1}{2}\\)", "-\\frac{1}{2}"),
        ("2.5\\cdot10^{-3}", "2.5 \\times 10^{-3}"),
        ("6.02E+23", "6.02 \\times 10^{23}"),
        ("10^{-7}", "10^{-7}"),
        ("−4", "-4"),
        ("7.", "7"),
        ("1/0", None),
        ("25%", None),
        ("\\sqrt{2}", None),
        ("1,2", None),
    ],
)
def test_numeric_answer_forms(text, expected):
    got = numeric_answer(text)
    assert (got[0] if got else None) == expected


# --- bad input -------------------------------------------------------------------------------


def test_missing_column_is_a_row_error(tmp_path):
    rows = [{k: v for k, v in r.items() if k != "reward_model"} for r in dapo_rows()]
    path = write_rows(tmp_path / "dapo.parquet", rows)
    with pytest.raises(SodctlUsageError) as e:
        build_rl(
            tmp_path / "out",
            sources={"dapo": str(path)},
            counts={"dapo": 1},
            only=["dapo"],
            progress=False,
        )
    message = str(e.value)
    assert f"{path}: row 0, column 'reward_model': missing" in message
    assert "--source dapo=PATH" in message and "\n" not in message


def test_non_list_prompt_names_file_and_row(tmp_path):
    rows = dapo_rows()
    rows[2] = {**rows[2], "prompt": "a bare string"}
    good = write_rows(tmp_path / "dir" / "a.parquet", dapo_rows(seed=1))
    bad = write_rows(tmp_path / "dir" / "b.jsonl", rows)  # JSON lines may mix types
    with pytest.raises(SodctlUsageError) as e:
        build_rl(
            tmp_path / "out",
            sources={"dapo": str(good.parent)},
            counts={"dapo": 1},
            only=["dapo"],
            progress=False,
        )
    assert f"{bad}: row 2, column 'prompt': is not a list of {{role, content}} messages" in str(
        e.value
    )


def test_wrong_skywork_split_is_refused(tmp_path):
    path = write_skywork_math(tmp_path / "math.parquet")
    with pytest.raises(SodctlUsageError, match="column 'data_source'.*other Skywork split"):
        _normalise("skywork-code", path)


def test_not_parquet_is_one_line(tmp_path):
    path = tmp_path / "dapo.parquet"
    path.write_text("this is not parquet\n")
    with pytest.raises(SodctlUsageError) as e:
        build_rl(tmp_path / "out", sources={"dapo": str(path)}, only=["dapo"], progress=False)
    assert (
        "cannot read" in str(e.value) and "as parquet" in str(e.value) and "\n" not in str(e.value)
    )
    with pytest.raises(SodctlUsageError, match="no such file or directory"):
        build_rl(
            tmp_path / "out",
            sources={"dapo": str(tmp_path / "nope")},
            only=["dapo"],
            progress=False,
        )


def test_unknown_names_and_counts(tmp_path):
    with pytest.raises(
        SodctlUsageError,
        match="unknown source.*known: dapo, skywork-math, skywork-code, megascience",
    ):
        build_rl(tmp_path / "out", sources={"gsm8k": "x"}, progress=False)
    with pytest.raises(SodctlUsageError, match="--only"):
        build_rl(tmp_path / "out", only=["dapo", "nope"], progress=False)
    with pytest.raises(SodctlUsageError, match="is not a row count"):
        build_rl(tmp_path / "out", counts={"dapo": -3}, progress=False)


def test_count_too_large(tmp_path):
    with pytest.raises(SodctlUsageError) as e:
        _build(tmp_path, counts={**ALL, "skywork-code": 100})
    message = str(e.value)
    assert (
        "source skywork-code has 4 usable rows (7 read, 0 duplicates, 3 dropped), fewer than the 100 asked"
        in message
    )
    assert "--count skywork-code=4 (or skywork-code=all)" in message


def test_missing_source_offline(tmp_path):
    sources = write_all_sources(tmp_path / "src")
    del sources["megascience"]
    with pytest.raises(SodctlUsageError) as e:
        _build(
            tmp_path,
            sources=sources,
            hub=HubOptions(offline=True, cache_dir=str(tmp_path / "cache")),
        )
    message = str(e.value)
    assert "source megascience" in message and "MegaScience/MegaScience" in message
    assert "pass --source megascience=PATH" in message


# --- the build -------------------------------------------------------------------------------


def test_build_counts_and_manifest(tmp_path):
    build = _build(tmp_path, counts={**ALL, "dapo": 3, "megascience": 5})
    m = build.manifest
    assert build.path == tmp_path / "out" / RL_FILE
    assert m["kind"] == "rl" and m["seed"] == 42
    s = m["sources"]
    assert {n: (s[n]["read"], s[n]["usable"], s[n]["sampled"], s[n]["final"]) for n in s} == {
        "dapo": (16, 5, 3, 3),
        "skywork-math": (8, 5, 5, 5),
        "skywork-code": (7, 4, 4, 4),
        "megascience": (11, 8, 5, 5),
    }
    assert s["dapo"]["duplicates"] == 11 and s["skywork-code"]["shapes"]["leetcode"] == 2
    assert m["outputs"][0]["rows"] == 17 == pq.read_metadata(build.path).num_rows
    assert m["table3"] == [
        {"type": "RL Dataset", "domain": "Mathematical", "source": "DAPO-Math", "samples": 3},
        {
            "type": "RL Dataset",
            "domain": "Mathematical",
            "source": "Skywork-or1 (Math)",
            "samples": 5,
        },
        {"type": "RL Dataset", "domain": "Coding", "source": "Skywork-or1 (Code)", "samples": 4},
        {"type": "RL Dataset", "domain": "Scientific", "source": "MegaScience", "samples": 5},
    ]
    assert m["by_data_source"]["math_dapo"] == 3 and m["by_data_source"]["mega-science"] == 5
    assert [i["name"] for i in m["inputs"]] == list(RL_SOURCES) and m["inputs"][0]["rows"] == 16
    assert m["filters"]["tokenizer"] is None and m["filters"]["megascience_answers"] == "numeric"
    table = pq.read_table(build.path)
    assert table.schema.equals(rl_schema())
    rows = table.to_pylist()
    assert [r["extra_info"]["index"] for r in rows] == list(range(17))
    assert "skywork-code" in build.summary() and str(build.path) in build.summary()


def test_seeded_and_byte_identical(tmp_path):
    sources = write_all_sources(tmp_path / "src")
    a = _build(tmp_path, "a", sources=sources)
    b = _build(tmp_path, "b", sources=sources)
    c = _build(tmp_path, "c", sources=sources, seed=7)
    assert _sha(a.path) == _sha(b.path)
    ids = [pq.read_table(x.path).column("extra_info").to_pylist() for x in (a, c)]
    order_a, order_c = ([(e["source"], e["source_id"]) for e in x] for x in ids)
    assert order_a != order_c and sorted(order_a) == sorted(order_c)  # every row, another order
    few = _build(tmp_path, "few", sources=sources, counts={**ALL, "dapo": 2}, only=["dapo"])
    again = _build(tmp_path, "few2", sources=sources, counts={**ALL, "dapo": 2}, only=["dapo"])
    assert _sha(few.path) == _sha(again.path)


def test_restart_reuses_shards_and_refuses_changed_input(tmp_path, monkeypatch):
    sources = write_all_sources(tmp_path / "src")
    first = _build(tmp_path, sources=sources)
    assert (tmp_path / "out" / ".shards" / "dapo" / "shard-00000.parquet").is_file()

    def boom(*args, **kwargs):
        raise AssertionError("normalised again")

    for name in RL_SOURCES:
        monkeypatch.setitem(
            RL_SOURCES, name, dataclasses.replace(RL_SOURCES[name], normaliser=boom)
        )
    second = _build(tmp_path, sources=sources)
    assert _sha(first.path) == _sha(second.path)
    assert all(s["reused_shard"] for s in second.manifest["sources"].values())
    monkeypatch.undo()

    write_dapo(Path(sources["dapo"]), copies=2)
    with pytest.raises(SodctlUsageError, match="shards built from other inputs.*--force"):
        _build(tmp_path, sources=sources)
    forced = _build(tmp_path, sources=sources, force=True)
    assert forced.manifest["sources"]["dapo"]["duplicates"] == len(DAPO_PROBLEMS) + 1
    assert not forced.manifest["sources"]["dapo"]["reused_shard"]
    assert (tmp_path / "out" / ".shards" / "dapo.stale-1").is_dir()


def test_length_filter_drops_long_prompts(tmp_path, tiny_tokenizer):
    sources = write_all_sources(tmp_path / "src", long=True)
    plain = _build(tmp_path, "plain", sources=sources)
    assert plain.manifest["sources"]["dapo"]["final"] == len(DAPO_PROBLEMS) + 1
    for wrapping in ("released", "per-source"):
        build = _build(
            tmp_path,
            wrapping,
            sources=sources,
            tokenizer=tiny_tokenizer,
            max_prompt_tokens=1500,
            prompt_wrapping=wrapping,
        )
        s = build.manifest["sources"]["dapo"]
        assert (s["sampled"], s["too_long"], s["final"]) == (
            len(DAPO_PROBLEMS) + 1,
            1,
            len(DAPO_PROBLEMS),
        )
        assert all(x["too_long"] == 0 for n, x in build.manifest["sources"].items() if n != "dapo")
        assert build.manifest["filters"]["tokenizer"] == tiny_tokenizer
        assert (
            sum(build.manifest["filters"]["wrapping_measured"].values())
            == build.manifest["outputs"][0]["rows"]
        )
        prompts = [r["prompt"][0]["content"] for r in pq.read_table(build.path).to_pylist()]
        assert not any("Consider the sequence" in p for p in prompts)
        assert any(p.startswith("Solve the following math problem") for p in prompts)  # unwrapped


def test_length_filter_rechecks_when_the_first_row_goes(tiny_tokenizer):
    from transformers import AutoTokenizer

    from sodctl.data.loaders import load_prompts
    from sodctl.data.prompting import prompt_length

    tok = AutoTokenizer.from_pretrained(tiny_tokenizer)
    long_dapo = {"data_source": "math_dapo", "prompt": [{"role": "user", "content": "x" * 2000}]}
    short = [
        {"data_source": "train-math-deepscaler", "prompt": [{"role": "user", "content": f"q{i}"}]}
        for i in range(3)
    ]
    templates = load_prompts(None)
    kept, dropped, wrapping = filter_overlong_rows(
        [long_dapo, *short], tok, templates, "released", 1000
    )
    assert kept == short and dropped == [long_dapo]
    assert wrapping == {
        "skywork": 3
    }  # the branch of the new first row, as the engine will apply it
    assert prompt_length(tok, [{"role": "user", "content": "q0"}]) < 1000


def test_bad_tokenizer_is_one_line(tmp_path):
    with pytest.raises(SodctlUsageError) as e:
        _build(tmp_path, tokenizer=str(tmp_path / "no-tokenizer"))
    assert "cannot load the tokenizer" in str(e.value) and "--no-length-filter" in str(e.value)
    assert "\n" not in str(e.value)


def test_engine_loads_the_output(tmp_path):
    from sodctl.config import load_config
    from sodctl.engines.local.rl import load_rl_problems

    build = _build(tmp_path, counts={**ALL, "megascience": 3})
    cfg = load_config(
        None,
        preset="smoke",
        overrides=[
            f"data.rl_path={build.path}",
            "data.limit=null",
            "data.prompt_wrapping=per-source",
            "data.prompts_file=null",
        ],
    )
    data = load_rl_problems(cfg)
    rows = pq.read_table(build.path).to_pylist()
    assert data.rows == len(rows) == len(data.problems)
    for row, problem in zip(rows, data.problems):
        assert problem.kind == ("code" if row["extra_info"]["source"] == "skywork-code" else "math")
        assert problem.ground_truth == row["reward_model"]["ground_truth"]
        assert (
            problem.messages[0]["content"] != row["prompt"][0]["content"]
        )  # wrapped once, at load
        if problem.kind == "code":
            from sodctl.rewards.code import parse_tests

            assert parse_tests(problem.ground_truth)
    assert any(p.solution for p in data.problems)  # MegaScience's worked answers


def test_hub_snapshot_from_the_cache(tmp_path):
    """A source not given comes from the hub cache; the Skywork snapshot holds both
    splits side by side, and each source reads its own split's files alone."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "cache" / "datasets--Skywork--Skywork-OR1-RL-Data"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    snapshot = repo / "snapshots" / commit / "data"
    write_skywork_math(snapshot / "math-00000-of-00001.parquet")
    write_skywork_code(snapshot / "code-00000-of-00001.parquet")
    (snapshot.parent / "README.md").write_text("card\n")
    build = build_rl(
        tmp_path / "out",
        only=["skywork-code", "skywork-math"],
        counts=ALL,
        hub=HubOptions(offline=True, cache_dir=str(tmp_path / "cache")),
        progress=False,
    )
    inputs = build.manifest["inputs"]
    assert [(i["name"], Path(i["path"]).name, i["hub_repo"], i["revision"]) for i in inputs] == [
        ("skywork-math", "math-00000-of-00001.parquet", "Skywork/Skywork-OR1-RL-Data", commit),
        ("skywork-code", "code-00000-of-00001.parquet", "Skywork/Skywork-OR1-RL-Data", commit),
    ]
    assert [build.manifest["sources"][n]["final"] for n in ("skywork-math", "skywork-code")] == [
        5,
        4,
    ]


# --- the CLI, as a user runs it --------------------------------------------------------------


def test_cli_data_rl_then_stats_inspect_and_the_engine(capsys, tmp_path, monkeypatch, tiny_tokenizer):
    from sodctl.cli import main
    from sodctl.engines.local.rl import load_rl_problems

    monkeypatch.chdir(tmp_path)
    paths = write_all_sources(tmp_path / "src")
    args = ["data", "rl", "--quiet", "--tokenizer", tiny_tokenizer, "--seed", "7"]
    for name, path in paths.items():
        args += ["--source", f"{name}={path}", "--count", f"{name}=all"]
    assert main(args) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "RL mixture: data/rl/rl.parquet" in out
    manifest = json.loads((tmp_path / "data/rl/manifest.json").read_text())
    assert manifest["seed"] == 7 and manifest["filters"]["tokenizer"] == tiny_tokenizer
    assert main(["data", "stats"]) == 0
    table = capsys.readouterr().out
    assert "| RL Dataset | Coding | Skywork-or1 (Code) |" in table and "3,586" in table
    assert main(["data", "inspect", "data/rl/rl.parquet", "--tokenizer", tiny_tokenizer]) == 0
    assert "schema: ok" in capsys.readouterr().out
    cfg = load_config(preset="smoke", overrides=["data.rl_path=data/rl/rl.parquet", "data.limit=null"])
    problems = load_rl_problems(cfg).problems
    assert len(problems) == manifest["outputs"][0]["rows"]
    # a rerun reuses the shards and writes the same bytes
    before = (tmp_path / "data/rl/rl.parquet").read_bytes()
    assert main(args) == 0
    assert (tmp_path / "data/rl/rl.parquet").read_bytes() == before
