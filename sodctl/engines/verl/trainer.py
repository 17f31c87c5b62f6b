"""SOD on verl's synchronous v1 PPO trainer: trainer mode ``sod_sync``.

``SODTrainerSync`` is verl's ``PPOTrainerSync`` with one hook replaced,
``_compute_advantage``: the advantage of every method of the registry is computed by
``sodctl.core.compute_advantages``, the function the local engine calls, with the spec
of the config's ``sod.advantage`` section. Everything else (rollout, old log-probs,
the PPO update, checkpoints) is verl's. The tensor work is the pure function
``sod_advantage_step``; the method only moves fields in and out of TransferQueue.

What verl 0.9.1 gives, and where (paths in ``verl/``, checked against the installed
source):

- **The batch is a ``KVBatchMeta``**: keys ``{uid}_{session_id}_{index}`` into the
  TransferQueue partition ``train`` (``trainer/ppo/v1/agent_loop_tq.py:193``); each
  trajectory's fields are ``AgentLoopOutput.as_dict()`` plus the dataset row
  (``agent_loop_tq.py:194-195``), stored unpadded (jagged nested tensors) and
  read with ``tq.kv_batch_get``. By the time ``_compute_advantage`` runs
  (``trainer/ppo/v1/trainer_base.py:599-600``, after ``_compute_old_log_prob``),
  the fields used here are:

  ===================  =====================================  ===========================
  field                layout                                 written by
  ===================  =====================================  ===========================
  ``response_mask``    (R,) 1 on generated tokens, 0 on tool  ``agent_loop.py:123``
                       observations (multi-turn zeros inside)
  ``rm_scores``        (R,) the reward on the last token      ``agent_loop.py:143-148``
  ``old_log_probs``    (R,) response-aligned                  ``trainer_base.py:1667``
  ``teacher_logprobs`` (P+R, K) vLLM ``prompt_logprobs``      ``agent_loop.py:1031-1055``,
                                                              ``agent_loop.py:152-160``
  ``teacher_ids``      (P+R, K) the ids those rows score      same
  ``uid``              str, the prompt's GRPO group           ``trainer_base.py:1476``
  ``extra_fields``     dict: the agent loop's extra fields    ``agent_loop.py:152``
  ``raw_prompt``,      the dataset row's messages and         ``agent_loop_tq.py:195``,
  ``extra_info``       ``extra_info`` (OPSD's privileged text) ``rl_dataset.py:389-401``
  ===================  =====================================  ===========================

  Samples that ``_balance_batch`` adds to make the batch divisible carry the tag
  ``is_padding``, a fresh ``uid``, and an all-zero ``response_mask`` of length 1
  (``trainer/ppo/padding_utils.py:72-140,179``); they are left out of the core's call
  (so they do not dilute its metrics) and get advantage 0.
- **Teacher log-probs** (external teacher, ``distillation.enabled``): vLLM scores
  ``prompt_ids + response_ids`` with ``prompt_logprobs`` (``experimental/teacher_loop/
  teacher_manager.py:116-144``); ``extract_prompt_logprobs``
  (``workers/rollout/vllm_rollout/utils.py:540-573``) drops the first token's empty
  entry and appends a dummy last row, so **row t holds log p_T(x_{t+1} | x_<=t)**. The
  response token at sequence position P+j is therefore row P+j-1: for a sequence that
  ends at offset e of the jagged values, rows [e-R-1, e-1). That is exactly verl's
  ``response_from_nested`` (``workers/utils/padding.py:194-212``), the slicing verl
  applies to the actor's own ``log_probs``, which come in the same layout
  (``trainer_base.py:1667``); ``teacher_response_log_probs`` uses it, and checks the
  realignment at run time where vLLM also returned ``teacher_ids``: the realigned ids
  must equal ``responses`` token for token. K=1 (``prompt_logprobs=0``, an estimator
  loss mode such as ``k1``) is the sampled token's log-prob, what SOD needs; K>1 holds
  the teacher's top-k tokens instead, and is refused. Tool tokens are scored too; the
  response mask removes them.
- **Rewards and groups**: one reward per sample, ``token_level_rewards.sum(-1)``, grouped
  by ``uid``, as verl's GRPO (``trainer/ppo/core_algos.py:268-331``: unbiased std,
  eps 1e-6, a singleton group gets mean 0 and std 1), which ``sodctl.core.grpo``
  matches (tested against it). ``token_level_rewards`` is ``rm_scores`` unless
  ``algorithm.use_kl_in_reward`` is on (``trainer_base.py:1753-1760``). verl's own
  ``_compute_advantage`` is called first only when it changes something the advantage
  reads: the KL penalty in the reward, or rollout correction with importance weights or
  rejection (``rollout_is`` / ``rollout_rs``), which also writes ``rollout_is_weights``
  and may zero ``response_mask`` tokens. Steps are then still found on the agent loop's
  mask (read before verl's call) and the advantage is zeroed where verl rejected.
- **Tool errors** (the heuristic and mask-after-wrong weightings): the agent loop
  ``sod_tool_agent`` (``sodctl.engines.verl.agent_loop``) adds ``sod_first_error_step``
  (0-based assistant turn of the first erroneous tool call, -1 for none),
  ``sod_tool_calls`` and ``sod_tool_errors`` to ``AgentLoopOutput.extra_fields``,
  which v1 stores as the per-sample dict field ``extra_fields`` (``agent_loop.py:152``;
  verl reads its own ``spec_*`` stats from it the same way, ``trainer_base.py:1902-1917``).
  A weighting that needs them and does not find them raises.
- **One output per session**: verl's GRPO keeps only a session's last output
  (``trainer/ppo/v1/utils.py:148-217``) and the teacher scores only that one
  (``agent_loop_tq.py:163``); the tool agent loop has one. A batch with more is refused.

What is written back, nested in verl's response layout (``response_to_nested``):
``advantages`` and ``returns`` (= advantages, as verl's GRPO), and with
``sod.advantage.opd_form=loss`` the two fields a separate OPD loss needs:
``sod_token_weights`` (each token's step weight w_k) and ``sod_teacher_log_probs``
(the response-aligned teacher log-probs; for OPSD there is no ``teacher_logprobs``).
Metrics: ``AdvantageOutput.metrics`` (``sod/...``) and ``rollout/tool_calls``,
``rollout/tool_error_rate`` (the local engine's names) go into verl's ``metrics``.

**OPSD (the "live theta" self-teacher, ``sod.privileged``)**: the student scores its own
response under a privileged prompt: the last user turn of ``raw_prompt`` extended with
``sod.privileged_leads[privileged]`` filled with ``extra_info.solution`` / ``.hint``.
The privileged prompt's ids are the rollout's own ``prompts`` with the tail that the chat
template changes replaced (``privileged_prompt_ids``: the template is rendered with and
without the privileged text, and the rollout prompt must end with the unprivileged
rendering's tail, so a template that disagrees with verl's fails loudly). The copies
(``privileged_copies``: ``input_ids``, ``position_ids``, ``prompts``, ``responses``,
``response_mask``, ``loss_mask``) go under the same keys into the partition
``sod_privileged``, are scored with ``actor_rollout_wg.compute_log_prob`` as
``_compute_old_log_prob`` does (``trainer_base.py:1651-1667``: the same call and
realignment, without entropy, at the rollout temperature), and are cleared. Text-only
prompts; the weights are the current policy's (theta_old), as in the local engine.

Verified on CPU (``tests/test_verl_trainer.py``) with verl's real TransferQueue
(SimpleStorage) and the fields written by verl's own code: the agent-loop worker's
``_agent_loop_postprocess`` (with a fake teacher server in vLLM's layout), the padding of
``_balance_batch``, ``_compute_old_log_prob`` and, for OPSD, a fake actor behind verl's
``tqbridge`` (the real worker plumbing, not the real model). Not verified: a real FSDP
actor scoring the privileged copies (needs a GPU).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cached_property
from typing import Any

import torch
import transfer_queue as tq
from omegaconf import DictConfig, OmegaConf
from tensordict import TensorDict
from torch import Tensor
from transfer_queue import KVBatchMeta
from verl.trainer.ppo.padding_utils import build_padding_position_ids
from verl.trainer.ppo.v1.trainer_base import register_trainer
from verl.trainer.ppo.v1.trainer_sync import PPOTrainerSync
from verl.workers.utils.padding import response_from_nested, response_to_nested

from sodctl.core.advantages import AdvantageSpec, compute_advantages
from sodctl.data.prompting import privileged_messages
from sodctl.engines.verl.agent_loop import (
    FIRST_ERROR_STEP,
    TOOL_CALLS,
    TOOL_ERRORS,
    tool_error_fields,
)
from sodctl.engines.verl.compose import TRAINER_MODE
from sodctl.engines.verl.loss import SOD_TEACHER_LOG_PROBS, SOD_TOKEN_WEIGHTS
from sodctl.errors import SodctlUsageError

PRIVILEGED_PARTITION = "sod_privileged"
NEEDS_FIRST_ERROR: tuple[str, ...] = ("heuristic", "mask-after-wrong")
PRIVILEGED_KINDS: tuple[str, ...] = ("solution", "hint")


# ----------------------------------------------------------------------------- config


def advantage_spec_of(config: DictConfig | Mapping[str, Any]) -> AdvantageSpec:
    """The ``AdvantageSpec`` of a composed config's ``sod.advantage`` section."""
    sod = config.get("sod", None)
    section = None if sod is None else sod.get("advantage", None)
    if section is None:
        raise SodctlUsageError(
            "trainer mode sod_sync needs the config's sod.advantage section (sodctl writes it)"
        )
    if isinstance(section, DictConfig):
        values = OmegaConf.to_container(section, resolve=True, enum_to_str=True)
    else:
        values = dict(section)
    known = set(AdvantageSpec.__dataclass_fields__)
    unknown = sorted(set(values) - known)
    if unknown:
        raise SodctlUsageError(
            f"sod.advantage has unknown key {unknown[0]!r}; known: {', '.join(sorted(known))}"
        )
    values = {k: str(v) if k in ("weighting", "opd_form") else v for k, v in values.items()}
    try:
        return AdvantageSpec(**values)
    except (TypeError, ValueError) as e:
        raise SodctlUsageError(f"sod.advantage: {e}") from None


