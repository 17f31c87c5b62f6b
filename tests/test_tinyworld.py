"""The tiny world (``sodctl data tiny``): schemas through the real loaders, the expert's
trajectories through the real tool and grader, determinism, disjoint splits, budgets."""

from __future__ import annotations

import json
import random
import re
import time
from pathlib import Path

import pandas as pd
import pytest

from sodctl.cli import main
from sodctl.config import load_config
from sodctl.data.loaders import load_benchmark, load_prompts
from sodctl.data.tinyworld import FAMILIES, WORLD_SIZES, build_tinyworld, draw_problems
from sodctl.data.tinyworld.build import (
    MODEL_SLOTS,
    TEACHER_FAULT_RETRY_FRACTION,
    TOKENIZER_VOCAB,
    rl_rows,
    sft_privileged,
    sft_variants,
    split_counts,
)
from sodctl.data.tinyworld.expert import opening_line, privileged_prompt
from sodctl.data.tinyworld.problems import BENCH_OF, as_benchmark_problem
from sodctl.errors import SodctlUsageError
from sodctl.models.tiny import CHARS, CHAT_TEMPLATE, TINY_SPECS, build_model, build_tokenizer
from sodctl.rewards import grade, parse_tests
from sodctl.rollout.agent import chat_prompt_ids
from sodctl.tools import CODE_INTERPRETER_SCHEMA, CodeInterpreter, get_executor

pytestmark = pytest.mark.integration

PROMPTS = "tiny_prompts.yaml"
BENCHES = ("aime24", "aime25", "gpqa", "lcb")
SMOKE_COUNTS = split_counts(WORLD_SIZES["smoke"])


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> tuple[Path, float]:
    """The smoke world, built by the real CLI with a relative --out, and how long it took."""
    root = tmp_path_factory.mktemp("tinyworld")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        t0 = time.monotonic()
        rc = main(["data", "tiny", "--preset", "smoke", "--out", "tmp"])
        seconds = time.monotonic() - t0
    assert rc == 0
    return root / "tmp", seconds


@pytest.fixture(scope="module")
def tiny_world(tmp_path_factory) -> Path:
    """The full tiny world (~1.5 min on 2 cores): its budgets are checked with its own tokenizer."""
    out = tmp_path_factory.mktemp("tiny") / "world"
    build_tinyworld(out, preset="tiny")
    return out


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def _plain(messages) -> list[dict]:
    """A parquet message list as chat-template input (no null keys)."""
    out = []
    for m in messages:
        m = {k: v for k, v in m.items() if v is not None}
        if "tool_calls" in m:
            m["tool_calls"] = [dict(c) for c in m["tool_calls"]]
        out.append(m)
    return out


def _smoke_tool(fault_rate: float = 0.0) -> CodeInterpreter:
    tool = load_config(preset="smoke").tool
    return CodeInterpreter(
        get_executor("local"),
        timeout_s=tool.run_timeout_s,
        memory_mb=tool.memory_mb,
        print_mode="paper",
        max_observation_chars=tool.max_observation_chars,
        fault_rate=fault_rate,
    )


# --- building ----------------------------------------------------------------------------------


def test_the_cli_builds_the_smoke_world_in_seconds(world, capsys):
    out, seconds = world
    assert seconds < 20
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["preset"] == "smoke" and manifest["seed"] == 0
    assert all((out / rel).exists() for rel in manifest["files"])
    assert manifest["counts"]["eval"] == dict.fromkeys(BENCHES, 4)
    assert manifest["counts"]["rl"] == 8 and manifest["counts"]["sft"] == 8
    assert manifest["counts"]["pretrain"] == 16 and not manifest["counts"]["sft_dropped"]


