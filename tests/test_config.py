"""The configuration system: schema defaults, shipped experiment files, merge order, errors."""

from __future__ import annotations

import functools
import math
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from sodctl.config import (
    PRESETS,
    SodctlConfig,
    available_experiments,
    available_presets,
    experiments_dir,
    final_model_dir,
    load_config,
    method_spec,
    parse_override,
    resolved_dict,
    to_yaml,
)
from sodctl.config.loader import describe, header_comment
from sodctl.errors import SodctlUsageError
from sodctl.methods import METHODS, get_method

pytestmark = pytest.mark.unit

EXPERIMENTS = available_experiments()

# REFERENCE.md §4-§8: (key, value) pairs the paper preset must resolve to.
PAPER_VALUES = {
    "train.lr": 1e-6,
    "train.train_batch_prompts": 64,
    "train.ppo_mini_batch_prompts": 16,
    "train.ppo_epochs": 1,
    "train.epochs": 1,
    "train.clip_low": 0.2,
    "train.clip_high": 0.28,
    "train.dual_clip": 3.0,
    "train.loss_agg": "token-mean",
    "train.grad_clip": 1.0,
    "train.kl_coef": 0.0,
    "train.entropy_coef": 0.0,
    "rollout.n": 16,
    "rollout.temperature": 1.0,
    "rollout.top_p": 1.0,
    "rollout.max_turns": 16,
    "data.max_prompt_tokens": 2560,
    "data.max_response_tokens": 20480,
    "sod.eps": 1e-6,
    "sod.delta": 0.2,
    "sod.opd_coef": 1.0,
    "sod.opd_form": "advantage",
    "sod.heuristic_gamma": 0.9,
    "reward.grader": "strict",
    "reward.correct": 1.0,
    "reward.incorrect": -1.0,
    "reward.tool_shaping": "released",
    "reward.code_compare": "released",
    "reward.code_unescape": False,
    "reward.code_timeout_s": 30,
    "reward.code_memory_mb": 1024,
    "tool.max_parallel_calls": 1,
    "tool.on_invalid_call": "released",
    "tool.observations": "released",
    "tool.schema": "released",
    "rollout.turn_layout": "verl",
    "data.prompt_wrapping": "released",
    "eval.max_prompt_tokens": 4096,
    "eval.lcb_examples": "released",
    "train.log_ratio_clamp": 20.0,
    "train.max_steps_by_size": {"0.6b": 120, "1.7b": 150},
    "reward.overlong_penalty": True,
    "reward.overlong_buffer": 1024,
    "tool.compile_timeout_s": 60,
    "tool.run_timeout_s": 60,
    "tool.memory_mb": 2048,
    "tool.max_observation_chars": 256,
    "tool.print_mode": "paper",
    "sft.lr": 5e-5,
    "sft.epochs": 5,
    "sft.batch_size": 128,
    "sft.max_length": 32768,
    "sft.truncation": "right",
    "eval.benches": ["aime24", "aime25", "gpqa", "lcb"],
    "eval.k": 32,
    "eval.temperature": 1.0,
    "eval.top_p": 0.6,
    "eval.max_turns": 16,
    "eval.max_response_tokens": 20480,
    "teacher.size": "4b",
    "zoo[0.6b]": "Qwen/Qwen3-0.6B",
    "zoo[1.7b]": "Qwen/Qwen3-1.7B",
    "zoo[4b]": "Qwen/Qwen3-4B",
    "zoo[14b]": "Qwen/Qwen3-14B",
}


@functools.cache
def _load(experiment: str, preset: str | None = None, overrides: tuple[str, ...] = ()):
    """Shipped configs, loaded once per test session (the tests never mutate them)."""
    return load_config(experiment, preset=preset, overrides=overrides)


def _get(cfg, key: str):
    if key.startswith("zoo["):
        return cfg.zoo[key[4:-1]]
    value = OmegaConf.select(cfg, key)
    return OmegaConf.to_container(value) if OmegaConf.is_config(value) else value


def _flat_keys(d: dict, prefix: str = "") -> set[str]:
    out = set()
    for k, v in d.items():
        key = f"zoo[{k}]" if prefix == "zoo." else f"{prefix}{k}"
        leaf = not isinstance(v, dict) or key == "train.max_steps_by_size"  # a value, not a section
        out |= {key} if leaf else _flat_keys(v, key + ".")
    return out