def privileged_of(config: DictConfig) -> str | None:
    """``sod.privileged`` (``solution`` | ``hint``), or None when the teacher is external."""
    value = config.sod.get("privileged", None)
    if value is None or str(value) == "none":
        return None
    if str(value) not in PRIVILEGED_KINDS:
        raise SodctlUsageError(f"sod.privileged must be null, solution or hint, got {value!r}")
    return str(value)


def check_config(config: DictConfig) -> None:
    """One-line errors for configs this trainer cannot run as asked."""
    spec = advantage_spec_of(config)
    alg = config.algorithm
    if str(alg.adv_estimator) != "grpo":
        raise SodctlUsageError(
            "trainer mode sod_sync computes the advantage with sodctl.core (GRPO and OPD "
            f"terms from sod.advantage): set algorithm.adv_estimator=grpo, not {alg.adv_estimator!r}"
        )
    if not alg.get("norm_adv_by_std_in_grpo", True):
        raise SodctlUsageError(
            "trainer mode sod_sync normalises GRPO by the group std (as the paper): "
            "set algorithm.norm_adv_by_std_in_grpo=true"
        )
    privileged = privileged_of(config)
    distillation = config.get("distillation", None)
    teacher_on = distillation is not None and bool(distillation.get("enabled", False))
    if privileged is not None:
        if not spec.opd:
            raise SodctlUsageError("sod.privileged (OPSD) needs sod.advantage.opd=true")
        lead = (config.sod.get("privileged_leads") or {}).get(privileged)
        if not lead or "{text}" not in str(lead):
            raise SodctlUsageError(
                f"sod.privileged_leads.{privileged} must be a string with {{text}} in it"
            )
        if teacher_on:
            raise SodctlUsageError(
                "OPSD scores with the student itself: set distillation.enabled=false"
            )
    elif spec.opd and not teacher_on:
        raise SodctlUsageError(
            "an OPD method needs the teacher's log-probs: set distillation.enabled=true "
            "(verl then fills teacher_logprobs)"
        )


