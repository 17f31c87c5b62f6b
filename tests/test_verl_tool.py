"""The verl side of the tool loop: ``CodeInterpreterTool``, ``SodToolAgentLoop``, the reward.

The tool runs through verl's interface on sodctl's local executor and must show what
sodctl's ``CodeInterpreter`` shows; the agent loop is verl's real ``ToolAgentLoop``
(continuous-token builder, Hermes parser, ``_call_tool``) driven by a stub server that
replays scripted turns through the tiny tokenizer; the reward is called the way verl's
reward managers call it, through verl's own loader of the custom reward function.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace

import numpy as np
import pytest

pytest.importorskip("verl")

import torch  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402
from verl import DataProto  # noqa: E402
from verl.experimental.agent_loop.agent_loop import DictConfigWrap, ToolListWrap  # noqa: E402
from verl.experimental.reward_loop.reward_manager.dapo import DAPORewardManager  # noqa: E402
from verl.experimental.reward_loop.reward_manager.naive import NaiveRewardManager  # noqa: E402
from verl.tools.tool_registry import initialize_tools_from_config  # noqa: E402
from verl.trainer.ppo.reward import get_custom_reward_fn  # noqa: E402
from verl.utils.tensordict_utils import list_of_dict_to_tensordict  # noqa: E402
from verl.workers.rollout.replica import TokenOutput  # noqa: E402

from sodctl.config.schema import RewardConfig, ToolConfig  # noqa: E402
from sodctl.engines.verl.agent_loop import (  # noqa: E402
    AGENT_NAME,
    FIRST_ERROR_STEP,
    TOOL_CALLS,
    TOOL_ERRORS,
    SodToolAgentLoop,
    rollout_overrides,
    tool_error_fields,
)
from sodctl.engines.verl.reward import SodDAPORewardManager, reward_overrides  # noqa: E402
from sodctl.engines.verl.tool import (  # noqa: E402
    CLASS_NAME,
    CodeInterpreterTool,
    tool_config,
    write_tool_config,
)
from sodctl.models.tiny import build_tokenizer  # noqa: E402
from sodctl.rewards.reward import training_reward  # noqa: E402
from sodctl.tools import CodeInterpreter, get_executor  # noqa: E402
from sodctl.tools.code_interpreter import RELEASED_NOT_FINISHED, tool_schema  # noqa: E402

TOOL_CFG = replace(ToolConfig(), run_timeout_s=1.0)
LONG = "print('x' * 300 + 'y' * 300)"


@pytest.fixture(scope="module")
def tok():
    return build_tokenizer()


@pytest.fixture(scope="module")
def reference() -> CodeInterpreter:
    """sodctl's own tool, same settings, same shared executor."""
    return CodeInterpreter.from_config(TOOL_CFG, get_executor("local"))


def _tool(**config) -> CodeInterpreterTool:
    entry = {"type": "native", "run_timeout_s": TOOL_CFG.run_timeout_s, **config}
    return CodeInterpreterTool(entry, None)


# --- the tool YAML and verl's registry ------------------------------------------------


@pytest.mark.parametrize("schema", ["released", "sodctl"])
def test_yaml_loads_through_verls_registry(tmp_path, schema):
    cfg = OmegaConf.structured(replace(ToolConfig(), schema=schema, print_mode="repl"))
    path = write_tool_config(tmp_path / "tools.yaml", cfg, fault_seed=3)
    (tool,) = initialize_tools_from_config(str(path))
    assert type(tool).__module__ + "." + type(tool).__name__ == CLASS_NAME
    assert tool.name == "code_interpreter"
    # What verl renders into the system prompt (tool_agent_loop.py:119) is sodctl's schema.
    assert tool.tool_schema.model_dump(exclude_unset=True, exclude_none=True) == tool_schema(schema)
    assert tool.interpreter.print_mode == "repl"
    assert tool.config["type"] == "native" and tool.config["fault_seed"] == 3
    assert "max_parallel_calls" not in tool.config  # the agent loop's, not the tool's


def test_tool_config_rejects_unknown_keys_and_defaults_the_schema():
    with pytest.raises(ValueError, match="executor"):
        tool_config({"type": "native", "executor": "local"})
    tool = _tool()  # no tool_schema in the YAML: the config's schema style
    assert tool.tool_schema.model_dump(exclude_unset=True) == tool_schema("released")


# --- execute: the observations are CodeInterpreter's -----------------------------------

CASES = {
    "ok": {"code": "print(6 * 7)"},
    "exception": {"code": "```python\nx = 1\n1 / 0\n```"},
    "timeout": {"code": "import time\ntime.sleep(30)\nprint('late')"},
    "long": {"code": LONG},
    "invalid": {"code": 5},
}