def test_a_finished_build_is_kept_and_a_different_one_refused(world, capsys):
    out, _ = world
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    assert main(["data", "tiny", "--preset", "smoke", "--out", str(out)]) == 0
    assert "already built" in capsys.readouterr().out
    assert stamps == {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    with pytest.raises(SodctlUsageError, match="built differently.*--force"):
        build_tinyworld(out, preset="tiny")


def test_the_same_seed_gives_identical_files_and_force_rebuilds(world, tmp_path):
    out, _ = world
    again = build_tinyworld(tmp_path / "again", preset="smoke")
    assert again.built and _files(again.out_dir) == _files(out)
    forced = build_tinyworld(tmp_path / "again", preset="smoke", force=True)
    assert forced.built and _files(forced.out_dir) == _files(out)


def test_another_seed_draws_other_problems():
    a, b = draw_problems(0, SMOKE_COUNTS), draw_problems(1, SMOKE_COUNTS)
    assert [p.text for p in a["eval"]["math-a"]] != [p.text for p in b["eval"]["math-a"]]


def test_data_tiny_refuses_the_paper_preset_and_limit(capsys):
    assert main(["data", "tiny", "--preset", "paper"]) == 2
    assert "for --preset tiny or smoke, not 'paper'" in capsys.readouterr().err
    assert main(["data", "tiny", "--limit", "3"]) == 2  # the preset sets the world's size
    assert "No such option: --limit" in capsys.readouterr().err


# --- schemas through the real loaders ----------------------------------------------------------


@pytest.mark.parametrize("bench", BENCHES)
def test_eval_benches_load_through_the_real_loader(world, bench):
    out, _ = world
    problems = load_benchmark(
        bench, data_dir=str(out / "eval"), prompts_file=PROMPTS, lcb_examples="public"
    )
    assert len(problems) == 4
    for p in problems:
        assert "Use the tool" in p.prompt or "with the tool" in p.prompt
        if p.kind == "math":
            assert re.fullmatch(r"-?\d+", p.ground_truth)
        elif p.kind == "mcq":
            assert p.ground_truth in "ABCD" and "(D)" in p.prompt
        else:
            assert len(parse_tests(p.ground_truth)) == 4 and "Example:" in p.prompt


def test_rl_rows_have_the_verl_schema(world):
    out, _ = world
    rl = pd.read_parquet(out / "rl.parquet")
    assert list(rl.columns) == ["data_source", "prompt", "ability", "reward_model", "extra_info"]
    assert sorted(set(rl.data_source)) == [f"tiny-{f}" for f in sorted(FAMILIES)]
    ability = {
        "tiny-math-a": "math",
        "tiny-math-b": "math",
        "tiny-mcq": "science",
        "tiny-code": "code",
    }
    for i, row in enumerate(rl.to_dict(orient="records")):
        assert [dict(m) for m in row["prompt"]] == [
            {"role": "user", "content": row["prompt"][0]["content"]}
        ]
        assert row["ability"] == ability[row["data_source"]]
        assert row["reward_model"]["style"] == "rule" and row["reward_model"]["ground_truth"]
        extra = row["extra_info"]
        assert set(extra) == {"index", "kind", "solution", "hint"} and extra["index"] == i
        assert extra["kind"] in ("math", "mcq", "code") and extra["solution"] and extra["hint"]


def test_rl_prompts_and_ground_truths_are_what_evaluation_shows(world):
    out, _ = world
    prompts = load_prompts(PROMPTS)
    drawn = draw_problems(0, SMOKE_COUNTS)["eval"]
    for family in FAMILIES:
        loaded = load_benchmark(
            BENCH_OF[family],
            data_dir=str(out / "eval"),
            prompts_file=PROMPTS,
            lcb_examples="public",
        )
        rows = rl_rows(drawn[family], prompts)
        assert [r["prompt"][0]["content"] for r in rows] == [p.prompt for p in loaded]
        assert [r["reward_model"]["ground_truth"] for r in rows] == [p.ground_truth for p in loaded]


def test_opsd_context_solves_and_hints_without_the_answer():
    for split in draw_problems(0, split_counts(WORLD_SIZES["tiny"])).values():
        for family in FAMILIES:
            for p in split[family]:
                if p.kind == "code":
                    assert p.program in p.solution and p.program not in p.hint
                else:
                    assert p.solution.endswith(f"The answer is {p.answer}.")
                    assert p.answer not in re.findall(r"-?\d+|\([A-D]\)", p.hint)
                    assert f"({p.answer})" not in p.hint


def test_pretrain_text_is_tool_free_and_holds_no_eval_problem(world):
    out, _ = world
    texts = pd.read_parquet(out / "pretrain.parquet")
    assert list(texts.columns) == ["text"] and len(texts) == 16
    evals = [
        p.text
        for split in [draw_problems(0, SMOKE_COUNTS)["eval"]]
        for f in FAMILIES
        for p in split[f]
    ]
    for text in texts.text:
        assert "<tool_call>" not in text and "<tool_response>" not in text
        assert not any(e in text for e in evals)


# --- the expert's trajectories -----------------------------------------------------------------


def test_sft_trajectories_replay_through_the_tool_and_grade_correct(world):
    out, _ = world
    sft = pd.read_parquet(out / "sft.parquet")
    assert list(sft.columns) == ["messages", "tools"]
    truth = {}
    for family in FAMILIES:
        for p in draw_problems(0, SMOKE_COUNTS)["sft"][family]:
            shown = as_benchmark_problem(p, load_prompts(PROMPTS))
            for privileged in (None, "solution", "hint"):
                truth[privileged_prompt(p, shown.prompt, privileged)] = (shown.ground_truth, p.kind)
    tool = _smoke_tool()
    recovered = two_calls = 0
    for messages, tools in zip(sft.messages, sft.tools):
        assert json.loads(tools) == [CODE_INTERPRETER_SCHEMA]
        msgs = _plain(messages)
        roles = [m["role"] for m in msgs]
        assert roles[0] == "user" and roles[-1] == "assistant" and "tool_calls" not in msgs[-1]
        assert roles[1:-1] == ["assistant", "tool"] * ((len(roles) - 2) // 2)
        calls = [m["tool_calls"] for m in msgs if "tool_calls" in m]
        assert all(len(c) == 1 and c[0]["type"] == "function" for c in calls)
        codes = [c[0]["function"]["arguments"]["code"] for c in calls]
        outcomes = tool.run_many([{"code": code} for code in codes])
        observations = [m["content"] for m in msgs if m["role"] == "tool"]
        assert [o.observation for o in outcomes] == observations
        assert not outcomes[-1].erroneous
        recovered += outcomes[0].erroneous
        two_calls += len(codes) == 2 and not outcomes[0].erroneous
        ground_truth, kind = truth[msgs[0]["content"]]
        assert grade(msgs[-1]["content"], ground_truth, kind=kind).correct
    assert 0.10 <= recovered / len(sft) <= 0.20 and two_calls >= 1


def _rows(path: Path) -> list[str]:
    return [json.dumps(_plain(m)) for m in pd.read_parquet(path).messages]


def test_the_teacher_set_is_the_students_and_retries_after_an_environment_fault(world):
    """sft-teacher.parquet holds every student trajectory and, on a share of their problems,
    the right call that the environment failed (the injected fault, through a tool that
    always injects it), then the same call, which runs, then the right answer."""
    out, _ = world
    students, teacher = _rows(out / "sft.parquet"), _rows(out / "sft-teacher.parquet")
    fault = _smoke_tool(fault_rate=1.0).run_many([{"code": "1"}])[0].observation
    assert fault.startswith("OpenBLAS") and all(fault not in r for r in students)
    extra = list(teacher)
    for row in students:
        extra.remove(row)  # the students' rows, each once
    n = round(TEACHER_FAULT_RETRY_FRACTION * WORLD_SIZES["smoke"].sft)
    assert len(extra) == n >= 1
    truth = {
        as_benchmark_problem(p, load_prompts(PROMPTS)).prompt: p
        for family in FAMILIES
        for p in draw_problems(0, SMOKE_COUNTS)["sft"][family]
    }
    for row in extra:
        msgs = json.loads(row)
        assert [m["role"] for m in msgs] == ["user", "assistant", "tool", "assistant", "tool",
                                             "assistant"]  # fmt: skip
        first, again = (m["tool_calls"][0]["function"]["arguments"]["code"] for m in msgs[1:5:2])
        assert first == again and msgs[2]["content"] == fault
        assert msgs[4]["content"] == _smoke_tool().run_many([{"code": again}])[0].observation
        p = truth[msgs[0]["content"]]
        shown = as_benchmark_problem(p, load_prompts(PROMPTS))
        assert grade(msgs[-1]["content"], shown.ground_truth, kind=p.kind).correct
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["counts"]["sft_teacher"] == len(teacher) == len(students) + n


def test_an_agent_replaying_the_expert_produces_the_sft_sequences_token_for_token(world):
    """What SFT trains on is exactly what the agent loop (RL, eval) produces."""
    from transformers import AutoTokenizer

    from sodctl.rollout.agent import AgentLoopConfig, run_agent_loop
    from sodctl.rollout.engine import SamplingParams
    from sodctl.rollout.scripted import ScriptedEngine

    out, _ = world
    tok = AutoTokenizer.from_pretrained(out / "models" / "1.7b")
    convs = [_plain(m) for m in pd.read_parquet(out / "sft.parquet").messages]
    head = "<|im_start|>assistant\n"
    turns = {
        c[0]["content"]: [
            tok.apply_chat_template([m], tokenize=False).removeprefix(head).rstrip("\n")
            for m in c
            if m["role"] == "assistant"
        ]
        for c in convs
    }

    def script(prompt: str, turn: int) -> str:
        return next(v[turn] for k, v in turns.items() if k in prompt)

    def replay(layout: str):
        return run_agent_loop(
            ScriptedEngine(tok, script),
            tok,
            _smoke_tool(),
            [chat_prompt_ids(tok, c[:1], [CODE_INTERPRETER_SCHEMA]) for c in convs],
            SamplingParams(max_new_tokens=512),
            AgentLoopConfig(max_turns=4, max_response_tokens=512, turn_layout=layout),
        )

    # the chat-template layout reproduces the SFT sequences exactly; verl's (the released
    # protocol, the default) differs only by the newline after each tool-calling turn
    for c, t, v in zip(convs, replay("chat-template"), replay("verl")):
        text = tok.apply_chat_template(c, tools=[CODE_INTERPRETER_SCHEMA], tokenize=False)
        assert t.stop_reason == "answer" == v.stop_reason
        assert tok.decode(t.prompt_ids + t.response_ids) == text.rstrip("\n")
        closed = "</tool_call><|im_end|>"
        verl_text = text.rstrip("\n").replace(f"{closed}\n", closed)
        assert tok.decode(v.prompt_ids + v.response_ids) == verl_text


def test_the_tiny_preset_gets_15_percent_recoveries():
    variants = sft_variants(WORLD_SIZES["tiny"].sft, random.Random(0))
    recovery = sum(v in ("name-error", "indent-trap") for v in variants) / len(variants)
    assert recovery == pytest.approx(0.15)
    assert variants.count("two-calls") == round(0.05 * WORLD_SIZES["tiny"].sft)


def test_privileged_sft_prompts_are_the_opsd_teachers_and_the_expert_uses_them(tiny_world):
    """15% of the SFT trajectories show the self-teacher's prompt (10% the solution, 5% the
    hint) built exactly as OPSD builds it, and their opening line uses it."""
    from sodctl.engines.local.rl import RLProblem, privileged_messages

    marks = sft_privileged(WORLD_SIZES["tiny"].sft, random.Random(0))
    assert marks.count("solution") == 400 and marks.count("hint") == 200
    prompts = load_prompts(PROMPTS)
    drawn = draw_problems(3, {"x": 2})["x"]
    for family in FAMILIES:
        for p in drawn[family]:
            shown = as_benchmark_problem(p, prompts)
            rl = RLProblem(shown.messages(), shown.ground_truth, p.kind, p.solution, p.hint)
            for kind in ("solution", "hint"):
                teacher = privileged_messages(rl, kind)[-1]["content"]
                assert privileged_prompt(p, shown.prompt, kind) == teacher
            assert privileged_prompt(p, shown.prompt, None) == shown.prompt
            if p.kind != "code":
                assert p.value in opening_line(p, "solution")
    counts = json.loads((tiny_world / "manifest.json").read_text())["counts"]
    assert counts["sft_privileged"] == {"hint": 200, "none": 3400, "solution": 400}
    firsts = [m[0]["content"] for m in pd.read_parquet(tiny_world / "sft.parquet").messages]
    assert sum("A reference solution, for you alone:" in f for f in firsts) == 400
    assert sum("\n\nA hint: " in f for f in firsts) == 200


# --- splits and budgets ------------------------------------------------------------------------


def test_splits_are_disjoint(world):
    out, _ = world
    drawn = draw_problems(0, split_counts(WORLD_SIZES["tiny"]))
    keys = {split: {p.key for f in FAMILIES for p in v[f]} for split, v in drawn.items()}
    splits = list(keys)
    for i, a in enumerate(splits):
        for b in splits[i + 1 :]:
            assert not keys[a] & keys[b], (a, b)
    eval_prompts = {
        p.prompt
        for b in BENCHES
        for p in load_benchmark(
            b, data_dir=str(out / "eval"), prompts_file=PROMPTS, lcb_examples="public"
        )
    }
    rl = {row[0]["content"] for row in pd.read_parquet(out / "rl.parquet").prompt}
    sft = {m[0]["content"] for m in pd.read_parquet(out / "sft.parquet").messages}
    assert not eval_prompts & rl and not eval_prompts & sft and not rl & sft


def _world_tok(root: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(root / "models" / "1.7b")


@pytest.mark.parametrize("preset", ["smoke", "tiny"])
def test_every_prompt_fits_the_preset_budget(preset, world, tiny_world):
    cfg = load_config(preset=preset)
    tok = _world_tok(tiny_world if preset == "tiny" else world[0])
    prompts = load_prompts(cfg.data.prompts_file)
    drawn = draw_problems(0, split_counts(WORLD_SIZES[preset]))
    lengths = [
        len(
            chat_prompt_ids(
                tok, as_benchmark_problem(p, prompts).messages(), [CODE_INTERPRETER_SCHEMA]
            )
        )
        for split in drawn.values()
        for f in FAMILIES
        for p in split[f]
    ]
    assert max(lengths) <= cfg.data.max_prompt_tokens


@pytest.mark.parametrize("corpus", ["sft.parquet", "sft-teacher.parquet"])
def test_sft_trajectories_fit_the_tiny_budgets(tiny_world, corpus):
    cfg = load_config(preset="tiny")
    tok = _world_tok(tiny_world)
    rows = pd.read_parquet(tiny_world / corpus)
    if corpus == "sft-teacher.parquet":
        assert len(rows) == 4000 + round(TEACHER_FAULT_RETRY_FRACTION * 4000)
    for messages, tools in rows.itertuples(index=False):
        msgs, schemas = _plain(messages), json.loads(tools)
        text = tok.apply_chat_template(msgs, tools=schemas, tokenize=False)
        whole = len(tok(text, add_special_tokens=False)["input_ids"])
        prompt = len(chat_prompt_ids(tok, msgs[:1], schemas))
        assert whole <= cfg.sft.max_length and whole - prompt <= cfg.data.max_response_tokens
        assert whole - prompt <= cfg.eval.max_response_tokens


def test_the_tiny_worlds_programs_import_only_what_the_tiny_sandbox_preloads(tiny_world):
    """The tiny preset's sandbox workers leave numpy and sympy out (``tool.preload``): the
    expert's tool calls and code answers import nothing else (so their calls are as quick)."""
    import ast

    preload = set(load_config(preset="tiny").tool.preload)
    assert not preload & {"numpy", "sympy"}
    programs = []
    for corpus in ("sft.parquet", "sft-teacher.parquet"):
        for messages in pd.read_parquet(tiny_world / corpus).messages:
            msgs = _plain(messages)
            programs += [
                c["function"]["arguments"]["code"] for m in msgs for c in m.get("tool_calls", [])
            ]
            programs += re.findall(r"```python\n(.*?)```", msgs[-1]["content"], re.S)
    assert len(programs) > 8000  # every call, and the code problems' answers
    imported = {
        alias.name.split(".")[0]
        for code in programs
        for node in ast.walk(ast.parse(code))
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in (node.names if isinstance(node, ast.Import) else [ast.alias(node.module)])
    }
    assert imported <= preload, imported - preload


def test_the_world_tokenizer_is_learnt_keeps_digits_whole_and_round_trips(world, tiny_world):
    """BPE merges learnt from the world's text shorten its sequences ~4x against one token
    per character; a digit is always one token (numbers are copied digit by digit)."""
    tok, chars = _world_tok(tiny_world), build_tokenizer("compact")
    assert len(tok) == TOKENIZER_VOCAB + len(chars) - len(CHARS) - 1  # + the chat and tag tokens
    convs = [_plain(m) for m in pd.read_parquet(tiny_world / "sft.parquet").messages[:200]]
    texts = [
        tok.apply_chat_template(c, tools=[CODE_INTERPRETER_SCHEMA], tokenize=False) for c in convs
    ]
    bpe = sum(len(tok(t, add_special_tokens=False)["input_ids"]) for t in texts)
    char = sum(len(chars(t, add_special_tokens=False)["input_ids"]) for t in texts)
    assert bpe < char / 3
    for t in texts[:20]:
        ids = tok(t, add_special_tokens=False)["input_ids"]
        assert tok.decode(ids) == t
        pieces = tok.convert_ids_to_tokens(ids)
        assert all(len(p) == 1 for p in pieces if any(ch.isdigit() for ch in p))
    # learning is deterministic, and another world's text gives another vocabulary
    again = build_tokenizer("compact", corpus=texts, vocab_size=300)
    assert again.get_vocab() == build_tokenizer("compact", corpus=texts, vocab_size=300).get_vocab()
    assert _world_tok(world[0]).get_vocab() != tok.get_vocab()


def _sft_and_rollout_ids(tok, messages, tools) -> tuple[list[int], list[int]]:
    """A one-call conversation as SFT tokenizes it and as a verl-layout rollout lays it out
    around the same assistant tokens."""
    from sodctl.engines.local.sft import one_call_layouts, tokenize_conversation

    layouts = one_call_layouts(tok, messages, tools)
    assert layouts is not None
    return tokenize_conversation(tok, messages, tools)[0], layouts["verl"][0]


def test_sft_sees_a_tool_turn_in_the_very_tokens_a_rollout_lays_out(world):
    """The zoo's template puts nothing after <|im_end|>, as verl's observation turn does, so a
    student copies the tool's output at rollout from the layout it was fine-tuned on; Qwen3's
    newline (the default template) would differ in exactly that token."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(world[0] / "models" / "0.6b")
    qwen_layout = build_tokenizer("compact")
    sft = pd.read_parquet(world[0] / "sft.parquet")
    checked = 0
    for messages, tools in zip(sft.messages, sft.tools):
        msgs = _plain(messages)
        if [m["role"] for m in msgs] != ["user", "assistant", "tool", "assistant"]:
            continue
        schemas = json.loads(tools)
        trained, rolled = _sft_and_rollout_ids(tok, msgs, schemas)
        assert trained == rolled
        trained, rolled = _sft_and_rollout_ids(qwen_layout, msgs, schemas)
        newline = qwen_layout.convert_tokens_to_ids("\n")
        assert trained != rolled and len(trained) == len(rolled) + 2  # after the call, at the end
        assert [t for t in trained if t != newline] == [t for t in rolled if t != newline]
        checked += 1
    assert checked >= 5


# --- models and presets ------------------------------------------------------------------------


def test_models_fill_every_zoo_slot_with_the_compact_tool_template(world):
    from transformers import AutoConfig, AutoTokenizer

    out, _ = world
    for size in MODEL_SLOTS:
        config = AutoConfig.from_pretrained(out / "models" / size)
        spec = TINY_SPECS["smoke"][size]
        assert (config.hidden_size, config.num_hidden_layers) == (
            spec.hidden_size,
            spec.num_hidden_layers,
        )
    tok = AutoTokenizer.from_pretrained(out / "models" / "4b")
    ids = chat_prompt_ids(tok, [{"role": "user", "content": "hi"}], [CODE_INTERPRETER_SCHEMA])
    assert "code_interpreter(code)" in tok.decode(ids) and len(ids) < 70


def test_teacher_slots_are_larger_than_the_students():
    tok = build_tokenizer()
    for preset, specs in TINY_SPECS.items():
        n = {
            s: sum(p.numel() for p in build_model(tok, specs[s]).parameters()) for s in MODEL_SLOTS
        }
        assert n["0.6b"] < n["1.7b"] < n["4b"] < n["14b"], preset
    assert build_tokenizer().chat_template == CHAT_TEMPLATE  # the default template is unchanged


@pytest.mark.parametrize("preset", ["smoke", "tiny"])
def test_presets_point_at_the_world(preset):
    cfg = load_config("table1/sod-1.7b", preset=preset)
    root = cfg.data.out_dir
    assert list(cfg.eval.benches) == list(BENCHES) and cfg.eval.data_dir == f"{root}/eval"
    assert cfg.data.sft_path == f"{root}/sft.parquet" and cfg.data.rl_path == f"{root}/rl.parquet"
    teacher_set = f"{root}/sft-teacher.parquet"
    assert dict(cfg.data.sft_path_by_size) == {"4b": teacher_set, "14b": teacher_set}
    assert cfg.data.pretrain_path == f"{root}/pretrain.parquet"
    assert all(cfg.zoo[s] == f"{root}/models/{s}" for s in MODEL_SLOTS)
    assert cfg.data.prompts_file == PROMPTS


def test_a_packaged_prompts_file_resolves_from_any_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert load_prompts(PROMPTS)["version"] == "tiny-2"
    with pytest.raises(SodctlUsageError, match="does not exist"):
        load_prompts("no-such-prompts.yaml")
