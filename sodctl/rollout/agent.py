"""The multi-turn tool-integrated agent loop (REFERENCE §1, §6).

From chat prompts, a batch of trajectories advances turn by turn: every active
trajectory generates one assistant turn (one batched ``engine.generate`` call),
tool calls are parsed from that turn, all calls of the batch run concurrently
on the tool, and each observation is appended as template tokens. A trajectory
ends when its turn holds no tool call (the answer), when its calls are all
unparseable and ``on_invalid_call="end"`` (the released loop's behaviour), after
``max_turns`` assistant turns, or when the response budget (generated plus
observation tokens) is spent.

The response is built from token ids, never re-tokenised text: generated tokens
keep the ids (and log-probs) the engine sampled, with ``response_mask`` 1;
observation and chat-template tokens are tokenised once and masked 0. So step k
(the k-th run of 1s) is exactly assistant turn k. This one loop serves SFT-data
generation, RL rollouts and evaluation.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from sodctl.rollout.engine import Completion, GenerationEngine, SamplingParams
from sodctl.tools.parsing import InvalidToolCall, invalid_call_observation, parse_tool_calls

StopReason = Literal["answer", "invalid_call", "max_turns", "length"]


class Tool(Protocol):
    """What the loop needs of a tool (``sodctl.tools.code_interpreter.CodeInterpreter``)."""

    name: str

    def run_many(self, arguments: Sequence[dict]) -> list: ...


@dataclass
class ToolCallRecord:
    """One tool call of a trajectory, as the loop saw it."""

    turn: int
    name: str | None
    arguments: dict | None
    observation: str
    status: str
    erroneous: bool
    latency_s: float

    @property
    def code(self) -> str | None:
        code = (self.arguments or {}).get("code")
        return code if isinstance(code, str) else None


@dataclass
class Trajectory:
    """A finished rollout.

    response_ids / response_mask / log_probs are aligned; log_probs are the engine's
    sampling log-probs on generated tokens and 0.0 on masked tokens.
    """

    prompt_ids: list[int]
    response_ids: list[int] = field(default_factory=list)
    response_mask: list[int] = field(default_factory=list)
    log_probs: list[float] = field(default_factory=list)
    tool_calls: list[ToolCallRecord] = field(default_factory=list)
    num_turns: int = 0
    stop_reason: StopReason | None = None
    text: str = ""
    turn_texts: list[str] = field(default_factory=list)

    @property
    def step_spans(self) -> list[tuple[int, int]]:
        """[start, end) of every step (run of generated tokens); step k is assistant turn k."""
        spans, start = [], None
        for t, m in enumerate([*self.response_mask, 0]):
            if m and start is None:
                start = t
            elif not m and start is not None:
                spans.append((start, t))
                start = None
        return spans

    @property
    def first_error_step(self) -> int:
        """Step (= turn) of the first erroneous tool call, -1 if none (for ablations 1.2 / 1.3)."""
        return next((c.turn for c in self.tool_calls if c.erroneous), -1)

    @property
    def n_tool_calls(self) -> int:
        return len(self.tool_calls)

    @property
    def n_tool_errors(self) -> int:
        return sum(c.erroneous for c in self.tool_calls)


@dataclass(frozen=True)
class AgentLoopConfig:
    max_turns: int = 16
    max_response_tokens: int = 20480
    on_invalid_call: Literal["end", "error-observation"] = "end"
    known_tools: tuple[str, ...] = ("code_interpreter",)


def chat_prompt_ids(
    tokenizer, messages: Sequence[dict], tools: Sequence[dict] | None = None
) -> list[int]:
    """Token ids of a chat prompt with the tool schemas rendered by the tokenizer's template."""
    text = tokenizer.apply_chat_template(
        list(messages),
        tools=list(tools) if tools else None,
        add_generation_prompt=True,
        tokenize=False,
    )
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def observation_ids(
    tokenizer, observations: Sequence[str], completion: Completion, eos_ids: Sequence[int]
) -> list[int]:
    """Template tokens that close the assistant turn, carry the observations, and open the next turn."""
    closed = bool(completion.token_ids) and completion.token_ids[-1] in eos_ids
    rendered = tokenizer.apply_chat_template(
        [{"role": "tool", "content": o} for o in observations],
        add_generation_prompt=True,
        tokenize=False,
    )
    # The chat format closes an assistant turn with "<|im_end|>\n"; the engine stopped at
    # the end token (then only the newline is missing) or before it (then both are).
    prefix = "\n" if closed else "<|im_end|>\n"
    return tokenizer(prefix + rendered, add_special_tokens=False)["input_ids"]


