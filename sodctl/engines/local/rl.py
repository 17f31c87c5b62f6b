"""The local RL / on-policy distillation loop: every RL method of the registry, on one device.

One step (REFERENCE §3-4):

1. take ``train_batch_prompts`` prompts and roll each out ``rollout.n`` times with the
   agent loop and the code interpreter (the current policy samples);
2. reward every trajectory (``sodctl.rewards.training_rewards``: ±1, tool-turn shaping,
   DAPO overlong penalty);
3. score the sampled tokens: ``old_log_probs`` from the policy before the update, and,
   for OPD methods, ``teacher_log_probs`` from the external teacher on the same
   sequence, or (OPSD) from the policy itself with the privileged solution / hint
   added to the prompt;
4. ``core.compute_advantages`` with the method's switches (GRPO term, OPD term, step
   weighting) - the one function the verl engine calls too;
5. PPO: ``ppo_epochs`` passes over mini-batches of ``ppo_mini_batch_prompts`` prompts,
   clipped surrogate (+ the separate REINFORCE-form OPD loss when ``sod.opd_form=loss``),
   grad-norm clip, AdamW.

Nothing branches on a method's name: only on its switches.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig

from sodctl.config.schema import rl_max_steps
from sodctl.core import (
    PATTERN_NAMES,
    AdvantageSpec,
    compute_advantages,
    opd_reinforce_loss,
    ppo_clipped_loss,
)
from sodctl.data.prompting import PRIVILEGED_LEADS
from sodctl.data.prompting import privileged_messages as with_privileged
from sodctl.engines.local.run import (
    MetricsLogger,
    RunDir,
    load_model,
    logits_at,
    make_scheduler,
    peak_mem_gb,
    resolve_device,
)
from sodctl.errors import SodctlUsageError
from sodctl.methods import MethodSpec
from sodctl.rewards.mcq import option_letter
from sodctl.rewards.reward import code_test_options
from sodctl.rewards.verl_compat import kind_for_source
from sodctl.rollout.agent import AgentLoopConfig, Trajectory, chat_prompt_ids, run_agent_loop
from sodctl.rollout.engine import SamplingParams
from sodctl.rollout.hf_engine import HFEngine
from sodctl.runinfo import seed_everything, use_threads

SAMPLES_PER_STEP = 4  # trajectories per step written to samples.jsonl (with d_k, w_k)


@dataclass(frozen=True)
class RLProblem:
    messages: list[dict[str, str]]
    ground_truth: str
    kind: str
    solution: str = ""
    hint: str = ""


@dataclass
class RLData:
    """The RL problems a run trains on, and what loading did to the file's rows."""

    problems: list[RLProblem]
    path: str
    rows: int  # in the file (after data.limit)
    wrapping: dict[str, int]  # prompt-wrapping branch -> rows (sodctl.data.prompting)
    dropped: list[int] = field(default_factory=list)  # rows over data.max_prompt_tokens

    def report(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "rows": self.rows,
            "kept": len(self.problems),
            "prompt_wrapping": self.wrapping,
            "filtered_overlong_prompts": len(self.dropped),
            "filtered_rows": self.dropped[:100],
        }


def load_rl_problems(cfg: DictConfig) -> RLData:
    """The RL corpus (verl schema, REFERENCE §9) as problems, prompts wrapped as
    ``data.prompt_wrapping`` says (the released loader's wrapping by default)."""
    from sodctl.data.files import read_parquet
    from sodctl.data.loaders import load_prompts
    from sodctl.data.prompting import wrap_rl_rows

    path = cfg.data.rl_path
    if path is None:
        from sodctl.data.loaders import _hub_file

        path = _hub_file(
            cfg.data.rl_hub_repo,
            cfg.data.rl_file,
            what="the RL corpus",
            fix="set data.rl_path to the parquet file",
        )
    frame = read_parquet(
        path,
        what="RL data (data.rl_path)",
        columns=("prompt", "reward_model"),
        fix="build it (sodctl data tiny / sodctl data rl) or set data.rl_path",
    )
    if cfg.data.limit is not None:
        frame = frame.head(cfg.data.limit)
    rows, wrapping = wrap_rl_rows(
        frame.to_dict(orient="records"),
        load_prompts(cfg.data.prompts_file),
        cfg.data.prompt_wrapping,
    )
    out = []
    for row in rows:
        rm = row["reward_model"]
        rm = json.loads(rm) if isinstance(rm, str) else rm
        extra = row.get("extra_info") or {}
        extra = json.loads(extra) if isinstance(extra, str) else extra
        gt = rm["ground_truth"]
        # the released reward routes by data_source ('code' in it -> code); the tiny world
        # names the kind in extra_info
        kind = extra.get("kind") or kind_for_source(str(row.get("data_source") or ""), gt)
        if kind == "mcq":
            gt = option_letter(str(gt))
        out.append(
            RLProblem(
                messages=[{"role": m["role"], "content": m["content"]} for m in row["prompt"]],
                ground_truth=gt if isinstance(gt, str) else json.dumps(gt),
                kind=kind,
                solution=str(extra.get("solution") or ""),
                hint=str(extra.get("hint") or ""),
            )
        )
    return RLData(out, str(path), len(rows), wrapping)