def _usage_error(**kwargs) -> str:
    with pytest.raises(SodctlUsageError) as info:
        load_config(**kwargs)
    message = str(info.value)
    assert "\n" not in message
    return message


# --- shipped files -------------------------------------------------------------------------


def test_the_paper_matrix_is_shipped():
    expected = {"teacher/sft-4b", "teacher/grpo-4b", "table5/naive-opd"}
    for size in ("0.6b", "1.7b"):
        for m in ("vanilla", "sft", "grpo", "opd-gated", "opsd-gt", "opsd-hint", "sod"):
            expected.add(f"table1/{m}-{size}")
    for a in (
        "uniform-weighting",
        "heuristic-weighting",
        "mask-after-wrong",
        "no-clipping",
        "no-grpo",
        "no-stepwise-opd",
    ):
        expected.add(f"table2/{a}")
    assert expected <= set(EXPERIMENTS)
    assert set(available_presets()) == set(PRESETS)


@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_shipped_experiment_loads_under_every_preset(experiment, preset):
    cfg = _load(experiment, preset)
    assert cfg.experiment == experiment
    assert cfg.preset == preset
    assert cfg.model.path and cfg.teacher.path  # resolved: never null after loading
    assert "${" not in to_yaml(cfg)


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_experiment_headers_say_what_needs_and_how_to_run(experiment):
    header = header_comment(experiments_dir() / f"{experiment}.yaml")
    assert header and header[0], "first line: what it reproduces"
    assert any(line.startswith("Needs:") for line in header)
    run = [line for line in header if line.startswith("Run:")]
    assert run and "sodctl " in run[0] and experiment in run[0]


@pytest.mark.parametrize("preset", PRESETS)
def test_presets_have_a_description(preset):
    assert describe(experiments_dir() / "presets" / f"{preset}.yaml")


def test_experiment_methods_match_their_names():
    for name in EXPERIMENTS:
        folder, stem = name.split("/")
        if folder == "table1":
            stem = stem.rsplit("-", 1)[0]  # opsd-gt-1.7b -> opsd-gt
        elif folder == "teacher":
            stem = stem.split("-")[0]  # grpo-4b -> grpo
        assert _load(name, "paper").method.name == get_method(stem).name, name


# --- the paper preset ----------------------------------------------------------------------


@pytest.mark.parametrize(("key", "value"), sorted(PAPER_VALUES.items()))
def test_paper_preset_matches_reference(key, value):
    assert _get(_load("table1/sod-1.7b", "paper"), key) == value


def test_paper_preset_spells_out_every_reference_value():
    body = OmegaConf.to_container(OmegaConf.load(experiments_dir() / "presets" / "paper.yaml"))
    assert set(PAPER_VALUES) <= _flat_keys(body)


def test_schema_defaults_are_the_paper():
    defaults = OmegaConf.structured(SodctlConfig)
    for key, value in PAPER_VALUES.items():
        assert _get(defaults, key) == value, key
    assert load_config().preset == "paper"


def test_teacher_recipe_trains_two_epochs_from_its_sft_checkpoint():
    cfg = _load("teacher/grpo-4b", "paper")
    assert cfg.train.epochs == 2 and cfg.model.size == "4b" and cfg.method.name == "grpo"
    assert Path(cfg.model.path) == final_model_dir(_load("teacher/sft-4b", "paper"))


@pytest.mark.parametrize("preset", PRESETS)
def test_distillation_experiments_point_at_the_trained_teacher_and_sft_student(preset):
    teacher_dir = final_model_dir(_load("teacher/grpo-4b", preset))
    for name in EXPERIMENTS:
        cfg = _load(name, preset)
        if cfg.method.stage != "rl" or name.startswith("teacher/"):
            continue
        sft_dir = final_model_dir(_load(f"table1/sft-{cfg.model.size}", preset))
        assert Path(cfg.model.path) == sft_dir, name
        if method_spec(cfg).needs_teacher_model:
            assert Path(cfg.teacher.path) == teacher_dir, name


def test_tiny_and_smoke_presets_are_small():
    for preset in ("tiny", "smoke"):
        cfg = _load("table1/sod-1.7b", preset)
        assert cfg.rollout.n <= 4 and cfg.train.max_steps and cfg.train.max_steps <= 100
        assert cfg.data.max_response_tokens <= 512
        assert list(cfg.eval.benches) == ["aime24", "aime25", "gpqa", "lcb"]  # the tiny world's
        assert cfg.zoo["1.7b"] == f"runs/{preset}/world/models/1.7b"
        assert cfg.engine.device == "cpu"


