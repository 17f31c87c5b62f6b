"""The multi-turn tool-integrated agent loop (REFERENCE §1, §6).

From chat prompts, a batch of trajectories advances turn by turn: every active
trajectory generates one assistant turn (one batched ``engine.generate`` call),
tool calls are parsed from that turn, the calls of the whole batch run
concurrently on the tool, and the observations are appended as template tokens.
A trajectory ends when its turn holds no tool call (the answer), when none of
its calls can be made (``on_invalid_call``, ``sodctl.tools.parsing.plan_turn``),
after ``max_turns`` assistant turns, or when the response budget (generated
plus observation tokens) is spent.

As verl's tool agent loop runs it (the released protocol, RELEASED-PROTOCOL.md
B2, B10, B11):

- at most ``max_parallel_calls`` calls of a turn run (1 in the released run);
- an observation turn that would reach the budget (``len(response) +
  len(observation) >= max_response_tokens``) is not appended: the trajectory
  ends there (``length``);
- ``turn_layout="verl"``: the observation turn (the tool messages rendered with
  the generation prompt, less what the template renders for an empty
  conversation) follows the generated ``<|im_end|>`` directly;
  ``"chat-template"`` puts the newline that the chat template writes between
  messages there first (the layout of SFT data);
- ``text`` is the response decoded without special tokens, observations
  included: what verl's reward manager hands the graders (so a trailing
  ``<|im_end|>`` does not take 10 of the strict grader's 100 characters);
  ``raw_text`` keeps the special tokens.

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
from sodctl.tools.parsing import InvalidCallPolicy, PlannedCall, parse_tool_calls, plan_turn

StopReason = Literal["answer", "invalid_call", "max_turns", "length"]
TurnLayout = Literal["verl", "chat-template"]


class Tool(Protocol):
    """What the loop needs of a tool (``sodctl.tools.code_interpreter.CodeInterpreter``)."""

    name: str

    def run_many(self, arguments: Sequence[object]) -> list: ...


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
    sampling log-probs on generated tokens and 0.0 on masked tokens. ``text`` is the
    response decoded without special tokens (what the graders read), ``raw_text`` with
    them; ``dropped_calls`` counts calls past ``max_parallel_calls`` (never run).
    """

    prompt_ids: list[int]
    response_ids: list[int] = field(default_factory=list)
    response_mask: list[int] = field(default_factory=list)
    log_probs: list[float] = field(default_factory=list)
    tool_calls: list[ToolCallRecord] = field(default_factory=list)
    num_turns: int = 0
    stop_reason: StopReason | None = None
    text: str = ""
    raw_text: str = ""
    turn_texts: list[str] = field(default_factory=list)
    dropped_calls: int = 0

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
    on_invalid_call: InvalidCallPolicy = "released"
    known_tools: tuple[str, ...] = ("code_interpreter",)
    max_parallel_calls: int | None = 1  # None: every call of a turn
    turn_layout: TurnLayout = "verl"

    @classmethod
    def from_config(cls, cfg, *, max_turns: int, max_response_tokens: int) -> AgentLoopConfig:
        """The loop of a resolved config (``tool`` and ``rollout`` sections); the turn and
        token limits differ between training and evaluation, so they are given."""
        return cls(
            max_turns=max_turns,
            max_response_tokens=max_response_tokens,
            on_invalid_call=str(cfg.tool.on_invalid_call),  # type: ignore[arg-type]
            max_parallel_calls=cfg.tool.max_parallel_calls,
            turn_layout=str(cfg.rollout.turn_layout),  # type: ignore[arg-type]
        )


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


def _empty_render_ids(tokenizer) -> list[int]:
    """What the template renders for an empty conversation (a default system prompt, if
    any): verl removes it from the front of every observation turn."""
    try:
        text = tokenizer.apply_chat_template([{}], add_generation_prompt=False, tokenize=False)
    except Exception:  # noqa: BLE001 - a template that cannot render it has none
        return []
    return tokenizer(text, add_special_tokens=False)["input_ids"] if text else []


def _between_turns(tokenizer) -> str:
    """What the template writes after a turn's ``<|im_end|>`` (a newline in Qwen3's)."""
    try:
        text = tokenizer.apply_chat_template(
            [{"role": "user", "content": "x"}], add_generation_prompt=False, tokenize=False
        )
    except Exception:  # noqa: BLE001 - a template that cannot render it: Qwen3's layout
        return "\n"
    end = text.rfind("<|im_end|>")
    return text[end + len("<|im_end|>") :] if end >= 0 else "\n"