# ------------------------------------------------------------------------ tensor work


def _padded(x: Tensor, width: int) -> Tensor:
    """A (B, R_b) jagged nested tensor (or a dense (B, <=width) one) as (B, width), 0-padded."""
    if x.is_nested:
        return x.to_padded_tensor(0, output_size=(x.size(0), width))
    if x.shape[1] > width:
        raise ValueError(f"a response field is {x.shape[1]} wide, the mask {width}")
    return torch.nn.functional.pad(x, (0, width - x.shape[1]))


def _lengths(x: Tensor) -> Tensor:
    return x.offsets().diff() if x.is_nested else torch.full((x.shape[0],), x.shape[1])


def _as_list(x: Any) -> list[Any]:
    """A non-tensor field (NonTensorStack, numpy array, list) as a list of plain values."""
    items = x.tolist() if hasattr(x, "tolist") else list(x)
    return [getattr(v, "data", v) for v in items]


def teacher_response_log_probs(
    teacher_logprobs: Tensor,
    response_mask: Tensor,
    *,
    teacher_ids: Tensor | None = None,
    responses: Tensor | None = None,
) -> Tensor:
    """Sequence-layout log-probs (row t scores token t+1) -> response-aligned (B, R_b), nested.

    ``teacher_logprobs`` is (B, P_b+R_b) or (B, P_b+R_b, K) jagged, as vLLM's
    ``prompt_logprobs`` and verl's actor ``log_probs`` arrive; K must be 1 (the sampled
    token's log-prob). With ``teacher_ids`` and ``responses`` the realignment is checked:
    the ids of the rows taken must be the response tokens.
    """
    if teacher_logprobs.dim() == 3 and teacher_logprobs.shape[-1] != 1:
        raise SodctlUsageError(
            f"teacher_logprobs hold the teacher's top-{teacher_logprobs.shape[-1]} tokens, not "
            "the sampled one: use an estimator distillation loss mode (k1), not a top-k one"
        )
    aligned = response_from_nested(teacher_logprobs, response_mask)
    if teacher_ids is not None and responses is not None:
        ids = response_from_nested(teacher_ids, response_mask).values().reshape(-1)
        if not torch.equal(ids.long(), responses.values().long()):
            bad = int((ids.long() != responses.values().long()).sum())
            raise ValueError(
                f"teacher_logprobs are misaligned: {bad} realigned teacher ids differ from "
                "the response tokens"
            )
    if aligned.dim() == 3:
        values = aligned.values().reshape(-1)
        aligned = torch.nested.nested_tensor_from_jagged(values, aligned.offsets())
    return aligned