# --- composition and precedence --------------------------------------------------------------


@pytest.fixture
def exp_file(tmp_path: Path) -> Path:
    path = tmp_path / "mine.yaml"
    path.write_text(
        "# a test experiment\npreset: tiny\nmethod: opd\nmodel: 0.6b\n"
        "train:\n  lr: 3.0e-4\nrollout:\n  n: 3\n"
    )
    return path


def test_file_beats_preset_and_selects_preset_method_model(exp_file):
    cfg = load_config(str(exp_file))
    assert cfg.experiment == "mine"
    tiny = OmegaConf.load(experiments_dir() / "presets" / "tiny.yaml")
    assert cfg.preset == "tiny"
    assert cfg.train.train_batch_prompts == tiny.train.train_batch_prompts  # from the tiny preset
    assert cfg.train.lr == 3e-4 and cfg.rollout.n == 3  # the file beats the preset
    assert cfg.method.name == "opd" and cfg.method.weighting == "uniform"
    assert cfg.model.size == "0.6b" and cfg.model.path == "runs/tiny/world/models/0.6b"


def test_explicit_arguments_beat_the_file(exp_file):
    cfg = load_config(str(exp_file), preset="smoke", model="1.7b", method="sod")
    assert cfg.preset == "smoke" and cfg.train.max_steps == 2
    assert cfg.model.size == "1.7b" and cfg.method.name == "sod" and cfg.method.weighting == "sod"
    assert cfg.train.lr == 3e-4  # the file body still applies on top of the new preset


def test_overrides_beat_everything(exp_file):
    cfg = load_config(
        str(exp_file),
        preset="smoke",
        model="1.7b",
        overrides=["train.lr=1e-5", "rollout.n=5", "preset=paper", "model=0.6b", "method=grpo"],
    )
    assert cfg.train.lr == 1e-5 and isinstance(cfg.train.lr, float)
    assert cfg.rollout.n == 5 and cfg.preset == "paper" and cfg.model.size == "0.6b"
    assert cfg.method.name == "grpo" and not cfg.method.opd


def test_model_argument_may_be_a_path():
    cfg = load_config(model="/models/my-student")
    assert cfg.model.path == "/models/my-student" and cfg.model.size == "1.7b"


def test_experiment_path_without_suffix_and_name_with_suffix(exp_file):
    assert load_config(str(exp_file.with_suffix(""))).experiment == "mine"
    assert load_config("table1/sod-1.7b.yaml").experiment == "table1/sod-1.7b"
    assert load_config("experiments/table1/sod-1.7b.yaml").experiment == "table1/sod-1.7b"


def test_names_not_shipped_are_looked_up_in_the_working_directory(tmp_path, monkeypatch):
    (tmp_path / "experiments" / "mine").mkdir(parents=True)
    (tmp_path / "experiments" / "mine" / "fast.yaml").write_text("method: grpo\nrollout:\n  n: 2\n")
    monkeypatch.chdir(tmp_path)
    cfg = load_config("mine/fast")
    assert cfg.experiment == "mine/fast" and cfg.rollout.n == 2 and cfg.method.name == "grpo"
    assert load_config("table1/sod-1.7b").experiment == "table1/sod-1.7b"  # shipped still found


def test_default_experiment_name():
    assert load_config(method="no-grpo", model="0.6b").experiment == "no-grpo-0.6b"


@pytest.mark.parametrize("name", sorted(METHODS))
def test_method_switches_come_from_the_registry(name):
    cfg = load_config(method=name)
    spec = METHODS[name]
    assert method_spec(cfg) == spec
    for switch in ("stage", "grpo", "opd", "weighting", "clip_weights", "teacher", "privileged"):
        assert cfg.method[switch] == getattr(spec, switch)


def test_aliases_resolve_to_the_canonical_method():
    assert load_config(method="uniform-weighting").method.name == "opd"
    assert load_config(method="no-stepwise-opd").method.name == "grpo"


