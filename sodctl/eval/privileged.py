"""Can a model use a solution or hint placed in its prompt? Accuracy with and without.

OPSD's self-teacher is the student shown the problem with a privileged text after
it (``PRIVILEGED_LEADS``: the reference solution, or a hint). Its signal is only as
good as the model's reading of that text, so the tiny world's calibration measures
it directly: the same RL problems, the same sampling seeds and the same tool (its
injected faults included), rolled out with the plain prompt and with each lead,
graded as evaluation grades. The benchmark files carry no solutions or hints, so
the problems are the RL corpus's (``data.rl_path``), as OPSD sees them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from omegaconf import DictConfig

LEADS = ("solution", "hint")


@dataclass(frozen=True)
class PrivilegedAccuracy:
    """Accuracy (%) per prompt variant (plain, solution, hint), overall and per kind."""

    model: str
    n_problems: int
    k: int
    overall: dict[str, float]
    by_kind: dict[str, dict[str, float]]

    def gain(self, lead: str) -> float:
        """Points gained by the lead over the plain prompt."""
        return self.overall[lead] - self.overall["plain"]


def privileged_accuracy(
    cfg: DictConfig,
    model_path: str,
    *,
    n: int = 128,
    k: int = 2,
    leads: Sequence[str] = LEADS,
) -> PrivilegedAccuracy:
    """Roll out the first ``n`` RL problems ``k`` times with each prompt variant."""
    from sodctl.engines.local.rl import load_rl_problems, privileged_messages
    from sodctl.eval.runner import config_grader, make_engine
    from sodctl.rollout.agent import AgentLoopConfig, chat_prompt_ids, run_agent_loop
    from sodctl.rollout.engine import SamplingParams
    from sodctl.tools.code_interpreter import CodeInterpreter

    problems = load_rl_problems(cfg).problems[:n]
    engine = make_engine(cfg, model_path)
    tok = engine.tokenizer
    tool = CodeInterpreter.from_config(cfg.tool, fault_seed=cfg.seed)
    grade = config_grader(cfg)
    ev = cfg.eval
    loop = AgentLoopConfig.from_config(
        cfg, max_turns=ev.max_turns, max_response_tokens=ev.max_response_tokens
    )
    correct: dict[str, dict[str, list[bool]]] = {}
    for variant in ("plain", *leads):
        msgs = [
            p.messages if variant == "plain" else privileged_messages(p, variant) for p in problems
        ]
        units = [(i, s) for i in range(len(problems)) for s in range(k)]
        by_kind: dict[str, list[bool]] = defaultdict(list)
        for start in range(0, len(units), ev.batch_size):
            batch = units[start : start + ev.batch_size]
            params = SamplingParams(
                max_new_tokens=ev.max_response_tokens,
                temperature=ev.temperature,
                top_p=ev.top_p,
                top_k=ev.top_k,
                seed=cfg.seed * 1_000_003 + start,  # the same samples' seeds for every variant
            )
            ids = [chat_prompt_ids(tok, msgs[i], [tool.schema]) for i, _ in batch]
            for (i, _), tr in zip(batch, run_agent_loop(engine, tok, tool, ids, params, loop)):
                p = problems[i]
                result = grade(tr.text, p.ground_truth, kind=p.kind, grader="strict")
                by_kind[p.kind].append(bool(result.correct))
        correct[variant] = by_kind

    def pct(xs: list[bool]) -> float:
        return 100.0 * sum(xs) / max(len(xs), 1)

    kinds = sorted({kind for v in correct.values() for kind in v})
    return PrivilegedAccuracy(
        model=model_path,
        n_problems=len(problems),
        k=k,
        overall={v: pct([x for xs in c.values() for x in xs]) for v, c in correct.items()},
        by_kind={kind: {v: pct(c.get(kind, [])) for v, c in correct.items()} for kind in kinds},
    )