def _tool_fields(
    extra_fields: Sequence[Any] | None, keep_B: Tensor, needed_by: str | None
) -> tuple[Tensor | None, dict[str, float]]:
    """``first_error_step_B`` of the kept rows and the tool metrics, from ``extra_fields``
    (``agent_loop.tool_error_fields``); absent fields are an error only for a weighting
    that needs them (``needed_by``)."""
    rows = [] if extra_fields is None else _as_list(extra_fields)
    kept = [r for r, k in zip(rows, keep_B.tolist(), strict=True) if k] if rows else []
    try:
        fields = tool_error_fields(kept) if kept else None
    except KeyError:
        fields = None
    if fields is None:
        if needed_by is not None:
            raise SodctlUsageError(
                f"weighting {needed_by!r} needs extra_fields.{FIRST_ERROR_STEP} in every "
                "sample: roll out with sodctl's agent loop (agent_name sod_tool_agent)"
            )
        return None, {}
    first_B = torch.tensor(fields[FIRST_ERROR_STEP], dtype=torch.long)
    calls, errors = sum(fields[TOOL_CALLS]), sum(fields[TOOL_ERRORS])
    return first_B, {
        "rollout/tool_calls": calls / len(kept),
        "rollout/tool_error_rate": errors / max(calls, 1),
    }


def group_ids_of(uids: Sequence[Any]) -> Tensor:
    """One integer per distinct ``uid``, in order of first appearance -> (B,) int64."""
    index: dict[Any, int] = {}
    return torch.tensor([index.setdefault(u, len(index)) for u in uids], dtype=torch.long)