def filter_overlong(data: RLData, tokenizer, limit: int) -> RLData:
    """Drop (and count) the problems whose chat prompt is longer than ``limit`` tokens: the
    released ``data.filter_overlong_prompts`` (template without the tool schema)."""
    from sodctl.data.prompting import filter_long_prompts

    indexed = list(enumerate(data.problems))
    kept, dropped = filter_long_prompts(tokenizer, indexed, limit, lambda ip: ip[1].messages)
    if not kept:
        raise SodctlUsageError(
            f"RL data {data.path}: every prompt is longer than data.max_prompt_tokens={limit}; "
            "raise it or check the data"
        )
    return RLData(
        [p for _, p in kept], data.path, data.rows, data.wrapping, [i for i, _ in dropped]
    )


def privileged_messages(problem: RLProblem, privileged: str) -> list[dict[str, str]]:
    """The self-teacher's prompt (OPSD): the user turn extended with the solution or the hint."""
    text = problem.solution if privileged == "solution" else problem.hint
    if not text:
        raise SodctlUsageError(
            f"OPSD needs extra_info.{privileged} in every RL row; a row has none"
        )
    return with_privileged(problem.messages, text, PRIVILEGED_LEADS[privileged])


def pad_batch(
    prompts: Sequence[Sequence[int]],
    responses: Sequence[Sequence[int]],
    pad_id: int,
    device: torch.device,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded prompt+response ids and the prompt lengths."""
    L = max(len(p) + len(r) for p, r in zip(prompts, responses))
    ids = torch.full((len(prompts), L), pad_id, dtype=torch.long)
    for b, (p, r) in enumerate(zip(prompts, responses)):
        seq = list(p) + list(r)
        ids[b, : len(seq)] = torch.tensor(seq)
    plen = torch.tensor([len(p) for p in prompts])
    return ids.to(device), plen.to(device)


def response_log_probs(
    model,
    ids_BL: torch.Tensor,
    plen_B: torch.Tensor,
    T: int,
    *,
    with_entropy: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """log pi(token) of the T response positions of each row, and the entropy of the
    distribution there; differentiable. Positions past a row's end hold arbitrary finite
    values (callers mask them).

    Only the T response positions get logits (``logits_at``), and log pi is logit -
    logsumexp: no (B, L, V) tensor is materialised, which at a real vocabulary (152k) is
    the largest of the step. ``ids_BL`` is right-padded (``pad_batch``)."""
    L = ids_BL.shape[1]
    pos_BT = (plen_B[:, None] - 1 + torch.arange(T, device=ids_BL.device)[None, :]).clamp(max=L - 2)
    tok_BT = ids_BL.gather(1, (pos_BT + 1).clamp(max=L - 1))
    logits_BTV = logits_at(
        model,
        ids_BL,
        lambda x_BLD: x_BLD.gather(1, pos_BT[..., None].expand(-1, -1, x_BLD.shape[-1])),
    ).float()
    lse_BT = torch.logsumexp(logits_BTV, dim=-1)
    lp_BT = logits_BTV.gather(-1, tok_BT[..., None]).squeeze(-1) - lse_BT
    ent_BT = None
    if with_entropy:
        ent_BT = lse_BT - (torch.softmax(logits_BTV, dim=-1) * logits_BTV).sum(-1)
    return lp_BT, ent_BT


def reward_options(cfg: DictConfig) -> dict[str, Any]:
    """The ``training_rewards`` keywords of a config's ``reward`` section."""
    r = cfg.reward
    return {
        "overlong_buffer": r.overlong_buffer,
        "tool_shaping": str(r.tool_shaping),
        "overlong": r.overlong_penalty,
        "grader": str(r.grader),
        "correct_reward": r.correct,
        "incorrect_reward": r.incorrect,
        **code_test_options(r),
    }


def advantage_spec(cfg: DictConfig, method: MethodSpec) -> AdvantageSpec:
    s = cfg.sod
    return AdvantageSpec(
        grpo=method.grpo,
        opd=method.opd,
        weighting=str(method.weighting),
        clip_weights=method.clip_weights,
        eps=s.eps,
        delta=s.delta,
        heuristic_gamma=s.heuristic_gamma,
        opd_coef=s.opd_coef,
        opd_form=str(s.opd_form),
        gate_beta_min=s.gate_beta_min,
        gate_beta_max=s.gate_beta_max,
        gate_gamma=s.gate_gamma,
        pattern_low=s.pattern_low,
        pattern_high=s.pattern_high,
    )


def _tool_rounds(traj: Trajectory) -> int:
    """Assistant turns answered with observations: runs of mask 0 inside the response."""
    m = traj.response_mask
    return sum(1 for i in range(1, len(m)) if m[i] == 0 and m[i - 1] == 1)


class RLTrainer:
    """The state of one RL run (kept small: the loop is ``train_rl``)."""

    def __init__(self, cfg: DictConfig, method: MethodSpec, device: torch.device) -> None:
        self.cfg, self.method, self.device = cfg, method, device
        self.policy, self.tok = load_model(cfg.model.path, cfg.model.dtype, device)
        self.teacher = None
        if method.teacher == "external":
            self.teacher, t_tok = load_model(cfg.teacher.path, cfg.teacher.dtype, device)
            self.teacher.eval().requires_grad_(False)
            if t_tok.get_vocab() != self.tok.get_vocab():
                raise SodctlUsageError(
                    "teacher and student must share a tokenizer (REFERENCE §7); their vocabularies differ"
                )
        self.engine = HFEngine(
            self.policy,
            self.tok,
            max_batch_size=max(1, cfg.train.train_batch_prompts * cfg.rollout.n),
        )
        from sodctl.tools.code_interpreter import CodeInterpreter

        self.tool = CodeInterpreter.from_config(cfg.tool, fault_seed=cfg.seed)
        self.spec = advantage_spec(cfg, method)
        t = cfg.train
        self.optimizer = torch.optim.AdamW(
            self.policy.parameters(), lr=t.lr, betas=tuple(t.betas), weight_decay=t.weight_decay
        )
        self.pad_id = self.tok.pad_token_id if self.tok.pad_token_id is not None else 0

    def score(
        self, model, prompts: Sequence[Sequence[int]], trajs: Sequence[Trajectory], T: int
    ) -> torch.Tensor:
        """Log-probs of the sampled response tokens under ``model`` (no grad), (B, T)."""
        out = []
        mb = max(1, self.cfg.rollout.n * self.cfg.train.ppo_mini_batch_prompts)
        with torch.no_grad():
            for i in range(0, len(trajs), mb):
                ids, plen = pad_batch(
                    prompts[i : i + mb],
                    [t.response_ids for t in trajs[i : i + mb]],
                    self.pad_id,
                    self.device,
                )
                out.append(response_log_probs(model, ids, plen, T)[0])
        return torch.cat(out)


def train_rl(
    cfg: DictConfig, method: MethodSpec, *, resume: bool = False, progress: bool = True
) -> Path:
    """Run (or resume) an RL / distillation experiment; returns the final model directory."""
    from sodctl.progress import progress_bar
    from sodctl.rewards import training_rewards, verl_num_turns

    seed_everything(cfg.seed)
    use_threads(cfg.engine.threads, cfg.engine.cpu_capability)
    device = resolve_device(cfg.engine.device)
    data = load_rl_problems(cfg)  # inputs first: bad ones must not leave a run directory behind
    tr = RLTrainer(cfg, method, device)
    data = filter_overlong(data, tr.tok, cfg.data.max_prompt_tokens)
    problems = data.problems
    run = RunDir(cfg, resume=resume)
    (run.path / "data.json").write_text(json.dumps(data.report(), indent=2))
    t, ro = cfg.train, cfg.rollout
    P = t.train_batch_prompts
    steps_per_epoch = max(1, len(problems) // P)
    total = rl_max_steps(cfg) or t.epochs * steps_per_epoch
    sched = make_scheduler(tr.optimizer, t.lr_schedule, t.warmup_steps, total, t.decay_ratio)
    rng = random.Random(cfg.seed)
    order, cursor, epoch, start = list(range(len(problems))), 0, 0, 0
    rng.shuffle(order)
    ckpt = run.latest_checkpoint() if resume else None
    if ckpt is not None:
        from transformers import AutoModelForCausalLM

        tr.policy.load_state_dict(
            AutoModelForCausalLM.from_pretrained(ckpt, dtype=tr.policy.dtype).state_dict()
        )
        state = run.load_trainer_state(ckpt)
        tr.optimizer.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        order, cursor, epoch, start = state["order"], state["cursor"], state["epoch"], state["step"]
        rng.setstate(state["data_rng"])
    log = MetricsLogger(run.path, cfg, resume=ckpt is not None)
    log.truncate_after(start)
    prompt_cache: dict[tuple[int, str], list[int]] = {}

    def ids_for(i: int, which: str) -> list[int]:
        if (i, which) not in prompt_cache:
            msgs = (
                problems[i].messages
                if which == "student"
                else privileged_messages(problems[i], which)
            )
            prompt_cache[(i, which)] = chat_prompt_ids(tr.tok, msgs, [tr.tool.schema])
        return prompt_cache[(i, which)]

    with progress_bar("[bold]train", disable=not progress) as bar:
        task = bar.add_task("rl", total=total, completed=start)
        for step in range(start, total):
            t0 = time.perf_counter()
            if cursor + P > len(order):
                rng.shuffle(order)
                cursor, epoch = 0, epoch + 1
            batch = order[cursor : cursor + P]
            cursor += P
            idx = [i for i in batch for _ in range(ro.n)]
            group = torch.tensor([g for g in range(P) for _ in range(ro.n)])
            prompts = [ids_for(i, "student") for i in idx]
            # 1. rollouts with the current policy
            tr.policy.eval()
            params = SamplingParams(
                max_new_tokens=cfg.data.max_response_tokens,
                temperature=ro.temperature,
                top_p=ro.top_p,
                top_k=ro.top_k,
                seed=cfg.seed * 1_000_003 + step,
            )
            loop = AgentLoopConfig.from_config(
                cfg, max_turns=ro.max_turns, max_response_tokens=cfg.data.max_response_tokens
            )
            trajs = run_agent_loop(tr.engine, tr.tok, tr.tool, prompts, params, loop)
            t_gen = time.perf_counter() - t0
            # 2. rewards
            rewards = training_rewards(
                [x.text for x in trajs], [problems[i].ground_truth for i in idx], kind=[problems[i].kind for i in idx],
                num_turns=[verl_num_turns(x.num_turns, _tool_rounds(x)) for x in trajs], response_tokens=[len(x.response_ids) for x in trajs],
                max_response_tokens=cfg.data.max_response_tokens, **reward_options(cfg),
            )  # fmt: skip
            r_B = torch.tensor([r.reward for r in rewards], dtype=torch.float32, device=device)
            # 3. old and teacher log-probs of the sampled tokens
            T = max(1, max(len(x.response_ids) for x in trajs))
            mask_BT = torch.zeros(len(trajs), T, dtype=torch.long)
            for b, x in enumerate(trajs):
                mask_BT[b, : len(x.response_mask)] = torch.tensor(x.response_mask, dtype=torch.long)
            mask_BT = mask_BT.to(device)
            old_BT = tr.score(tr.policy, prompts, trajs, T)
            teacher_BT = None
            if method.teacher == "external":
                teacher_BT = tr.score(tr.teacher, prompts, trajs, T)
            elif method.teacher == "self":
                teacher_BT = tr.score(
                    tr.policy, [ids_for(i, method.privileged) for i in idx], trajs, T
                )
            # 4. advantages: the shared core
            adv = compute_advantages(
                tr.spec, rewards_B=r_B, group_ids_B=group.to(device), response_mask=mask_BT, old_log_probs=old_BT,
                teacher_log_probs=teacher_BT, first_error_step_B=torch.tensor([x.first_error_step for x in trajs], device=device),
            )  # fmt: skip
            # 5. PPO updates
            tr.policy.train()
            t1 = time.perf_counter()
            stats = _ppo_updates(tr, prompts, trajs, T, mask_BT, old_BT, teacher_BT, adv, sched)
            t_train = time.perf_counter() - t1
            step_time = time.perf_counter() - t0
            n_tokens = int(mask_BT.sum())
            calls = sum(x.n_tool_calls for x in trajs)
            metrics = {
                "rollout/reward": float(r_B.mean()),
                "rollout/acc": float(sum(r.correct for r in rewards) / len(rewards)),
                "rollout/response_tokens": sum(len(x.response_ids) for x in trajs) / len(trajs),
                "rollout/turns": sum(x.num_turns for x in trajs) / len(trajs),
                "rollout/tool_calls": calls / len(trajs),
                "rollout/tool_error_rate": sum(x.n_tool_errors for x in trajs) / max(calls, 1),
                **stats,
                **adv.metrics,
                "train/lr": sched.get_last_lr()[0],
                "perf/step_time_s": step_time,
                "perf/gen_time_s": t_gen,
                "perf/train_time_s": t_train,
                "perf/tokens_per_s": n_tokens / max(step_time, 1e-9),
                "perf/peak_mem_gb": peak_mem_gb(device),
                "epoch": epoch + cursor / max(len(order), 1),
            }
            log.log(step + 1, metrics)
            log.log_samples(_samples(step + 1, trajs, adv, rewards))
            if t.save_every and (step + 1) % t.save_every == 0 and step + 1 < total:
                run.save_checkpoint(
                    step + 1, tr.policy, tr.tok,
                    {"optimizer": tr.optimizer.state_dict(), "scheduler": sched.state_dict(), "order": order, "cursor": cursor, "epoch": epoch, "data_rng": rng.getstate()},
                    keep=t.keep_checkpoints,
                )  # fmt: skip
            bar.update(task, advance=1)
    log.close()
    return run.export_final(tr.policy, tr.tok)


def _ppo_updates(
    tr: RLTrainer, prompts, trajs, T, mask_BT, old_BT, teacher_BT, adv, sched
) -> dict[str, float]:
    cfg, t = tr.cfg, tr.cfg.train
    mb = max(1, cfg.rollout.n * t.ppo_mini_batch_prompts)
    acc: dict[str, list[float]] = {}
    for _ in range(t.ppo_epochs):
        for i in range(0, len(trajs), mb):
            sl = slice(i, i + mb)
            ids, plen = pad_batch(
                prompts[sl], [x.response_ids for x in trajs[sl]], tr.pad_id, tr.device
            )
            lp_BT, ent_BT = response_log_probs(tr.policy, ids, plen, T, with_entropy=True)
            m = mask_BT[sl]
            loss, st = ppo_clipped_loss(
                lp_BT,
                old_BT[sl],
                adv.advantages_BT[sl],
                m,
                clip_low=t.clip_low,
                clip_high=t.clip_high,
                dual_clip=t.dual_clip,
                agg=str(t.loss_agg),
                log_ratio_clamp=t.log_ratio_clamp,
            )
            parts = {"train/pg_loss": float(loss.detach())}
            if cfg.sod.opd_form == "loss" and adv.token_weights_BT is not None:
                opd_loss, _ = opd_reinforce_loss(
                    lp_BT,
                    teacher_BT[sl],
                    adv.token_weights_BT[sl],
                    m,
                    opd_coef=cfg.sod.opd_coef,
                    agg=t.loss_agg,
                )
                loss = loss + opd_loss
                parts["train/opd_loss"] = float(opd_loss.detach())
            entropy = (ent_BT * m).sum() / m.sum().clamp(min=1)
            if t.entropy_coef:
                loss = loss - t.entropy_coef * entropy
            tr.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            gn = torch.nn.utils.clip_grad_norm_(tr.policy.parameters(), t.grad_clip)
            tr.optimizer.step()
            sched.step()
            parts.update(
                {
                    "train/loss": float(loss.detach()),
                    "train/entropy": float(entropy.detach()),
                    "train/grad_norm": float(gn),
                }
            )
            parts.update({f"train/{k}": float(v) for k, v in st.items()})
            for k, v in parts.items():
                acc.setdefault(k, []).append(v)
    return {k: sum(v) / len(v) for k, v in acc.items()}


def _samples(step: int, trajs: Sequence[Trajectory], adv, rewards) -> list[dict[str, Any]]:
    """A few trajectories with their per-step d_k and w_k (Figure 5 / Appendix G)."""
    if adv.divergence is None:
        return []
    out = []
    n_steps = adv.divergence.steps.n_steps_B.tolist()
    for b in range(min(SAMPLES_PER_STEP, len(trajs))):
        k = n_steps[b]
        code = int(adv.patterns_B[b]) if adv.patterns_B is not None else -1
        out.append(
            {
                "step": step,
                "traj_id": f"{step}-{b}",
                "d": [round(x, 6) for x in adv.divergence.d_BS[b, :k].tolist()],
                "w": [round(x, 6) for x in adv.step_weights_BS[b, :k].tolist()],
                "pattern": PATTERN_NAMES.get(code, "none"),
                "correct": bool(rewards[b].correct),
                "reward": float(rewards[b].reward),
                "num_turns": trajs[b].num_turns,
                "tool_error": trajs[b].n_tool_errors > 0,
            }
        )
    return out