def test_a_single_switch_may_be_overridden():
    cfg = load_config("table1/sod-1.7b", overrides=["method.weighting=uniform"])
    spec = method_spec(cfg)
    assert spec.name == "sod" and spec.weighting == "uniform" and spec.ablation_id is None


def test_file_may_override_a_switch(tmp_path):
    path = tmp_path / "x.yaml"
    path.write_text("method:\n  name: sod\n  clip_weights: false\n")
    cfg = load_config(str(path))
    assert cfg.method.name == "sod" and cfg.method.clip_weights is False
    assert load_config(str(path), method="opd").method.clip_weights is True  # another method: exact


def test_zoo_entries_take_dot_or_bracket_keys():
    cfg = load_config(overrides=["zoo.0.6b=/a", "zoo[1.7b]=/b"])
    assert cfg.zoo["0.6b"] == "/a" and cfg.model.path == "/b"


def test_interpolations_are_resolved():
    cfg = load_config("table1/sod-1.7b", overrides=["output_dir=/scratch"])
    assert cfg.teacher.path == "/scratch/teacher/grpo-4b/final"


def test_no_clipping_accepts_infinite_delta():
    assert math.isinf(load_config(overrides=["sod.delta=.inf"]).sod.delta)


def test_string_keys_keep_what_was_typed():
    cfg = load_config(overrides=["logging.run_name=yes", "model.path=1.5"])
    assert cfg.logging.run_name == "yes" and cfg.model.path == "1.5"


def test_resolved_yaml_round_trips(tmp_path):
    cfg = load_config("table1/opsd-hint-0.6b", preset="tiny", overrides=["seed=7"])
    path = tmp_path / "config.yaml"
    path.write_text(to_yaml(cfg))
    again = load_config(str(path))
    assert resolved_dict(again) == resolved_dict(cfg)


def test_parse_override():
    assert parse_override("a.b=[1, 2]") == ("a.b", [1, 2])
    assert parse_override("a=") == ("a", None)
    assert parse_override("a=x=y") == ("a", "x=y")


# --- errors ---------------------------------------------------------------------------------


def test_unknown_key_suggests_the_closest():
    msg = _usage_error(overrides=["train.lrr=1e-5"])
    assert "unknown config key 'train.lrr' (did you mean 'train.lr'?)" in msg
    assert "did you mean 'train.lr'" in _usage_error(overrides=["trian.lr=1"])
    assert "unknown config key 'train.lr.x'" in _usage_error(overrides=["train.lr.x=1"])


def test_unknown_key_in_a_file_names_the_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("rollout:\n  nn: 3\n")
    msg = _usage_error(experiment=str(path))
    assert "'rollout.nn'" in msg and "did you mean 'rollout.n'" in msg and str(path) in msg


def test_wrong_type():
    assert "config key 'train.lr' expects a float, got 'abc'" in _usage_error(
        overrides=["train.lr=abc"]
    )
    assert "expects an integer, got 1.5" in _usage_error(overrides=["rollout.n=1.5"])
    assert "expects an integer or null" in _usage_error(overrides=["train.max_steps=x"])
    assert "expects a list of strings" in _usage_error(overrides=["eval.benches=aime24"])
    assert "is a section" in _usage_error(overrides=["train=3"])


def test_bad_literal_names_the_allowed_values():
    msg = _usage_error(overrides=["model.size=3b"])
    assert "'model.size'" in msg and "'0.6b', '1.7b', '4b', '14b'" in msg and "'3b'" in msg
    msg = _usage_error(overrides=["logging.wandb_mode=off"])
    assert "'offline', 'online', 'disabled'" in msg and "got 'off'" in msg


def test_missing_experiment_names_the_path_and_lists_choices():
    msg = _usage_error(experiment="table1/sod-3b")
    assert "experiments/table1/sod-3b.yaml" in msg and "did you mean 'table1/sod-1.7b'" in msg
    assert "table1/vanilla-0.6b" in msg
    assert "no such experiment file: /nonexistent/x.yaml" in _usage_error(
        experiment="/nonexistent/x.yaml"
    )


def test_unknown_preset_lists_presets():
    msg = _usage_error(preset="huge")
    assert "unknown preset 'huge'" in msg and "paper, smoke, tiny" in msg


def test_unknown_method_uses_the_registry_message():
    msg = _usage_error(method="sodd")
    assert "unknown method 'sodd'" in msg and "opsd-hint" in msg


