"""Synthetic verl batches for the ``sod_sync`` trainer's tests (verl must be installed).

A batch is a list of ``Traj``: one agent-loop output each, multi-turn (tool observations
are runs of 0 inside ``response_mask``), with a GRPO group per ``uid``. Log-probs are
dyadic functions of the sequence position and token (exact in float32), so a value
that reaches the core can be traced back to the one token it must belong to:

- ``teacher_lp(pos, tok)``: the teacher's log-prob of token ``tok`` at sequence position
  ``pos``; ``vllm_rows`` lays them out as vLLM's ``prompt_logprobs`` do (row t scores
  token t+1, a dummy last row);
- ``student_lp(pos, tok)``: the student's, laid out the same way by ``FakeActor``
  (verl's actor ``log_probs``).

``put_like_agent_loop`` stores trajectories with verl's own
``AgentLoopWorkerTQ._agent_loop_postprocess`` (teacher scoring included, through a fake
teacher server), so the fields reach TransferQueue exactly as in a run.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from tensordict import TensorDict
from torch import Tensor

Fn = Callable[[int, int], float]


def teacher_lp(pos: int, tok: int) -> float:
    return -0.5 - pos / 64 - (tok % 7) / 1024


def student_lp(pos: int, tok: int) -> float:
    return -0.25 - pos / 128 - (tok % 5) / 512


@dataclass
class Traj:
    uid: str
    session: int
    prompt_ids: list[int]
    response_ids: list[int]
    response_mask: list[int]
    reward: float
    first_error_step: int = -1
    tool_calls: int = 0
    tool_errors: int = 0
    messages: list[dict[str, str]] = field(
        default_factory=lambda: [{"role": "user", "content": "What is 2+3?"}]
    )
    extra_info: dict[str, Any] = field(default_factory=lambda: {"solution": "5", "hint": "add"})

    @property
    def key(self) -> str:
        return f"{self.uid}_{self.session}_0"

    @property
    def seq(self) -> list[int]:
        return self.prompt_ids + self.response_ids

    def aligned(self, fn: Fn, prompt_len: int | None = None) -> list[float]:
        """``fn`` at every response token (its sequence position, its id)."""
        p = len(self.prompt_ids) if prompt_len is None else prompt_len
        return [fn(p + j, t) for j, t in enumerate(self.response_ids)]

    def extra_fields(self) -> dict[str, int]:
        return {
            "sod_first_error_step": self.first_error_step,
            "sod_tool_calls": self.tool_calls,
            "sod_tool_errors": self.tool_errors,
        }


def vllm_rows(seq: Sequence[int], fn: Fn) -> tuple[Tensor, Tensor]:
    """(ids, log-probs), each (L, 1): row t scores token t+1; the last row is a dummy 0."""
    ids = [*seq[1:], 0]
    lps = [fn(t + 1, seq[t + 1]) for t in range(len(seq) - 1)] + [0.0]
    return (
        torch.tensor(ids, dtype=torch.int32).unsqueeze(-1),
        torch.tensor(lps, dtype=torch.float32).unsqueeze(-1),
    )


def _mask(*runs: tuple[int, int]) -> list[int]:
    """A response mask from (value, length) runs."""
    return [v for v, n in runs for _ in range(n)]


def make_trajs(seed: int = 0) -> list[Traj]:
    """Three groups: four samples (multi-turn; one with no step at all), three with equal
    rewards (GRPO 0), and a singleton; prompts of different lengths."""
    rng = random.Random(seed)
    tag = uuid.uuid4().hex[:8]

    def toks(n: int) -> list[int]:
        return [rng.randrange(10, 200) for _ in range(n)]

    masks_a = [
        _mask((1, 3), (0, 2), (1, 4), (0, 3), (1, 2)),
        _mask((1, 6)),
        _mask((1, 2), (0, 1), (1, 1), (0, 4), (1, 3), (0, 1), (1, 2)),
        _mask((0, 3)),  # nothing generated counts (a truncated turn): no step
    ]
    masks_b = [_mask((1, 4), (0, 2)), _mask((1, 1), (0, 5), (1, 5)), _mask((1, 2))]
    out: list[Traj] = []
    pa, pb, pc = toks(5), toks(7), toks(4)
    errors_a = [(1, 2, 1), (-1, 0, 0), (0, 3, 2), (-1, 0, 0)]
    for s, (m, r, (fe, calls, errs)) in enumerate(zip(masks_a, [1.0, -1.0, 1.0, -1.0], errors_a)):
        out.append(Traj(f"a{tag}", s, pa, toks(len(m)), m, r, fe, calls, errs))
    for s, (m, fe) in enumerate(zip(masks_b, [0, 1, -1])):
        out.append(Traj(f"b{tag}", s, pb, toks(len(m)), m, 0.5, fe, 2, int(fe >= 0)))
    m = _mask((1, 3), (0, 2), (1, 3))
    out.append(Traj(f"c{tag}", 0, pc, toks(len(m)), m, 1.0, 1, 1, 1))
    return out


def _nested(rows: Sequence[Sequence[float] | Tensor], dtype: torch.dtype) -> Tensor:
    return torch.nested.as_nested_tensor(
        [torch.as_tensor(r, dtype=dtype) for r in rows], layout=torch.jagged
    )


def nested_fields(trajs: Sequence[Traj]) -> dict[str, Any]:
    """The fields of ``sod_advantage_step`` as TransferQueue returns them (jagged nested)."""
    rm = [[0.0] * (len(t.response_ids) - 1) + [t.reward] for t in trajs]
    rows = [vllm_rows(t.seq, teacher_lp) for t in trajs]
    return {
        "response_mask": _nested([t.response_mask for t in trajs], torch.int64),
        "rm_scores": _nested(rm, torch.float32),
        "uid": [t.uid for t in trajs],
        "old_log_probs": _nested([t.aligned(student_lp) for t in trajs], torch.float32),
        "teacher_logprobs": _nested([lp for _, lp in rows], torch.float32),
        "teacher_ids": _nested([ids for ids, _ in rows], torch.int32),
        "responses": _nested([t.response_ids for t in trajs], torch.int64),
        "extra_fields": [t.extra_fields() for t in trajs],
    }


@dataclass
class Truth:
    """The aligned dense tensors ``compute_advantages`` is called with directly."""

    mask_BT: Tensor
    rewards_B: Tensor
    group_ids_B: Tensor
    old_BT: Tensor
    teacher_BT: Tensor
    first_error_B: Tensor


def truth(
    trajs: Sequence[Traj], teacher: Fn = teacher_lp, prompt_lens: Sequence[int] | None = None
) -> Truth:
    B = len(trajs)
    T = max(len(t.response_ids) for t in trajs)
    mask, old, tea = (
        torch.zeros(B, T, dtype=d) for d in (torch.int64, torch.float32, torch.float32)
    )
    for b, t in enumerate(trajs):
        R = len(t.response_ids)
        mask[b, :R] = torch.tensor(t.response_mask)
        old[b, :R] = torch.tensor(t.aligned(student_lp))
        p = None if prompt_lens is None else prompt_lens[b]
        tea[b, :R] = torch.tensor(t.aligned(teacher, p))
    groups: dict[str, int] = {}
    return Truth(
        mask,
        torch.tensor([t.reward for t in trajs]),
        torch.tensor([groups.setdefault(t.uid, len(groups)) for t in trajs]),
        old,
        tea,
        torch.tensor([t.first_error_step for t in trajs]),
    )


# ----------------------------------------------------------------- verl's own writers


class FakeTeacherServer:
    """``AsyncTeacherLLMServerManager`` stand-in: vLLM's prompt_logprobs layout, K=1."""

    async def compute_teacher_logprobs_single(self, sequence_ids: list[int], **_: Any):
        return vllm_rows(sequence_ids, teacher_lp)


