"""The SOD method as pure tensor functions: no I/O, no models, no engines.

Both engines (local and verl) call exactly these. Shapes are named by suffix:
``B`` batch, ``T`` response tokens, ``S`` steps.
"""

from sodctl.core.advantages import (
    AdvantageOutput,
    AdvantageSpec,
    compute_advantages,
    divergence_metrics,
)
from sodctl.core.grpo import group_advantages, group_ids_for
from sodctl.core.opd import opd_advantages, opd_reinforce_loss, opd_signal
from sodctl.core.patterns import (
    ERRONEOUS,
    NO_STEPS,
    PATTERN_NAMES,
    RECOVERY,
    STABLE,
    classify_step_patterns,
    pattern_fractions,
)
from sodctl.core.ppo import LOSS_AGG_MODES, aggregate_loss, ppo_clipped_loss
from sodctl.core.shaping import overlong_penalty, tool_turn_shaping
from sodctl.core.sod import (
    NO_ERROR,
    StepDivergence,
    gated_step_weights,
    heuristic_step_weights,
    mask_after_wrong_step_weights,
    sod_step_weights,
    sod_token_weights,
    step_divergence,
    uniform_step_weights,
)
from sodctl.core.steps import (
    Steps,
    broadcast_steps,
    find_steps,
    last_step_values,
    step_index,
    step_spans,
    step_sums,
    step_token_counts,
)

__all__ = [
    "ERRONEOUS",
    "LOSS_AGG_MODES",
    "NO_ERROR",
    "NO_STEPS",
    "PATTERN_NAMES",
    "RECOVERY",
    "STABLE",
    "AdvantageOutput",
    "AdvantageSpec",
    "StepDivergence",
    "Steps",
    "aggregate_loss",
    "broadcast_steps",
    "classify_step_patterns",
    "compute_advantages",
    "divergence_metrics",
    "find_steps",
    "gated_step_weights",
    "group_advantages",
    "group_ids_for",
    "heuristic_step_weights",
    "last_step_values",
    "mask_after_wrong_step_weights",
    "opd_advantages",
    "opd_reinforce_loss",
    "opd_signal",
    "overlong_penalty",
    "pattern_fractions",
    "ppo_clipped_loss",
    "sod_step_weights",
    "sod_token_weights",
    "step_divergence",
    "step_index",
    "step_spans",
    "step_sums",
    "step_token_counts",
    "tool_turn_shaping",
    "uniform_step_weights",
]