def test_execute_matches_code_interpreter(reference):
    tool = _tool()

    async def call(params):
        instance_id, created = await tool.create(create_kwargs={})
        assert created.text is None
        response, reward, metrics = await tool.execute(instance_id, params, agent_data=None)
        await tool.release(instance_id)
        return response.text, reward, metrics

    async def main():
        ticks = 0

        async def ticker():  # runs while the executor works: the loop is not blocked
            nonlocal ticks
            for _ in range(10):
                await asyncio.sleep(0.02)
                ticks += 1

        results = await asyncio.gather(*(call(p) for p in CASES.values()), ticker())
        return dict(zip(CASES, results)), ticks

    results, ticks = asyncio.run(main())
    assert ticks == 10
    assert tool._instances == set()
    for name, params in CASES.items():
        text, reward, metrics = results[name]
        want = reference.run(params)
        assert text == want.observation, name
        assert metrics["status"] == want.status and metrics["erroneous"] == want.erroneous
        assert reward == 0.0
    assert results["ok"][0] == "42\n" and not results["ok"][2]["erroneous"]
    assert "ZeroDivisionError" in results["exception"][0]
    assert results["timeout"][0] == RELEASED_NOT_FINISHED
    assert len(results["long"][0]) == 256 + len("...(truncated)...")
    assert [results[n][2]["erroneous"] for n in ("exception", "timeout", "invalid")] == [True] * 3


# --- SodToolAgentLoop on verl's real ToolAgentLoop -------------------------------------


def _call(code: str, name: str = "code_interpreter") -> str:
    body = json.dumps({"name": name, "arguments": {"code": code}})
    return f"<tool_call>\n{body}\n</tool_call>"


class ScriptedServer:
    """verl's server manager, ``generate`` only: replays one script per request id."""

    def __init__(self, tok, scripts: dict[str, list[str]]):
        self.tok, self.scripts = tok, {k: list(v) for k, v in scripts.items()}
        self.end = tok.convert_tokens_to_ids("<|im_end|>")
        self.owner: dict[str, str] = {}

    async def generate(self, *, request_id, prompt_ids, sampling_params, **kwargs):
        text = self.tok.decode(prompt_ids)
        if request_id not in self.owner:
            self.owner[request_id] = next(k for k in self.scripts if f"[{k}]" in text)
        turn = self.scripts[self.owner[request_id]].pop(0)
        ids = self.tok(turn, add_special_tokens=False)["input_ids"] + [self.end]
        await asyncio.sleep(0)
        return TokenOutput(token_ids=ids, log_probs=[-0.5] * len(ids))


def _loop_config(max_tool_response_length: int):
    multi_turn = {
        "max_user_turns": None,
        "max_assistant_turns": 8,
        "max_parallel_calls": 1,
        "max_tool_response_length": max_tool_response_length,
        "tool_response_truncate_side": "middle",
        "format": "hermes",
    }
    rollout = {
        "prompt_length": 4096,
        "response_length": 4096,
        "full_determinism": False,
        "multi_turn": multi_turn,
    }
    return OmegaConf.create({"actor_rollout_ref": {"rollout": rollout}, "data": {}})


def _steps(mask: list[int]) -> int:
    return sum(1 for a, b in zip([0, *mask], mask) if b and not a)


def test_agent_loop_records_first_error_step(tok, reference):
    scripts = {
        "ok-then-error": [_call(LONG), _call("1 / 0"), "So \\boxed{2}."],
        "unknown-tool": [_call("print(1)", name="python"), "\\boxed{1}"],
        "no-tools": ["\\boxed{3}"],
        "error-first": [_call("import nosuchmodule"), _call("print(2)"), "\\boxed{2}"],
    }
    server = ScriptedServer(tok, scripts)
    overrides = rollout_overrides(TOOL_CFG, "unused.yaml")
    cfg = _loop_config(overrides["multi_turn.max_tool_response_length"])
    tool = _tool()

    async def main():
        loop = SodToolAgentLoop(
            trainer_config=DictConfigWrap(cfg),
            server_manager=server,
            tokenizer=tok,
            processor=None,
            dataset_cls=None,
            data_config=DictConfigWrap(cfg.data),
            tools=ToolListWrap([tool]),
        )
        runs = [
            loop.run({"temperature": 1.0}, raw_prompt=[{"role": "user", "content": f"[{k}] go"}])
            for k in scripts
        ]
        return dict(zip(scripts, await asyncio.gather(*runs)))

    outputs = asyncio.run(main())
    got = {
        k: {f: o.extra_fields[f] for f in (FIRST_ERROR_STEP, TOOL_CALLS, TOOL_ERRORS)}
        for k, o in outputs.items()
    }
    assert got == {
        "ok-then-error": {FIRST_ERROR_STEP: 1, TOOL_CALLS: 2, TOOL_ERRORS: 1},
        "unknown-tool": {FIRST_ERROR_STEP: 0, TOOL_CALLS: 1, TOOL_ERRORS: 1},
        "no-tools": {FIRST_ERROR_STEP: -1, TOOL_CALLS: 0, TOOL_ERRORS: 0},
        "error-first": {FIRST_ERROR_STEP: 0, TOOL_CALLS: 2, TOOL_ERRORS: 1},
    }
    # Step k (run of 1s in response_mask) is assistant turn k.
    assert [_steps(outputs[k].response_mask) for k in scripts] == [3, 2, 1, 3]
    # verl's own cut (max_tool_response_length) leaves the tool's observation intact.
    response = tok.decode(outputs["ok-then-error"].response_ids)
    assert reference.run({"code": LONG}).observation in response
    assert all(not s for s in server.scripts.values())
    # As a v1 trainer reads them: AgentLoopWorkerTQ stores as_dict() of every output
    # (agent_loop_tq.py:194,224) and the trainer gets the "extra_fields" field back.
    stored = list_of_dict_to_tensordict([o.as_dict() for o in outputs.values()])
    fields = tool_error_fields(stored.pop("extra_fields").tolist())  # trainer_base.py:1909
    assert fields[FIRST_ERROR_STEP] == [1, 0, -1, 0]
    with pytest.raises(KeyError, match="agent_name"):
        tool_error_fields([{"turn_scores": []}])