def _postprocess_worker() -> Any:
    """An object carrying the real ``AgentLoopWorkerTQ`` methods that store an output."""
    from verl.trainer.ppo.v1.agent_loop_tq import AgentLoopWorkerTQ

    cls = AgentLoopWorkerTQ.__ray_metadata__.modified_class  # the class under @ray.remote
    names = (
        "_agent_loop_postprocess",
        "_compute_score",
        "_compute_teacher_logprobs",
        "_compute_multi_modal_inputs",
        "_compute_position_ids",
    )
    stub = type("PostprocessWorker", (), {n: getattr(cls, n) for n in names})()
    stub.processor = None
    stub.reward_loop_worker_handles = None  # the reward is already in the output
    stub.distillation_enabled = True
    stub.teacher_key = "data_source"
    stub.teacher_server_manager = FakeTeacherServer()
    return stub


def put_like_agent_loop(trajs: Sequence[Traj], *, teacher: bool = True) -> None:
    """Store every trajectory as verl's agent-loop worker does (partition ``train``)."""
    from verl.experimental.agent_loop.agent_loop import AgentLoopMetrics, AgentLoopOutput

    worker = _postprocess_worker()
    worker.distillation_enabled = teacher

    async def put_all() -> None:
        for t in trajs:
            output = AgentLoopOutput(
                prompt_ids=t.prompt_ids,
                response_ids=t.response_ids,
                response_mask=t.response_mask,
                response_logprobs=t.aligned(student_lp),
                reward_score=t.reward,
                num_turns=2 + 2 * t.tool_calls,
                metrics=AgentLoopMetrics(),
                extra_fields=t.extra_fields(),
            )
            kwargs = {
                "uid": t.uid,
                "session_id": t.session,
                "raw_prompt": t.messages,
                "extra_info": t.extra_info,
                "index": 0,
                "global_steps": 1,
                "data_source": "synthetic",
            }
            await worker._agent_loop_postprocess(output, False, **kwargs)

    asyncio.run(put_all())


class FakeActor:
    """``actor_rollout_wg`` stand-in: ``compute_log_prob`` behind verl's ``tqbridge`` (the
    KVBatchMeta -> TensorDict -> TransferQueue plumbing of a real worker method), scoring
    every sequence with ``student_lp`` in the actor's layout (row t scores token t+1)."""

    def __init__(self) -> None:
        from verl.utils.transferqueue_utils import tqbridge

        self.calls: list[dict[str, Any]] = []
        self.compute_log_prob = tqbridge()(self._compute_log_prob)

    def _compute_log_prob(self, data: TensorDict) -> TensorDict:
        from verl.utils import tensordict_utils as tu

        self.calls.append(
            {
                "keys": len(data),
                "calculate_entropy": tu.get_non_tensor_data(data, "calculate_entropy", None),
                "temperature": tu.get_non_tensor_data(data, "temperature", None),
                "input_ids": [data["input_ids"][b].tolist() for b in range(len(data))],
            }
        )
        lps, ents = [], []
        for b in range(len(data)):
            seq = data["input_ids"][b].tolist()
            lps.append(vllm_rows(seq, student_lp)[1].squeeze(-1))
            ents.append(torch.full((len(seq),), 0.5))
        return TensorDict(
            {"log_probs": _nested(lps, torch.float32), "entropy": _nested(ents, torch.float32)},
            batch_size=len(data),
        )