def observation_ids(
    tokenizer,
    observations: Sequence[str],
    completion: Completion,
    eos_ids: Sequence[int],
    layout: TurnLayout = "verl",
    head: Sequence[int] | None = None,
    between: str | None = None,
) -> list[int]:
    """Template tokens that close the assistant turn, carry the observations, and open the next
    turn. ``head`` (verl layout): ``_empty_render_ids(tokenizer)``; ``between`` (chat-template
    layout): ``_between_turns(tokenizer)``; each computed once by a caller that renders many
    turns."""
    closed = bool(completion.token_ids) and completion.token_ids[-1] in eos_ids
    rendered = tokenizer.apply_chat_template(
        [{"role": "tool", "content": o} for o in observations],
        add_generation_prompt=True,
        tokenize=False,
    )
    if layout == "verl":
        ids = tokenizer(rendered, add_special_tokens=False)["input_ids"]
        head = list(_empty_render_ids(tokenizer) if head is None else head)
        if head and ids[: len(head)] == head:
            ids = ids[len(head) :]
        if not closed:  # stopped before the end token (a stop string): close the turn
            ids = tokenizer("<|im_end|>", add_special_tokens=False)["input_ids"] + ids
        return ids
    # The chat format closes an assistant turn with "<|im_end|>" and the template's separator
    # (a newline in Qwen3's); the engine stopped at the end token (then only the separator is
    # missing) or before it (then both are).
    between = _between_turns(tokenizer) if between is None else between
    prefix = between if closed else "<|im_end|>" + between
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
    head = _empty_render_ids(tokenizer) if config.turn_layout == "verl" else []
    between = _between_turns(tokenizer) if config.turn_layout == "chat-template" else None
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

        pending: list[tuple[int, PlannedCall]] = []  # the calls to run, in batch order
        plans: dict[int, list[PlannedCall]] = {}
        for i, comp in by_index.items():
            tr = trajs[i]
            tr.response_ids += comp.token_ids
            tr.response_mask += [1] * len(comp.token_ids)
            tr.log_probs += comp.log_probs
            tr.turn_texts.append(comp.text)
            tr.num_turns += 1
            turn = parse_tool_calls(comp.text, known_tools=config.known_tools)
            plan = plan_turn(
                turn,
                config.on_invalid_call,
                known_tools=config.known_tools,
                max_parallel_calls=config.max_parallel_calls,
            )
            if len(tr.response_ids) >= config.max_response_tokens or comp.finish_reason == "length":
                tr.stop_reason = "length"
            elif tr.num_turns >= config.max_turns and turn.has_tool_call:
                tr.stop_reason = "max_turns"
            elif not turn.has_tool_call:
                tr.stop_reason = "answer"
            elif plan.ends:
                tr.stop_reason = "invalid_call"
                _record(tr, [c for c in plan.calls if not c.run])
            if tr.stop_reason is not None:
                continue
            tr.dropped_calls += plan.dropped
            plans[i] = plan.calls
            pending += [(i, c) for c in plan.calls if c.run]

        t0 = time.monotonic()
        outcomes = tool.run_many([c.arguments for _, c in pending]) if pending else []
        batch_latency = time.monotonic() - t0
        ran = {id(c): out for (_, c), out in zip(pending, outcomes)}
        for i, calls in plans.items():
            tr = trajs[i]
            shown: list[str] = []
            for c in calls:
                out = ran.get(id(c))
                if out is None:
                    _record(tr, [c])
                    if c.shown:
                        shown.append(c.observation)
                    continue
                tr.tool_calls.append(
                    ToolCallRecord(
                        turn=tr.num_turns - 1,
                        name=c.name,
                        arguments=c.arguments if isinstance(c.arguments, dict) else None,
                        observation=out.observation,
                        status=out.status,
                        erroneous=out.erroneous,
                        latency_s=getattr(out, "latency_s", batch_latency),
                    )
                )
                shown.append(out.observation)
            obs = observation_ids(
                tokenizer, shown, by_index[i], eos_ids, config.turn_layout, head, between
            )
            if len(tr.response_ids) + len(obs) >= config.max_response_tokens:
                tr.stop_reason = "length"  # verl drops an observation that would not fit
                continue
            tr.response_ids += obs
            tr.response_mask += [0] * len(obs)
            tr.log_probs += [0.0] * len(obs)
        active = [i for i in plans if trajs[i].stop_reason is None]

    for tr in trajs:
        tr.text = tokenizer.decode(tr.response_ids, skip_special_tokens=True)
        tr.raw_text = tokenizer.decode(tr.response_ids, skip_special_tokens=False)
    return trajs


def _fit_budget(comp: Completion, budget: int, tokenizer) -> Completion:
    """Cut a completion to a trajectory's remaining token budget (the batch shares one cap)."""
    if len(comp.token_ids) <= budget:
        return comp
    ids = comp.token_ids[:budget]
    return Completion(
        ids, comp.log_probs[:budget], tokenizer.decode(ids, skip_special_tokens=False), "length"
    )


def _record(tr: Trajectory, calls: Sequence[PlannedCall]) -> None:
    """Record blocks that were not run (invalid calls, unknown tools) as erroneous calls."""
    for c in calls:
        tr.tool_calls.append(
            ToolCallRecord(
                turn=tr.num_turns - 1,
                name=c.name,
                arguments=c.arguments if isinstance(c.arguments, dict) else None,
                observation=c.observation if c.shown else "",
                status="invalid_call",
                erroneous=True,
                latency_s=0.0,
            )
        )