def sod_advantage_step(
    fields: Mapping[str, Any],
    spec: AdvantageSpec,
    *,
    is_padding_B: Tensor | None = None,
) -> tuple[Tensor, Tensor | None, dict[str, float]]:
    """The advantages of one verl batch -> ``(advantages_BT, token_weights_BT, metrics)``.

    ``fields`` holds TransferQueue fields (module docstring): ``response_mask``,
    ``uid``, ``token_level_rewards`` or ``rm_scores``, and for OPD ``old_log_probs``
    plus either ``sod_teacher_log_probs`` (response-aligned) or ``teacher_logprobs``
    (sequence layout, realigned here; checked with ``teacher_ids`` and ``responses``
    when present); ``extra_fields`` for tool errors. Tensors may be jagged nested
    (as TransferQueue returns them) or dense. The outputs are dense (B, T),
    T = the longest response; rows flagged in ``is_padding_B`` get zeros and stay out
    of the core's call. ``token_weights_BT`` is None without the OPD term.
    """
    mask = fields["response_mask"]
    B = mask.size(0)
    T = int(_lengths(mask).max()) if B else 0
    mask_BT = _padded(mask, T).long()
    keep_B = torch.ones(B, dtype=torch.bool) if is_padding_B is None else ~is_padding_B.bool()
    rewards = (
        fields["token_level_rewards"] if "token_level_rewards" in fields else fields["rm_scores"]
    )
    rewards_B = _padded(rewards, T).float().sum(-1)
    group_ids_B = group_ids_of(_as_list(fields["uid"]))
    needed_by = spec.weighting if spec.weighting in NEEDS_FIRST_ERROR else None
    first_error_B, tool_metrics = _tool_fields(fields.get("extra_fields"), keep_B, needed_by)

    old_BT = teacher_BT = None
    if spec.opd:
        teacher = fields.get(SOD_TEACHER_LOG_PROBS)
        if teacher is None:
            if "teacher_logprobs" not in fields:
                raise SodctlUsageError(
                    "an OPD method needs teacher_logprobs in the batch: set distillation.enabled=true"
                )
            teacher = teacher_response_log_probs(
                fields["teacher_logprobs"],
                mask,
                teacher_ids=fields.get("teacher_ids"),
                responses=fields.get("responses"),
            )
        on_BT = mask_BT.bool()
        zero = torch.zeros((), dtype=torch.float32)
        # masked positions (tool tokens, padding) never matter, but an inf there would
        # poison the core's prefix sums
        old_BT = torch.where(on_BT, _padded(fields["old_log_probs"], T).float(), zero)[keep_B]
        teacher_BT = torch.where(on_BT, _padded(teacher, T).float(), zero)[keep_B]

    out = compute_advantages(
        spec,
        rewards_B=rewards_B[keep_B],
        group_ids_B=group_ids_B[keep_B],
        response_mask=mask_BT[keep_B],
        old_log_probs=old_BT,
        teacher_log_probs=teacher_BT,
        first_error_step_B=first_error_B,
    )
    adv_BT = torch.zeros(B, T, dtype=torch.float32)
    adv_BT[keep_B] = out.advantages_BT.float()
    w_BT = None
    if out.token_weights_BT is not None:
        w_BT = torch.zeros(B, T, dtype=torch.float32)
        w_BT[keep_B] = out.token_weights_BT.float()
    return adv_BT, w_BT, {**out.metrics, **tool_metrics}


def check_one_output_per_session(keys: Sequence[str]) -> None:
    """Refuse batches where a session (``{uid}_{session}``) has several outputs."""
    seen: set[str] = set()
    for key in keys:
        session, _, index = key.rpartition("_")
        if index != "0" or session in seen:
            raise SodctlUsageError(
                f"trainer mode sod_sync needs one agent-loop output per session; got {key!r}"
            )
        seen.add(session)


# ------------------------------------------------------------------------------ OPSD


def privileged_text(extra_info: Mapping[str, Any] | None, privileged: str, uid: str) -> str:
    """The sample's ``extra_info.solution`` / ``.hint``; one line when it has none."""
    text = str((extra_info or {}).get(privileged) or "")
    if not text:
        raise SodctlUsageError(
            f"OPSD needs extra_info.{privileged} in every RL row; the prompt {uid} has none"
        )
    return text


