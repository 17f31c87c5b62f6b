"""The method registry: every training method of the paper, as data.

A method is a small frozen record of switches (is the GRPO term on? the OPD
term? which step weighting? whose log-probs are the teacher's? which
privileged context?). Engines read these switches; nothing branches on a
method's *name*. Table rows and ablation names resolve through here, so
``sodctl ablate uniform-weighting`` and Table 2's "(1.1) w/ Uniform Weighting"
are the same record.

REFERENCE.md §7 is the source of every entry.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal, get_args

from sodctl.core.advantages import Weighting

Stage = Literal["base", "sft", "rl"]
TeacherSource = Literal["none", "external", "self"]
Privileged = Literal["none", "solution", "hint"]

WEIGHTINGS: tuple[str, ...] = get_args(Weighting)
TEACHER_SOURCES: tuple[str, ...] = get_args(TeacherSource)
PRIVILEGED: tuple[str, ...] = get_args(Privileged)


@dataclass(frozen=True)
class MethodSpec:
    """The switches that define one training method.

    stage        what produces the model: ``base`` (nothing: evaluate as is),
                 ``sft`` (supervised fine-tuning), ``rl`` (on-policy RL/distillation
                 starting from the SFT checkpoint).
    grpo         include the group-relative outcome advantage.
    opd          include the on-policy distillation term.
    weighting    step weighting of the OPD term (``none`` when ``opd`` is off).
    clip_weights apply the ``1 + delta`` upper bound to SOD weights.
    teacher      ``external`` (a separate teacher model), ``self`` (the student
                 scoring its own tokens under a privileged prompt), or ``none``.
    privileged   what extends the self-teacher's prompt: the ground-truth
                 ``solution`` or a short ``hint`` (``none`` otherwise).
    """

    name: str
    label: str
    description: str
    stage: Stage
    grpo: bool = False
    opd: bool = False
    weighting: Weighting = "none"
    clip_weights: bool = True
    teacher: TeacherSource = "none"
    privileged: Privileged = "none"
    ablation_id: str | None = None
    aliases: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if self.opd != (self.weighting != "none"):
            raise ValueError(
                f"method {self.name!r}: weighting must be 'none' exactly when opd is off"
            )
        if self.opd != (self.teacher != "none"):
            raise ValueError(f"method {self.name!r}: an OPD method needs a teacher, and only it")
        if (self.teacher == "self") != (self.privileged != "none"):
            raise ValueError(
                f"method {self.name!r}: a self-teacher needs privileged context, and only it"
            )
        if self.stage != "rl" and (self.grpo or self.opd):
            raise ValueError(f"method {self.name!r}: GRPO/OPD terms need stage 'rl'")
        if self.stage == "rl" and not (self.grpo or self.opd):
            raise ValueError(f"method {self.name!r}: an RL method needs the GRPO or the OPD term")
        if self.weighting == "gated" and not self.grpo:
            raise ValueError(f"method {self.name!r}: the gated weighting needs the GRPO term")

    @property
    def needs_teacher_model(self) -> bool:
        return self.teacher == "external"

    def settings(self) -> dict[str, object]:
        """The switches as a plain dict (what the config's ``method`` section holds)."""
        d = asdict(self)
        d.pop("aliases")
        return d


_RL = "rl"

METHODS: dict[str, MethodSpec] = {
    m.name: m
    for m in [
        MethodSpec("vanilla", "Vanilla", "The base model, untrained.", "base"),
        MethodSpec(
            "sft",
            "SFT",
            "Multi-turn SFT on the tool-use corpus; loss on assistant tokens only.",
            "sft",
        ),
        MethodSpec(
            "grpo",
            "GRPO",
            "GRPO with outcome rewards from the SFT checkpoint (also the teacher recipe).",
            _RL,
            grpo=True,
            ablation_id="2.2",
            aliases=("no-stepwise-opd",),
        ),
        MethodSpec(
            "opd",
            "OPD",
            "GRPO + on-policy distillation from an external teacher, every step weighted 1.",
            _RL,
            grpo=True,
            opd=True,
            weighting="uniform",
            teacher="external",
            ablation_id="1.1",
            aliases=("uniform-weighting",),
        ),
        MethodSpec(
            "opd-gated",
            "OPD (gated)",
            "The released code's OPD: GRPO + OPD with every token of a trajectory weighted "
            "beta_min + (beta_max - beta_min) * sigmoid(-gamma * A_GRPO).",
            _RL,
            grpo=True,
            opd=True,
            weighting="gated",
            teacher="external",
        ),
        MethodSpec(
            "naive-opd",
            "naive OPD",
            "On-policy distillation alone (no GRPO term), uniform step weights.",
            _RL,
            opd=True,
            weighting="uniform",
            teacher="external",
        ),
        MethodSpec(
            "sod",
            "SOD (Ours)",
            "GRPO + step-wise OPD: steps weighted by min((d_1+eps)/(d_k+eps), 1+delta).",
            _RL,
            grpo=True,
            opd=True,
            weighting="sod",
            teacher="external",
        ),
        MethodSpec(
            "opsd-gt",
            "OPSD (w/ GT)",
            "On-policy self-distillation: the student, prompted with the ground-truth solution, is the teacher.",
            _RL,
            grpo=True,
            opd=True,
            weighting="uniform",
            teacher="self",
            privileged="solution",
        ),
        MethodSpec(
            "opsd-hint",
            "OPSD (w/ Hint)",
            "On-policy self-distillation with a short hint (no final answer) as privileged context.",
            _RL,
            grpo=True,
            opd=True,
            weighting="uniform",
            teacher="self",
            privileged="hint",
        ),
        MethodSpec(
            "heuristic-weighting",
            "w/ Heuristic Weighting",
            "Weight 1 up to the first erroneous tool call's step k_err, then gamma^(k - k_err).",
            _RL,
            grpo=True,
            opd=True,
            weighting="heuristic",
            teacher="external",
            ablation_id="1.2",
        ),
        MethodSpec(
            "mask-after-wrong",
            "w/ Mask After Wrong",
            "Weight 0 for every step after the first erroneous tool call.",
            _RL,
            grpo=True,
            opd=True,
            weighting="mask-after-wrong",
            teacher="external",
            ablation_id="1.3",
        ),
        MethodSpec(
            "no-clipping",
            "w/o Weight Clipping",
            "SOD weights without the 1 + delta upper bound.",
            _RL,
            grpo=True,
            opd=True,
            weighting="sod",
            clip_weights=False,
            teacher="external",
            ablation_id="1.4",
        ),
        MethodSpec(
            "no-grpo",
            "w/o GRPO",
            "SOD's step-weighted OPD term alone, without the GRPO advantage.",
            _RL,
            opd=True,
            weighting="sod",
            teacher="external",
            ablation_id="2.1",
            aliases=("sod-no-grpo",),
        ),
    ]
}

_ALIASES: dict[str, str] = {a: m.name for m in METHODS.values() for a in m.aliases}

# The rows of the paper's tables, in the paper's order: (method name or alias, row label).
TABLE_ROWS: dict[str, tuple[tuple[str, str], ...]] = {
    # Table 1's and Table 5's OPD row (36.27 at 1.7B) is the released code's OPD, the gated
    # form; Table 2's (1.1) uniform weighting (34.70) is a different run: every step
    # weighted 1 with coefficient 1, as the paper describes that variant.
    "table1": (
        ("vanilla", "Vanilla"),
        ("sft", "SFT"),
        ("grpo", "GRPO"),
        ("opd-gated", "OPD"),
        ("opsd-gt", "OPSD (w/ GT)"),
        ("opsd-hint", "OPSD (w/ Hint)"),
        ("sod", "SOD (Ours)"),
    ),
    "table2": (
        ("uniform-weighting", "(1.1) w/ Uniform Weighting"),
        ("heuristic-weighting", "(1.2) w/ Heuristic Weighting"),
        ("mask-after-wrong", "(1.3) w/ Mask After Wrong"),
        ("no-clipping", "(1.4) w/o Weight Clipping"),
        ("no-grpo", "(2.1) w/o GRPO"),
        ("no-stepwise-opd", "(2.2) w/o Step-wise OPD"),
        ("sod", "SOD (Ours)"),
    ),
    "table5": (
        ("naive-opd", "naive OPD"),
        ("opd-gated", "OPD"),
        ("no-grpo", "SOD (w/o GRPO)"),
        ("sod", "SOD"),
    ),
}

# What `sodctl ablate NAME` accepts: Table 2's variants and Table 5's naive OPD.
ABLATIONS: tuple[str, ...] = tuple(n for n, _ in TABLE_ROWS["table2"][:-1]) + ("naive-opd",)


class UnknownMethodError(KeyError):
    def __str__(self) -> str:  # KeyError quotes its message; we want plain text
        return str(self.args[0])


def canonical_name(name: str) -> str:
    """The registry name for ``name`` (which may be an alias such as ``uniform-weighting``)."""
    if name in METHODS:
        return name
    if name in _ALIASES:
        return _ALIASES[name]
    known = ", ".join(sorted([*METHODS, *_ALIASES]))
    raise UnknownMethodError(f"unknown method {name!r}; known methods: {known}")


def get_method(name: str) -> MethodSpec:
    """Look up a method by name or alias; raises ``UnknownMethodError`` naming the choices."""
    return METHODS[canonical_name(name)]