def test_malformed_override():
    for bad in ("train.lr", "=3"):
        assert "malformed override" in _usage_error(overrides=[bad])
    assert "not valid YAML" in _usage_error(overrides=["train.lr=[1"])


def test_invalid_method_combination():
    msg = _usage_error(overrides=["method.weighting=none"])
    assert "invalid method switches" in msg and "inspect methods" in msg
    assert "invalid method switches" in _usage_error(
        method="grpo", overrides=["method.teacher=external"]
    )


def test_ranges_and_cross_field_rules():
    assert "'train.lr' must be a positive number" in _usage_error(overrides=["train.lr=-1"])
    assert "'rollout.top_p' must be in (0, 1]" in _usage_error(overrides=["rollout.top_p=0"])
    assert "must divide" in _usage_error(overrides=["train.ppo_mini_batch_prompts=5"])
    assert "tool.sandbox_url" in _usage_error(overrides=["tool.backend=sandbox-fusion"])
    assert "pattern_low" in _usage_error(overrides=["sod.pattern_low=0.9"])
    assert "unknown benchmark 'aime23'" in _usage_error(overrides=["eval.benches=[aime23]"])
    msg = _usage_error(overrides=["engine.cpu_capability=avx3"])
    assert "'engine.cpu_capability' must be one of default, avx2, avx512" in msg
    assert load_config(preset="tiny").engine.cpu_capability == "avx2"
    load_config(
        overrides=["tool.backend=sandbox-fusion", "tool.sandbox_url=http://h:8080/run_code"]
    )


def test_unknown_interpolation(tmp_path):
    assert "'model.path'" in _usage_error(overrides=["model.path=${nope}"])


def test_bad_yaml_file(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("train: [1,\n")
    assert "not valid YAML" in _usage_error(experiment=str(path))
    path.write_text("- a list\n")
    assert "must be a YAML mapping" in _usage_error(experiment=str(path))
    path.write_text("model: 4\n")
    assert "'model' must be a size" in _usage_error(experiment=str(path))
    path.write_text("method:\n  grpo: false\n")
    assert "'method' must be a method name" in _usage_error(experiment=str(path))


def test_error_classes():
    assert SodctlUsageError("two\nlines").message == "two lines"


# --- choices: enforced on omegaconf 2.3 (verl's pin) and 2.4 alike -----------------------


def test_choices_are_enforced_and_behave_as_strings():
    import json
    import pickle

    import omegaconf
    import yaml
    from omegaconf.errors import ValidationError

    cfg = load_config("table1/sod-1.7b", preset="tiny")
    assert cfg.preset == "tiny" and f"{cfg.model.size}" == "1.7b" and str(cfg.preset) == "tiny"
    assert json.dumps(cfg.tool.print_mode) == '"paper"'
    assert {"paper": 1}[cfg.tool.print_mode] == 1  # hashes as its string
    assert pickle.loads(pickle.dumps(cfg.reward.tool_shaping)) == "released"
    with pytest.raises(ValidationError):  # assignment after loading is checked too
        OmegaConf.update(cfg, "tool.print_mode", "loud")
    OmegaConf.update(cfg, "tool.print_mode", "repl")
    assert cfg.tool.print_mode == "repl"
    plain = resolved_dict(cfg)
    assert type(plain["tool"]["print_mode"]) is str and type(plain["model"]["size"]) is str
    yaml.safe_dump(plain)  # plain containers: no enum types left
    again = OmegaConf.merge(OmegaConf.structured(SodctlConfig), OmegaConf.create(to_yaml(cfg)))
    assert again.tool.print_mode == "repl" and again.model.size == "1.7b"
    assert omegaconf.__version__.split(".")[:2] in (["2", "3"], ["2", "4"])


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("preset=huge", "unknown preset 'huge'"),
        (
            "tool.print_mode=loud",
            "config key 'tool.print_mode' expects one of 'paper', 'repl', got 'loud'",
        ),
        ("reward.tool_shaping=true", "expects one of 'released', 'num-turns', 'off', got 'true'"),
        ("model.size=3b", "expects one of '0.6b', '1.7b', '4b', '14b', got '3b'"),
        ("train.max_steps_by_size.3b=5", "unknown config key 'train.max_steps_by_size.3b'"),
    ],
)
def test_bad_choices_are_one_line_errors(override, expected):
    message = _usage_error(overrides=[override])
    assert expected in message and "\n" not in message