def privileged_prompt_ids(
    tokenizer: Any,
    messages: Sequence[Mapping[str, Any]],
    privileged: Sequence[Mapping[str, Any]],
    prompt_ids: Sequence[int],
    template_kwargs: Mapping[str, Any] | None = None,
) -> list[int]:
    """The rollout's ``prompt_ids`` with the privileged text in: the tail from where the two
    chat-template renderings part is replaced. The rollout prompt must end with the plain
    rendering's tail (else the template here is not the one the rollout used: it raises)."""
    kw = dict(template_kwargs or {})

    def render(msgs: Sequence[Mapping[str, Any]]) -> list[int]:
        text = tokenizer.apply_chat_template(
            list(msgs), add_generation_prompt=True, tokenize=False, **kw
        )
        return list(tokenizer(text, add_special_tokens=False)["input_ids"])

    plain, priv = render(messages), render(privileged)
    a = 0
    while a < min(len(plain), len(priv)) and plain[a] == priv[a]:
        a += 1
    tail = plain[a:]
    ids = [int(t) for t in prompt_ids]
    if len(tail) > len(ids) or ids[len(ids) - len(tail) :] != tail:
        raise ValueError(
            "OPSD: the chat template here does not reproduce the end of the rollout's prompt; "
            "check data.apply_chat_template_kwargs"
        )
    return ids[: len(ids) - len(tail)] + priv[a:]


OPSD_FIELDS = [
    "uid",
    "raw_prompt",
    "extra_info",
    "prompts",
    "responses",
    "response_mask",
    "position_ids",
]


def privileged_copies(
    data: Mapping[str, Any],
    tags: Sequence[Mapping[str, Any]],
    *,
    tokenizer: Any,
    privileged: str,
    lead: str,
    template_kwargs: Mapping[str, Any],
) -> tuple[TensorDict, list[dict[str, int]]]:
    """The batch's samples with the privileged prompt, as the fields the actor scores
    (``input_ids``, ``position_ids``, ``loss_mask``, ...) and their length tags. Padding
    samples keep their prompt; the n sessions of a prompt share one rendering."""
    uids, raw_prompts = _as_list(data["uid"]), _as_list(data["raw_prompt"])
    infos = _as_list(data["extra_info"])
    prompts, responses, mask = data["prompts"], data["responses"], data["response_mask"]
    positions = data.get("position_ids", None)
    cache: dict[tuple[Any, ...], Tensor] = {}
    rows: dict[str, list[Tensor]] = {
        k: [] for k in ("prompts", "input_ids", "position_ids", "responses", "response_mask")
    }
    out_tags = []
    for b, tag in enumerate(tags):
        prompt_ids = prompts[b].long()
        if not tag.get("is_padding", False):
            text = privileged_text(infos[b], privileged, str(uids[b]))
            source = (uids[b], text, *prompt_ids.tolist())
            if source not in cache:
                msgs = list(raw_prompts[b])
                ids = privileged_prompt_ids(
                    tokenizer,
                    msgs,
                    privileged_messages(msgs, text, lead),
                    prompt_ids.tolist(),
                    template_kwargs,
                )
                cache[source] = torch.tensor(ids, dtype=torch.long)
            prompt_ids = cache[source]
        input_ids = torch.cat([prompt_ids, responses[b].long()])
        like = positions[b] if positions is not None else None
        rows["prompts"].append(prompt_ids)
        rows["input_ids"].append(input_ids)
        rows["position_ids"].append(build_padding_position_ids(like, torch.ones_like(input_ids)))
        rows["responses"].append(responses[b].long())
        rows["response_mask"].append(mask[b].long())
        R = len(responses[b])
        out_tags.append(
            {"prompt_len": len(prompt_ids), "response_len": R, "seq_len": len(input_ids)}
        )
    fields = {k: torch.nested.as_nested_tensor(v, layout=torch.jagged) for k, v in rows.items()}
    fields["loss_mask"] = fields["response_mask"]
    return TensorDict(fields, batch_size=len(tags)), out_tags


# ---------------------------------------------------------------------------- trainer


