"""The local RL / distillation loop: every method runs, logs, checkpoints and resumes exactly."""

from __future__ import annotations

import json

import pytest
import torch
from rl_fixtures import rl_config, tiny_rl_setup

from sodctl.config import method_spec
from sodctl.engines.local.rl import train_rl
from sodctl.methods import METHODS

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def paths(tmp_path_factory):
    return tiny_rl_setup(tmp_path_factory.mktemp("rl"))


def _weights(path):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(path).state_dict()


@pytest.mark.parametrize("method", sorted(m for m, s in METHODS.items() if s.stage == "rl"))
def test_every_rl_method_trains_and_logs(paths, tmp_path, method):
    cfg = rl_config(tmp_path, paths, method)
    final = train_rl(cfg, method_spec(cfg), progress=False)
    before, after = _weights(paths["student"]), _weights(final)
    assert any(not torch.equal(before[k], after[k]) for k in before), "the update changed nothing"
    lines = [
        json.loads(x)
        for x in (tmp_path / "runs" / f"{method}-test" / "run" / "metrics.jsonl")
        .read_text()
        .splitlines()
    ]
    assert [x["step"] for x in lines] == [1, 2]
    keys = set(lines[0])
    assert {
        "rollout/reward",
        "rollout/acc",
        "train/loss",
        "train/entropy",
        "perf/step_time_s",
        "perf/peak_mem_gb",
    } <= keys
    if METHODS[method].opd:
        assert {"sod/d_1", "sod/w_mean", "sod/pattern_stable"} <= keys
        samples = (
            (tmp_path / "runs" / f"{method}-test" / "run" / "samples.jsonl")
            .read_text()
            .splitlines()
        )
        assert samples and {"d", "w", "pattern", "correct"} <= set(json.loads(samples[0]))


def test_resume_gives_the_weights_of_an_uninterrupted_run(paths, tmp_path):
    full = train_rl(
        rl_config(tmp_path / "a", paths, "sod", "train.max_steps=4"), METHODS["sod"], progress=False
    )
    cfg_b = rl_config(tmp_path / "b", paths, "sod", "train.max_steps=4", "train.save_every=2")
    # an interrupted run: stop after the checkpoint at step 2 by capping the loop
    import sodctl.engines.local.rl as rl

    class Stop(Exception):
        pass

    real_log = rl.MetricsLogger.log

    def log_then_die(self, step, metrics):
        real_log(self, step, metrics)
        if step == 3:
            raise Stop

    rl.MetricsLogger.log = log_then_die
    try:
        with pytest.raises(Stop):
            train_rl(cfg_b, METHODS["sod"], progress=False)
    finally:
        rl.MetricsLogger.log = real_log
    resumed = train_rl(cfg_b, METHODS["sod"], resume=True, progress=False)
    a, b = _weights(full), _weights(resumed)
    assert all(torch.equal(a[k], b[k]) for k in a)
    steps = [
        json.loads(x)["step"]
        for x in (tmp_path / "b" / "runs" / "sod-test" / "run" / "metrics.jsonl")
        .read_text()
        .splitlines()
    ]
    assert steps == [1, 2, 3, 4]


def test_a_finished_stage_is_not_run_again(paths, tmp_path):
    from sodctl.errors import SodctlUsageError

    cfg = rl_config(tmp_path, paths, "grpo", "train.max_steps=1")
    train_rl(cfg, METHODS["grpo"], progress=False)
    with pytest.raises(SodctlUsageError, match="already finished"):
        train_rl(cfg, METHODS["grpo"], progress=False)


def test_rl_rows_are_wrapped_as_released_and_long_prompts_dropped_and_counted(paths, tmp_path):
    import pandas as pd
    from transformers import AutoTokenizer

    from sodctl.data.loaders import load_prompts
    from sodctl.engines.local.rl import filter_overlong, load_rl_problems

    # a mixed file whose first row is DAPO: the released loader gives *every* row the
    # units suffix only (one branch per file), code rows included
    rows = [
        {"data_source": "math_dapo", "prompt": [{"role": "user", "content": "1+1?"}],
         "reward_model": {"ground_truth": "2"}, "extra_info": {"index": 0}},
        {"data_source": "train-code-taco-easy", "prompt": [{"role": "user", "content": "Sum stdin." * 30}],
         "reward_model": {"ground_truth": '{"inputs": ["1 2\\n"], "outputs": ["3\\n"]}'}, "extra_info": {"index": 0}},
        {"data_source": "gpqa_diamond", "prompt": [{"role": "user", "content": "Pick."}],
         "reward_model": {"ground_truth": "\\boxed{C}"}, "extra_info": {"index": 0}},
    ]  # fmt: skip
    path = tmp_path / "mixed.parquet"
    pd.DataFrame(rows).to_parquet(path)
    cfg = rl_config(tmp_path, {**paths, "rl": str(path)}, "grpo", "data.prompt_wrapping=released")
    data = load_rl_problems(cfg)
    units = load_prompts(cfg.data.prompts_file)["units_note"]
    assert data.wrapping == {"units": 3}
    assert [p.messages[0]["content"] for p in data.problems] == [
        r["prompt"][0]["content"] + units for r in rows
    ]
    # routing by data_source as the released reward: 'code' -> code; a boxed letter -> letter
    assert [p.kind for p in data.problems] == ["math", "code", "mcq"]
    assert data.problems[2].ground_truth == "C"
    per_source = rl_config(tmp_path, {**paths, "rl": str(path)}, "grpo", "data.prompt_wrapping=per-source")
    assert load_rl_problems(per_source).wrapping == {"units": 1, "skywork": 1, "gpqa": 1}
    # the filter: the long code prompt goes, and the count is kept for the run's data.json
    tok = AutoTokenizer.from_pretrained(paths["student"])
    kept = filter_overlong(data, tok, 64)
    assert len(kept.problems) == 2 and kept.dropped == [1]
    assert kept.report()["filtered_overlong_prompts"] == 1 and kept.report()["rows"] == 3
    with pytest.raises(Exception, match="every prompt is longer"):
        filter_overlong(data, tok, 1)