def test_rl_steps_follow_table4_by_student_size_unless_max_steps_is_set():
    from sodctl.config.schema import rl_max_steps

    # B15: the paper preset trains 120 (0.6B) / 150 (1.7B) steps, Table 4's counts
    assert rl_max_steps(_load("table1/sod-0.6b", "paper")) == 120
    assert rl_max_steps(_load("table1/sod-1.7b", "paper")) == 150
    assert rl_max_steps(_load("teacher/grpo-4b", "paper")) is None  # the teacher: 2 epochs
    assert rl_max_steps(load_config("table1/sod-1.7b", overrides=["train.max_steps=7"])) == 7
    assert rl_max_steps(_load("table1/sod-1.7b", "tiny")) == 24  # the tiny preset's own
    # B14: the paper's SFT learning rate, the released script's default as the option
    assert _load("table1/sft-1.7b", "paper").sft.lr == 5e-5


def test_sft_steps_by_size_apply_only_when_max_steps_is_null():
    from sodctl.config.schema import max_steps_of

    # the tiny preset's own: past every seed's copying transition
    assert max_steps_of(_load("teacher/sft-4b", "tiny"), "sft") == 1200
    assert max_steps_of(_load("table1/sft-0.6b", "tiny"), "sft") == 1000
    assert max_steps_of(_load("table1/sft-1.7b", "tiny"), "sft") == 1000
    by_size = ("sft.max_steps_by_size[4b]=600",)
    pinned = ("sft.max_steps=400", *by_size)
    assert max_steps_of(_load("teacher/sft-4b", "tiny", pinned), "sft") == 400  # max_steps wins
    assert max_steps_of(_load("teacher/sft-4b", "tiny", by_size), "sft") == 600
    assert max_steps_of(_load("teacher/sft-4b", "paper"), "sft") is None  # the paper: 5 epochs
    other = _load("table1/sft-1.7b", "paper", by_size)
    assert max_steps_of(other, "sft") is None  # another size's entry: the epochs
    message = _usage_error(overrides=["sft.max_steps_by_size[4b]=0"])
    assert "'sft.max_steps_by_size[4b]' must map a size" in message and "\n" not in message


def test_a_size_reads_its_own_sft_set_where_the_preset_gives_one():
    from sodctl.config.schema import sft_path_of
    from sodctl.data.corpora import sft_file

    teacher, student = _load("teacher/sft-4b", "tiny"), _load("table1/sft-1.7b", "tiny")
    root = teacher.data.out_dir
    assert sft_path_of(teacher) == f"{root}/sft-teacher.parquet" == str(sft_file(teacher))
    assert sft_path_of(student) == f"{root}/sft.parquet" == str(sft_file(student))
    assert sft_path_of(_load("teacher/sft-4b", "paper")) is None  # the paper: the hub's 3K set
    mine = _load("teacher/sft-4b", "paper", ("data.sft_path=/x/sft.parquet",))
    assert sft_path_of(mine) == "/x/sft.parquet"  # no entry for the size: data.sft_path
    message = _usage_error(overrides=["data.sft_path_by_size[4b]=''"])
    assert "'data.sft_path_by_size[4b]' must map a size" in message and "\n" not in message


def test_teacher_dir_moves_the_teacher_recipe_and_what_its_students_read(tmp_path):
    shared, own = tmp_path / "shared", tmp_path / "seed-1"
    overrides = (f"output_dir={own}", f"teacher_dir={shared}")
    sft, grpo = (
        _load("teacher/sft-4b", "tiny", overrides),
        _load("teacher/grpo-4b", "tiny", overrides),
    )
    assert final_model_dir(sft) == shared / "teacher" / "sft-4b" / "final"
    assert Path(grpo.model.path) == final_model_dir(sft)
    sod = _load("table1/sod-1.7b", "tiny", overrides)
    assert Path(sod.teacher.path) == final_model_dir(grpo)
    assert final_model_dir(sod) == own / "table1" / "sod-1.7b" / "final"  # students stay per seed
    assert Path(sod.model.path) == own / "table1" / "sft-1.7b" / "final"
    # by default the teacher lives with everything else
    plain = _load("teacher/grpo-4b", "tiny", (f"output_dir={own}",))
    assert final_model_dir(plain) == own / "teacher" / "grpo-4b" / "final"