def test_rollout_overrides():
    overrides = rollout_overrides(TOOL_CFG, "/x/tools.yaml", max_assistant_turns=16)
    assert overrides["agent.default_agent_loop"] == AGENT_NAME
    assert overrides["multi_turn.tool_config_path"] == "/x/tools.yaml"
    assert overrides["multi_turn.max_parallel_calls"] == 1
    assert overrides["multi_turn.max_assistant_turns"] == 16
    with pytest.raises(ValueError, match="on_invalid_call"):
        rollout_overrides(replace(TOOL_CFG, on_invalid_call="end"), "/x/tools.yaml")


# --- the reward, as verl's reward managers call it -------------------------------------


def _reward_config(reward_cfg: RewardConfig, max_resp_len: int):
    cfg = OmegaConf.create({"reward": {}})
    for key, value in reward_overrides(reward_cfg, max_response_tokens=max_resp_len).items():
        OmegaConf.update(cfg, key, value, force_add=True)
    return cfg


def _sample(tok, text: str, ground_truth: str, num_turns: int) -> DataProto:
    end = tok.convert_tokens_to_ids("<|im_end|>")
    responses = torch.tensor([tok(text, add_special_tokens=False)["input_ids"] + [end]])
    prompts = torch.tensor([[1, 2, 3]])
    batch = {
        "prompts": prompts,
        "responses": responses,
        "attention_mask": torch.ones(1, prompts.shape[1] + responses.shape[1], dtype=torch.long),
    }
    non_tensor = {
        "data_source": np.array(["aime"], dtype=object),
        "reward_model": np.array([{"ground_truth": ground_truth}], dtype=object),
        "extra_info": np.array([{"index": 0}], dtype=object),
        "__num_turns__": np.array([num_turns]),
    }
    return DataProto.from_dict(tensors=batch, non_tensors=non_tensor)


def test_reward_hook_as_verl_calls_it(tok):
    text_ok, text_wrong = "so \\boxed{7}", "so \\boxed{8}"
    n_tokens = len(tok(text_wrong, add_special_tokens=False)["input_ids"]) + 1

    async def score(manager_cls, reward_cfg, text, max_resp_len=4096):
        cfg = _reward_config(reward_cfg, max_resp_len)
        manager = manager_cls(cfg, tok, get_custom_reward_fn(cfg))
        return await manager.run_single(_sample(tok, text, "7", num_turns=6))

    shaped = replace(RewardConfig(), tool_shaping="num-turns")
    short = replace(shaped, overlong_buffer=4)  # L_max = n_tokens + 2: 2 tokens into the buffer

    async def main():
        return await asyncio.gather(
            score(SodDAPORewardManager, RewardConfig(), text_ok),
            score(SodDAPORewardManager, RewardConfig(), text_wrong),
            score(SodDAPORewardManager, shaped, text_wrong),
            score(NaiveRewardManager, shaped, text_wrong),
            score(SodDAPORewardManager, short, text_wrong, max_resp_len=n_tokens + 2),
        )

    ok, released, num_turns, naive, overlong = asyncio.run(main())
    assert ok["reward_score"] == 1.0
    assert set(ok["reward_extra_info"]) == {"score", "acc", "pred"}
    assert ok["reward_extra_info"]["acc"] and ok["reward_extra_info"]["pred"] == "7"
    assert released["reward_score"] == pytest.approx(-1.1)  # the released shaping
    # num_turns = 6 reaches the reward: min(-0.6, -1 + 0.1 * (6 - 2) / 2) = -0.8, as naive.
    assert num_turns["reward_score"] == pytest.approx(-0.8)
    assert naive["reward_score"] == pytest.approx(-0.8)
    want = training_reward(
        text_wrong,
        "7",
        kind="math",
        num_turns=6,
        response_tokens=n_tokens,
        max_response_tokens=n_tokens + 2,
        overlong_buffer=short.overlong_buffer,
        tool_shaping="num-turns",
    )
    assert want.overlong_penalty == pytest.approx(-0.5)
    assert overlong["reward_score"] == pytest.approx(want.reward, abs=1e-6)

    # verl's stock dapo manager passes no num_turns: the shaping is skipped (-1.0).
    stock = asyncio.run(score(DAPORewardManager, shaped, text_wrong))
    assert stock["reward_score"] == pytest.approx(-1.0)