@register_trainer(TRAINER_MODE)
class SODTrainerSync(PPOTrainerSync):
    """verl's synchronous v1 trainer whose advantage is sodctl's (module docstring)."""

    def __init__(self, config: DictConfig) -> None:
        check_config(config)
        super().__init__(config)

    @cached_property
    def sod_spec(self) -> AdvantageSpec:
        return advantage_spec_of(self.config)

    @cached_property
    def sod_privileged(self) -> str | None:
        return privileged_of(self.config)

    def _verl_changes_rewards(self) -> tuple[bool, bool]:
        """(KL in the reward, rollout correction that weights or rejects tokens)."""
        alg = self.config.algorithm
        rc = alg.get("rollout_correction", None)
        correcting = (
            rc is not None
            and not rc.get("bypass_mode", False)
            and (rc.get("rollout_is") is not None or rc.get("rollout_rs") is not None)
        )
        return bool(alg.use_kl_in_reward), bool(correcting)

    def _compute_advantage(self, batch: KVBatchMeta, metrics: dict) -> KVBatchMeta:
        spec, privileged = self.sod_spec, self.sod_privileged
        keys, partition = list(batch.keys), batch.partition_id
        check_one_output_per_session(keys)
        is_padding_B = torch.tensor([bool(t.get("is_padding", False)) for t in batch.tags])
        select = ["uid", "response_mask", "rm_scores", "extra_fields"]
        if spec.opd:
            select.append("old_log_probs")
            if privileged is None:
                select += ["teacher_logprobs", "teacher_ids", "responses"]
        data = tq.kv_batch_get(keys=keys, partition_id=partition, select_fields=select)
        fields: dict[str, Any] = dict(data.items())

        kl_in_reward, correcting = self._verl_changes_rewards()
        final_mask = None
        if kl_in_reward or correcting:
            batch = super()._compute_advantage(batch, metrics)
            after = tq.kv_batch_get(
                keys=keys,
                partition_id=partition,
                select_fields=["token_level_rewards", "response_mask"],
            )
            if kl_in_reward:
                fields["token_level_rewards"] = after["token_level_rewards"]
            if correcting:
                final_mask = after["response_mask"]

        mask = fields["response_mask"]
        if spec.opd:
            if privileged is not None:
                fields[SOD_TEACHER_LOG_PROBS] = self._privileged_log_probs(batch, privileged)
            elif "teacher_logprobs" in fields:
                fields[SOD_TEACHER_LOG_PROBS] = teacher_response_log_probs(
                    fields.pop("teacher_logprobs"),
                    mask,
                    teacher_ids=fields.pop("teacher_ids", None),
                    responses=fields.pop("responses", None),
                )
        adv_BT, w_BT, sod_metrics = sod_advantage_step(fields, spec, is_padding_B=is_padding_B)
        if final_mask is not None:
            adv_BT = adv_BT * _padded(final_mask, adv_BT.shape[1]).to(adv_BT.dtype)

        adv = response_to_nested(adv_BT, mask)
        out: dict[str, Tensor] = {"advantages": adv, "returns": adv}
        if spec.opd and spec.opd_form == "loss":
            assert w_BT is not None
            out[SOD_TOKEN_WEIGHTS] = response_to_nested(w_BT, mask)
            out[SOD_TEACHER_LOG_PROBS] = fields[SOD_TEACHER_LOG_PROBS]
        batch = tq.kv_batch_put(
            keys=keys, partition_id=partition, fields=TensorDict(out, batch_size=len(keys))
        )
        metrics.update(sod_metrics)
        return batch

    def _privileged_log_probs(self, batch: KVBatchMeta, privileged: str) -> Tensor:
        """OPSD: the student's log-probs of its response under the privileged prompt,
        response-aligned (B, R_b) nested (module docstring)."""
        keys = list(batch.keys)
        data = tq.kv_batch_get(
            keys=keys, partition_id=batch.partition_id, select_fields=OPSD_FIELDS
        )
        kwargs = self.config.data.get("apply_chat_template_kwargs", None)
        copies, tags = privileged_copies(
            data,
            batch.tags,
            tokenizer=self.tokenizer,
            privileged=privileged,
            lead=str(self.config.sod.privileged_leads[privileged]),
            template_kwargs=OmegaConf.to_container(kwargs, resolve=True) if kwargs else {},
        )
        meta = tq.kv_batch_put(
            keys=keys, partition_id=PRIVILEGED_PARTITION, fields=copies, tags=tags
        )
        meta.extra_info = {
            "calculate_entropy": False,
            "compute_loss": False,
            "temperature": self.config.actor_rollout_ref.rollout.temperature,
        }
        try:
            output = self.actor_rollout_wg.compute_log_prob(meta)
            assert len(output) == len(meta)
            scored = tq.kv_batch_get(
                keys=keys,
                partition_id=PRIVILEGED_PARTITION,
                select_fields=["log_probs", "response_mask"],
            )
            return teacher_response_log_probs(scored["log_probs"], scored["response_mask"])
        finally:
            tq.kv_clear(keys=keys, partition_id=PRIVILEGED_PARTITION)