def run_agent_loop(
    engine: GenerationEngine,
    tokenizer,
    tool: Tool,
    prompts: Sequence[Sequence[int]],
    params: SamplingParams,
    config: AgentLoopConfig = AgentLoopConfig(),
) -> list[Trajectory]:
    """Roll out every prompt (token ids) to the end; returns one ``Trajectory`` per prompt, in order."""
    trajs = [Trajectory(prompt_ids=list(p)) for p in prompts]
    active = list(range(len(trajs)))
    eos_ids = engine.eos_token_ids
    while active:
        budgets = {i: config.max_response_tokens - len(trajs[i].response_ids) for i in active}
        turn_params = SamplingParams(
            max_new_tokens=min(params.max_new_tokens, max(budgets.values())),
            temperature=params.temperature,
            top_p=params.top_p,
            top_k=params.top_k,
            stop=params.stop,
            seed=None if params.seed is None else params.seed + 7919 * trajs[active[0]].num_turns,
        )
        completions = engine.generate(
            [trajs[i].prompt_ids + trajs[i].response_ids for i in active], turn_params
        )
        by_index = {i: _fit_budget(c, budgets[i], tokenizer) for i, c in zip(active, completions)}

        pending: list[tuple[int, int, dict, str]] = []  # (traj, call slot, arguments, name)
        invalid: dict[int, list[InvalidToolCall]] = {}
        still: list[int] = []
        for i, comp in by_index.items():
            tr = trajs[i]
            tr.response_ids += comp.token_ids
            tr.response_mask += [1] * len(comp.token_ids)
            tr.log_probs += comp.log_probs
            tr.turn_texts.append(comp.text)
            tr.num_turns += 1
            turn = parse_tool_calls(comp.text, known_tools=config.known_tools)
            if len(tr.response_ids) >= config.max_response_tokens or comp.finish_reason == "length":
                tr.stop_reason = "length"
            elif not turn.has_tool_call:
                tr.stop_reason = "answer"
            elif not turn.calls and config.on_invalid_call == "end":
                tr.stop_reason = "invalid_call"
                _record_invalid(tr, turn.invalid)
            elif tr.num_turns >= config.max_turns:
                tr.stop_reason = "max_turns"
            if tr.stop_reason is not None:
                continue
            for call in turn.calls:
                pending.append((i, len(pending), call.arguments, call.name))
            _record_invalid(tr, turn.invalid)  # erroneous calls, whatever the mode
            invalid[i] = turn.invalid if config.on_invalid_call == "error-observation" else []
            still.append(i)

        t0 = time.monotonic()
        outcomes = tool.run_many([args for _, _, args, _ in pending]) if pending else []
        batch_latency = time.monotonic() - t0
        by_traj: dict[int, list[str]] = {i: [] for i in still}
        for (i, _, args, name), out in zip(pending, outcomes):
            tr = trajs[i]
            tr.tool_calls.append(
                ToolCallRecord(
                    turn=tr.num_turns - 1,
                    name=name,
                    arguments=args,
                    observation=out.observation,
                    status=out.status,
                    erroneous=out.erroneous,
                    latency_s=getattr(out, "latency_s", batch_latency),
                )
            )
            by_traj[i].append(out.observation)
        for i in still:
            tr = trajs[i]
            by_traj[i] += [invalid_call_observation(bad) for bad in invalid[i]]
            obs = observation_ids(tokenizer, by_traj[i], by_index[i], eos_ids)
            room = config.max_response_tokens - len(tr.response_ids)
            tr.response_ids += obs[:room]
            tr.response_mask += [0] * min(len(obs), room)
            tr.log_probs += [0.0] * min(len(obs), room)
            if len(obs) >= room:
                tr.stop_reason = "length"
        active = [i for i in still if trajs[i].stop_reason is None]

    for tr in trajs:
        tr.text = tokenizer.decode(tr.response_ids, skip_special_tokens=False)
    return trajs


def _fit_budget(comp: Completion, budget: int, tokenizer) -> Completion:
    """Cut a completion to a trajectory's remaining token budget (the batch shares one cap)."""
    if len(comp.token_ids) <= budget:
        return comp
    ids = comp.token_ids[:budget]
    return Completion(
        ids, comp.log_probs[:budget], tokenizer.decode(ids, skip_special_tokens=False), "length"
    )


def _record_invalid(tr: Trajectory, bad_calls: Sequence[InvalidToolCall]) -> None:
    for bad in bad_calls:
        tr.tool_calls.append(
            ToolCallRecord(
                turn=tr.num_turns - 1,
                name=None,
                arguments=None,
                observation=invalid_call_observation(bad),
                status="invalid_call",
                erroneous=True,
                latency_s=0.0,
            )
        )
