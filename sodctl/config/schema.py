"""The configuration schema: one typed tree for the whole pipeline.

Every default reproduces the paper (REFERENCE.md §4-§8). Where the paper and the
authors' released code differ, the default is what the released code did (it
produced the published numbers), the better behaviour is a named option, and the
comment says which is which (the audit: RELEASED-PROTOCOL.md; the README's
protocol table lists every decision).

Choices are ``StrEnum``s whose member names equal their values
(``sodctl.config.choices``): OmegaConf 2.3 (pinned by verl's hydra-core) and 2.4
both enforce them on every assignment, where 2.3 rejects ``Literal``
annotations. Ranges and cross-field rules are checked by ``validate`` after all
layers are merged (see ``sodctl.config.loader``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, get_args

from omegaconf import DictConfig, OmegaConf

from sodctl.config.choices import choice_enum
from sodctl.core.advantages import OpdForm as _OpdForm
from sodctl.core.advantages import Weighting as _Weighting
from sodctl.core.ppo import LOSS_AGG_MODES
from sodctl.data.benchmarks import BENCHMARKS
from sodctl.errors import SodctlUsageError
from sodctl.methods import MethodSpec, get_method
from sodctl.methods import Privileged as _Privileged
from sodctl.methods import Stage as _Stage
from sodctl.methods import TeacherSource as _TeacherSource
from sodctl.tools.local import DEFAULT_PRELOAD

SIZES: tuple[str, ...] = ("0.6b", "1.7b", "4b", "14b")
PRESETS: tuple[str, ...] = ("smoke", "tiny", "paper")

# The choices (see the module docstring); each name is also the enum's name, for pickling.
Size = choice_enum("Size", SIZES, module=__name__)
Preset = choice_enum("Preset", PRESETS, module=__name__)
Dtype = choice_enum("Dtype", ("auto", "float32", "bfloat16", "float16"), module=__name__)
Stage = choice_enum("Stage", get_args(_Stage), module=__name__)
Weighting = choice_enum("Weighting", get_args(_Weighting), module=__name__)
TeacherSource = choice_enum("TeacherSource", get_args(_TeacherSource), module=__name__)
Privileged = choice_enum("Privileged", get_args(_Privileged), module=__name__)
OpdForm = choice_enum("OpdForm", get_args(_OpdForm), module=__name__)
GenEngine = choice_enum("GenEngine", ("hf", "vllm"), module=__name__)
TurnLayout = choice_enum("TurnLayout", ("verl", "chat-template"), module=__name__)
ToolBackend = choice_enum("ToolBackend", ("local", "sandbox-fusion"), module=__name__)
PrintMode = choice_enum("PrintMode", ("paper", "repl"), module=__name__)
InvalidCall = choice_enum("InvalidCall", ("released", "end", "error-observation"), module=__name__)
ObservationStyle = choice_enum("ObservationStyle", ("released", "sodctl"), module=__name__)
ToolSchema = choice_enum("ToolSchema", ("released", "sodctl"), module=__name__)
Grader = choice_enum("Grader", ("strict", "math-verify"), module=__name__)
EvalGrader = choice_enum("EvalGrader", ("strict", "math-verify", "both"), module=__name__)
ToolShaping = choice_enum("ToolShaping", ("released", "num-turns", "off"), module=__name__)
CodeCompare = choice_enum("CodeCompare", ("released", "lcb"), module=__name__)
PromptWrapping = choice_enum("PromptWrapping", ("released", "per-source", "none"), module=__name__)
LcbExamples = choice_enum("LcbExamples", ("released", "public", "none"), module=__name__)
LossAgg = choice_enum("LossAgg", LOSS_AGG_MODES, module=__name__)
LrSchedule = choice_enum("LrSchedule", ("constant", "cosine", "linear", "wsd"), module=__name__)
Truncation = choice_enum("Truncation", ("right", "left", "error"), module=__name__)
WandbMode = choice_enum("WandbMode", ("offline", "online", "disabled"), module=__name__)
EngineName = choice_enum("EngineName", ("local", "verl"), module=__name__)


@dataclass
class ModelConfig:
    """The student (``model``) or the external teacher (``teacher``)."""

    size: Size = Size("1.7b")
    # A Hugging Face hub id or a local directory; null means ``zoo[size]``.
    # The loader fills it in, so a resolved config always names the weights.
    path: str | None = None
    dtype: Dtype = Dtype("auto")
    attn_implementation: str = "sdpa"


@dataclass
class TeacherConfig(ModelConfig):
    size: Size = Size("4b")


def _paper_zoo() -> dict[str, str]:
    # The base checkpoints. The paper's teacher is Qwen3-4B *after* SFT + GRPO
    # (experiments/teacher/*), so distillation experiments point ``teacher.path``
    # at that trained checkpoint rather than at zoo["4b"].
    return {
        "0.6b": "Qwen/Qwen3-0.6B",
        "1.7b": "Qwen/Qwen3-1.7B",
        "4b": "Qwen/Qwen3-4B",
        "14b": "Qwen/Qwen3-14B",
    }


@dataclass
class DataConfig:
    """Training corpora (REFERENCE §9), their prompts, and the token budgets of RL (§4)."""

    sft_hub_repo: str = "Gen-Verse/Open-AgentRL-SFT-3K"
    sft_file: str = "full_sft_3k_shuffled_v4.parquet"
    sft_path: str | None = None  # a local parquet in the same schema; wins over the hub
    # A size's own SFT parquet, where it differs from sft_path (none in the paper: teacher and
    # students share the 3K set; the tiny world's teacher slots read one that also shows how to
    # retry after an injected tool fault, standing in for what a larger model brings). An
    # entry wins over sft_path for its size: change it with data.sft_path_by_size[4b]=PATH.
    sft_path_by_size: dict[str, str] = field(default_factory=dict)
    rl_hub_repo: str = "Gen-Verse/Open-AgentRL-30K"
    rl_file: str = "Open-AgentRL-30K.parquet"
    rl_path: str | None = None
    # Tool-free text (a ``text`` column) for the tiny world's pretraining stage
    # (``sodctl sft --pretrain``); null: no pretraining (the paper's base models come pretrained).
    pretrain_path: str | None = None
    out_dir: str = "data"  # where `sodctl data` writes the prepared parquet files
    # RL rows whose chat prompt (template, no tool schema) is longer are dropped and
    # counted (the released data.filter_overlong_prompts=True with 2,560).
    max_prompt_tokens: int = 2560
    max_response_tokens: int = 20480  # all response tokens, tool observations included
    prompts_file: str | None = None  # prompt templates; null = the packaged default
    # How RL rows' prompts are wrapped at load (sodctl.data.prompting): "released" picks
    # one wrapping for the whole file from its first row's data_source, as the released
    # loader did; "per-source" wraps each row by its own data_source (what the released
    # code meant); "none" uses the rows' prompts as they are.
    prompt_wrapping: PromptWrapping = PromptWrapping("released")
    limit: int | None = None  # use only the first N rows (smoke runs)


@dataclass
class MethodConfig:
    """The training method: a registry name plus its switches (``sodctl.methods``).

    The loader fills the switches from the registry entry named by ``name``; a
    user may override a single switch, and the result must still be a valid
    ``MethodSpec`` combination.
    """

    name: str = "sod"
    stage: Stage = Stage("rl")
    grpo: bool = True
    opd: bool = True
    weighting: Weighting = Weighting("sod")
    clip_weights: bool = True
    teacher: TeacherSource = TeacherSource("external")
    privileged: Privileged = Privileged("none")


@dataclass
class SodConfig:
    """Knobs of the step-wise OPD term (REFERENCE §2, §3, §7).

    Step patterns (paper §5.6 / C.2; the paper gives no numbers, these are
    ours, applied by ``sodctl.core.patterns``): a trajectory is *suppressed*
    when some step weight w_k < pattern_low; *stable* when it is not
    suppressed; *recovery* when suppressed and its last weight w_K >=
    pattern_high; *erroneous* when suppressed and w_K < pattern_high.
    """

    eps: float = 1e-6
    # 0.2 in the released training script and the paper's case study; the
    # released config class defaulted to 0.5.
    delta: float = 0.2
    opd_coef: float = 1.0
    # "advantage": folded into the per-token advantage before the PPO updates
    # (the released code: paper-faithful default). "loss": the separate,
    # unclipped REINFORCE-form term of the paper's Eq. 8-10.
    opd_form: OpdForm = OpdForm("advantage")
    heuristic_gamma: float = 0.9  # ablation 1.2: gamma^(k - k_err) after the first tool error
    # The released sigmoid-gated OPD (method opd-gated, RELEASED-PROTOCOL.md §C): every
    # token of a trajectory weighted beta = beta_min + (beta_max - beta_min) *
    # sigmoid(-gamma * A_GRPO); the released run_*_opd.sh scripts used 0 / 0.1 / 1.
    gate_beta_min: float = 0.0
    gate_beta_max: float = 0.1
    gate_gamma: float = 1.0
    pattern_high: float = 0.8
    pattern_low: float = 0.5


@dataclass
class RolloutConfig:
    """On-policy sampling during RL (REFERENCE §4)."""

    n: int = 16
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = -1  # -1: off
    max_turns: int = 16
    engine: GenEngine = GenEngine("hf")
    tensor_parallel_size: int = 1  # vLLM only; the paper ran TP 4
    # Token layout between turns (training and evaluation): "verl" appends the
    # observation turn right after the generated <|im_end|> (no newline), as verl's
    # tool agent loop does; "chat-template" inserts the newline the chat template
    # writes there (what SFT data looks like).
    turn_layout: TurnLayout = TurnLayout("verl")


@dataclass
class ToolConfig:
    """The ``code_interpreter`` tool and how the agent loop calls it (REFERENCE §6)."""

    backend: ToolBackend = ToolBackend("local")
    sandbox_url: str | None = None  # required for sandbox-fusion, e.g. http://host:8080/run_code
    compile_timeout_s: float = 60.0
    run_timeout_s: float = 60.0
    memory_mb: int = 2048
    max_observation_chars: int = 256  # keeps the first and last half around a marker
    # "paper": the released tool (the first ```python block, stripped; the last line
    # wrapped in print(...), even when that breaks it); "repl": any fence, and the
    # value of a trailing expression printed correctly.
    print_mode: PrintMode = PrintMode("paper")
    fault_rate: float = 0.0  # probability of injecting a failed tool run (tests, analysis)
    # Calls run per assistant turn: the first N valid ones (verl's max_parallel_calls,
    # 1 in the released run); null runs every call of the turn.
    max_parallel_calls: int | None = 1
    # A tool-call block that is not a valid call. "released": unparseable blocks are
    # ignored (a turn with no valid call ends the trajectory) and an unknown tool name
    # or non-object arguments get verl's "Error when executing tool: ..." observation;
    # "end": any invalid block counts as an erroneous call and, with no valid call in
    # the turn, ends the trajectory; "error-observation": every invalid block is
    # answered with sodctl's explanation and the loop goes on.
    on_invalid_call: InvalidCall = InvalidCall("released")
    # Observation texts. "released": stdout + stderr with no separator, "" when nothing
    # was printed, "no stdout here" for a run that did not finish, "...(truncated)..."
    # between the kept halves; "sodctl": sentences saying what happened, a newline
    # between stdout and stderr, "[truncated N chars]".
    observations: ObservationStyle = ObservationStyle("released")
    # The tool schema in the system prompt: "released" ("A tool for executing code.")
    # or "sodctl" (a longer description of what persists and what is returned).
    schema: ToolSchema = ToolSchema("released")
    # backend local: the modules every warm sandbox worker imports once, so that a call
    # importing them pays nothing (the code runs the same either way). Each call forks
    # the worker, and numpy + sympy double a fork's cost (~11 -> ~5.5 ms of CPU a call):
    # a world whose programs import neither can leave them out.
    preload: list[str] = field(default_factory=lambda: list(DEFAULT_PRELOAD))


@dataclass
class RewardConfig:
    """Outcome reward and graders (REFERENCE §5); evaluation grades with the same code settings."""

    grader: Grader = Grader("strict")
    correct: float = 1.0
    incorrect: float = -1.0
    # Wrong answers: min(-0.6, score + 0.1 * (num_turns - 2) / 2). "released": the
    # released run never passed num_turns to the reward, so every negative score
    # became -1.1; "num-turns": the rule with the real num_turns; "off".
    tool_shaping: ToolShaping = ToolShaping("released")
    overlong_penalty: bool = True  # DAPO: min(0, -(L - (L_max - buffer)) / buffer)
    overlong_buffer: int = 1024
    # Code answers: stdout compared after rstrip("\n"), exactly ("released"), or by
    # LiveCodeBench's rule (line-wise strip, numbers as Decimals: "lcb").
    code_compare: CodeCompare = CodeCompare("released")
    # The released scorer replaced every "\\n" / "\\t" in the program with a newline /
    # tab before parsing it, which breaks string literals holding "\n" (scored as no
    # code). Off by default (a bug); true reproduces it.
    code_unescape: bool = False
    code_timeout_s: float = 30.0  # per test case (the released scorer)
    code_memory_mb: int = 1024  # per test case (the released sandbox call)


@dataclass
class TrainConfig:
    """RL / distillation optimisation (REFERENCE §4)."""

    lr: float = 1e-6
    train_batch_prompts: int = 64
    ppo_mini_batch_prompts: int = 16  # 64 / 16 = 4 optimiser steps per rollout batch
    ppo_epochs: int = 1
    epochs: int = 1  # teachers: up to 2
    max_steps: int | None = None  # null: max_steps_by_size, else run the epochs out
    # Steps by student size when max_steps is null (the paper preset: Table 4's 120 / 150).
    max_steps_by_size: dict[str, int] = field(default_factory=lambda: {"0.6b": 120, "1.7b": 150})
    clip_low: float = 0.2
    clip_high: float = 0.28
    dual_clip: float = 3.0
    # verl clamps log(pi_theta / pi_old) to +-20 before the exponential; null: no clamp.
    log_ratio_clamp: float | None = 20.0
    loss_agg: LossAgg = LossAgg("token-mean")
    grad_clip: float = 1.0
    # Not stated in the paper: verl's actor defaults (AdamW, constant schedule).
    weight_decay: float = 0.01
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    warmup_steps: int = 0
    lr_schedule: LrSchedule = LrSchedule("constant")
    decay_ratio: float = 0.2  # wsd only: the final fraction of the steps, decayed linearly to 0
    kl_coef: float = 0.0
    entropy_coef: float = 0.0
    save_every: int | None = None  # steps between checkpoints; null: only at the end
    keep_checkpoints: int = 2


@dataclass
class SftConfig:
    """Multi-turn SFT (REFERENCE §7, row "sft"); also the shape of the ``pretrain`` section."""

    lr: float = 5e-5
    epochs: int = 5
    batch_size: int = 128  # sequences per optimiser step
    # Sequences per forward/backward pass; the batch is accumulated. null: the whole batch at once.
    micro_batch_size: int | None = None
    max_length: int = 32768
    truncation: Truncation = Truncation("right")
    max_steps: int | None = None  # null: max_steps_by_size, else run the epochs out
    # Steps by model size when max_steps is null (none in the paper; the tiny world can give
    # its larger teacher slot more steps than the students).
    max_steps_by_size: dict[str, int] = field(default_factory=dict)
    # Not stated in the paper: verl's SFT trainer defaults.
    weight_decay: float = 0.01
    betas: list[float] = field(default_factory=lambda: [0.9, 0.95])
    warmup_ratio: float = 0.1
    lr_schedule: LrSchedule = LrSchedule("cosine")
    decay_ratio: float = 0.2  # wsd only: the final fraction of the steps, decayed linearly to 0
    grad_clip: float = 1.0
    save_every: int | None = None
    keep_checkpoints: int = 1


def _pretrain_defaults() -> SftConfig:
    # The tiny world's pretraining stage (``sodctl sft --pretrain``, on ``data.pretrain_path``):
    # the same loop as SFT, with the loss on every token; the tiny presets size it.
    return SftConfig(epochs=1)


def _paper_benches() -> list[str]:
    return ["aime24", "aime25", "gpqa", "lcb"]


@dataclass
class EvalConfig:
    """avg@k evaluation (REFERENCE §8); the tool and its limits are as in training."""

    benches: list[str] = field(default_factory=_paper_benches)
    k: int = 32
    temperature: float = 1.0
    top_p: float = 0.6
    top_k: int = -1
    max_turns: int = 16
    max_response_tokens: int = 20480
    # Problems whose chat prompt is longer are left out, counted and named in the
    # summary (the released evaluation scripts: MAX_PROMPT_LENGTH=4096).
    max_prompt_tokens: int = 4096
    grader: EvalGrader = EvalGrader("both")
    # The examples shown in a LiveCodeBench prompt: "released" lists every test of the
    # ground truth (as the released prompt did: the grading tests themselves when the
    # data holds hidden ones; sodctl warns), "public" only extra_info's public tests,
    # "none" no examples.
    lcb_examples: LcbExamples = LcbExamples("released")
    limit: int | None = None  # evaluate only the first N problems of each bench
    results_dir: str = "results"
    data_dir: str | None = None  # a local copy of the eval release (else the hub)
    batch_size: int = 64  # trajectories rolled out together


@dataclass
class LoggingConfig:
    wandb_mode: WandbMode = WandbMode("offline")
    project: str = "sodctl"
    entity: str | None = None
    run_name: str | None = None
    log_every: int = 1


# the values ATen's ATEN_CPU_CAPABILITY takes (x86, Arm, POWER, s390x)
CPU_CAPABILITIES = ("default", "avx2", "avx512", "sve256", "vsx", "zvector")


@dataclass
class EngineConfig:
    """Which training driver runs the stage, and on what hardware."""

    name: EngineName = EngineName("local")
    device: str = "auto"  # local engine: auto, cpu, cuda, cuda:N
    # local engine: torch's CPU threads (null: torch's default, one per core). CPU results
    # depend on it (the order of float sums), so a preset that wants one table fixes it.
    threads: int | None = None
    # local engine: ATen's CPU kernels (avx2, avx512, default; null: the best this CPU has).
    # CPU results depend on them too: the same seed on an AVX-512 machine differs bit for bit
    # from an AVX2-only one, unless both run avx2 (ATEN_CPU_CAPABILITY, set for the process)
    cpu_capability: str | None = None
    # reproduce / ablate on the local engine: steps run at once, each in its own process
    # (a step starts once the steps that make its models are done)
    jobs: int = 1
    # verl engine. The trainer pool (actor + vLLM rollout): nnodes x n_gpus_per_node GPUs.
    n_gpus_per_node: int = 1
    nnodes: int = 1
    gpu_memory_utilization: float = 0.6  # vLLM's share of a GPU (rollout and teacher)
    # The teacher pool of the external-teacher methods (OPD, SOD, ablations): verl 0.9.1
    # serves the teacher on GPUs of its own, frozen, with no weight sync.
    teacher_nnodes: int = 1
    teacher_n_gpus_per_node: int = 1
    teacher_tensor_parallel_size: int = 1


@dataclass
class SodctlConfig:
    """The root of every resolved configuration."""

    experiment: str | None = None  # the loader sets it (file name, or "<method>-<size>")
    preset: Preset = Preset("paper")
    seed: int = 42
    output_dir: str = "runs"
    # Where the teacher recipe's runs (experiments/teacher/*) live; students read their
    # teacher from here. With --seeds the pipeline points it at the seeds' common root, so
    # every seed's students distil from one teacher, as the paper's do.
    teacher_dir: str = "${output_dir}"
    model: ModelConfig = field(default_factory=ModelConfig)
    teacher: TeacherConfig = field(default_factory=TeacherConfig)
    zoo: dict[str, str] = field(default_factory=_paper_zoo)
    data: DataConfig = field(default_factory=DataConfig)
    method: MethodConfig = field(default_factory=MethodConfig)
    sod: SodConfig = field(default_factory=SodConfig)
    rollout: RolloutConfig = field(default_factory=RolloutConfig)
    tool: ToolConfig = field(default_factory=ToolConfig)
    reward: RewardConfig = field(default_factory=RewardConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    sft: SftConfig = field(default_factory=SftConfig)
    pretrain: SftConfig = field(default_factory=_pretrain_defaults)
    eval: EvalConfig = field(default_factory=EvalConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    engine: EngineConfig = field(default_factory=EngineConfig)


METHOD_SWITCHES: tuple[str, ...] = (
    "stage",
    "grpo",
    "opd",
    "weighting",
    "clip_weights",
    "teacher",
    "privileged",
)


def max_steps_of(cfg: DictConfig, section: str) -> int | None:
    """A stage's step count: ``<section>.max_steps``, else its ``max_steps_by_size[model.size]``,
    else None (run the section's ``epochs``). ``section``: train, sft or pretrain."""
    t = cfg[section]
    return t.max_steps or t.max_steps_by_size.get(str(cfg.model.size))


def sft_path_of(cfg: DictConfig) -> str | None:
    """The SFT parquet of ``cfg``'s model: ``data.sft_path_by_size[model.size]``, else
    ``data.sft_path`` (None: the hub file)."""
    return cfg.data.sft_path_by_size.get(str(cfg.model.size)) or cfg.data.sft_path


def rl_max_steps(cfg: DictConfig) -> int | None:
    """The RL step count (``max_steps_of(cfg, "train")``)."""
    return max_steps_of(cfg, "train")


def method_spec(cfg: DictConfig) -> MethodSpec:
    """The ``MethodSpec`` a resolved config describes (registry entry plus any overridden switch)."""
    try:
        base = get_method(cfg.method.name)
    except KeyError as e:  # UnknownMethodError
        raise SodctlUsageError(str(e)) from None
    switches = {k: cfg.method[k] for k in METHOD_SWITCHES}
    if all(getattr(base, k) == v for k, v in switches.items()):
        return base
    try:
        return replace(base, ablation_id=None, aliases=(), **switches)
    except ValueError as e:
        raise SodctlUsageError(
            f"invalid method switches: {e}; see 'sodctl inspect methods' for valid combinations"
        ) from None


# --- validation ---------------------------------------------------------------------------


def _positive(x: Any) -> bool:
    return x > 0


def _non_negative(x: Any) -> bool:
    return x >= 0


def _unit_open_closed(x: Any) -> bool:
    return 0 < x <= 1


def _unit_closed(x: Any) -> bool:
    return 0 <= x <= 1


def _unit_half_open(x: Any) -> bool:
    return 0 <= x < 1


def _top_k(x: Any) -> bool:
    return x == -1 or x > 0


def _optional_positive(x: Any) -> bool:
    return x is None or x > 0


def _betas(x: Any) -> bool:
    return len(x) == 2 and all(0 <= b < 1 for b in x)


# (key, predicate, what the value must be)
_RANGES: tuple[tuple[str, Callable[[Any], bool], str], ...] = (
    ("seed", _non_negative, "a non-negative integer"),
    ("data.max_prompt_tokens", _positive, "a positive integer"),
    ("data.max_response_tokens", _positive, "a positive integer"),
    ("data.limit", _optional_positive, "a positive integer or null"),
    ("sod.eps", _positive, "a positive number"),
    ("sod.delta", _non_negative, "a non-negative number (use .inf for no clipping)"),
    ("sod.opd_coef", _non_negative, "a non-negative number"),
    ("sod.heuristic_gamma", _unit_closed, "in [0, 1]"),
    ("sod.gate_beta_min", _non_negative, "a non-negative number"),
    ("sod.gate_beta_max", _non_negative, "a non-negative number"),
    ("sod.gate_gamma", _non_negative, "a non-negative number"),
    ("sod.pattern_high", _non_negative, "a non-negative number"),
    ("sod.pattern_low", _non_negative, "a non-negative number"),
    ("rollout.n", _positive, "a positive integer"),
    ("rollout.temperature", _non_negative, "a non-negative number"),
    ("rollout.top_p", _unit_open_closed, "in (0, 1]"),
    ("rollout.top_k", _top_k, "-1 (off) or a positive integer"),
    ("rollout.max_turns", _positive, "a positive integer"),
    ("rollout.tensor_parallel_size", _positive, "a positive integer"),
    ("tool.compile_timeout_s", _positive, "a positive number of seconds"),
    ("tool.run_timeout_s", _positive, "a positive number of seconds"),
    ("tool.memory_mb", _positive, "a positive integer"),
    ("tool.max_observation_chars", _positive, "a positive integer"),
    ("tool.fault_rate", _unit_closed, "a probability in [0, 1]"),
    ("tool.max_parallel_calls", _optional_positive, "a positive integer or null (every call)"),
    ("reward.overlong_buffer", _positive, "a positive integer"),
    ("reward.code_timeout_s", _positive, "a positive number of seconds"),
    ("reward.code_memory_mb", _positive, "a positive integer"),
    ("train.lr", _positive, "a positive number"),
    ("train.train_batch_prompts", _positive, "a positive integer"),
    ("train.ppo_mini_batch_prompts", _positive, "a positive integer"),
    ("train.ppo_epochs", _positive, "a positive integer"),
    ("train.epochs", _positive, "a positive integer"),
    ("train.max_steps", _optional_positive, "a positive integer or null"),
    ("train.clip_low", _unit_half_open, "in [0, 1)"),
    ("train.clip_high", _non_negative, "a non-negative number"),
    ("train.dual_clip", lambda x: x > 1, "greater than 1"),
    ("train.log_ratio_clamp", _optional_positive, "a positive number or null (no clamp)"),
    ("train.grad_clip", _positive, "a positive number"),
    ("train.weight_decay", _non_negative, "a non-negative number"),
    ("train.betas", _betas, "two numbers in [0, 1)"),
    ("train.warmup_steps", _non_negative, "a non-negative integer"),
    ("train.decay_ratio", _unit_open_closed, "in (0, 1]"),
    ("train.kl_coef", _non_negative, "a non-negative number"),
    ("train.entropy_coef", _non_negative, "a non-negative number"),
    ("train.save_every", _optional_positive, "a positive integer or null"),
    ("train.keep_checkpoints", _positive, "a positive integer"),
    *(
        (f"{section}.{key}", ok, requirement)
        for section in ("sft", "pretrain")
        for key, ok, requirement in (
            ("lr", _positive, "a positive number"),
            ("epochs", _positive, "a positive integer"),
            ("batch_size", _positive, "a positive integer"),
            ("micro_batch_size", _optional_positive, "a positive integer or null"),
            ("max_length", _positive, "a positive integer"),
            ("max_steps", _optional_positive, "a positive integer or null"),
            ("weight_decay", _non_negative, "a non-negative number"),
            ("betas", _betas, "two numbers in [0, 1)"),
            ("warmup_ratio", _unit_half_open, "in [0, 1)"),
            ("decay_ratio", _unit_open_closed, "in (0, 1]"),
            ("grad_clip", _positive, "a positive number"),
            ("save_every", _optional_positive, "a positive integer or null"),
            ("keep_checkpoints", _positive, "a positive integer"),
        )
    ),
    ("eval.k", _positive, "a positive integer"),
    ("eval.temperature", _non_negative, "a non-negative number"),
    ("eval.top_p", _unit_open_closed, "in (0, 1]"),
    ("eval.top_k", _top_k, "-1 (off) or a positive integer"),
    ("eval.max_turns", _positive, "a positive integer"),
    ("eval.max_response_tokens", _positive, "a positive integer"),
    ("eval.max_prompt_tokens", _positive, "a positive integer"),
    ("eval.limit", _optional_positive, "a positive integer or null"),
    ("engine.threads", _optional_positive, "a positive integer or null (torch's default)"),
    ("engine.jobs", _positive, "a positive integer (1: one step at a time)"),
    (
        "engine.cpu_capability",
        lambda x: x is None or x in CPU_CAPABILITIES,
        f"one of {', '.join(CPU_CAPABILITIES)} or null (the best this CPU has)",
    ),
    ("logging.log_every", _positive, "a positive integer"),
    ("engine.n_gpus_per_node", _positive, "a positive integer"),
    ("engine.nnodes", _positive, "a positive integer"),
    ("engine.gpu_memory_utilization", _unit_open_closed, "in (0, 1]"),
    ("engine.teacher_nnodes", _positive, "a positive integer"),
    ("engine.teacher_n_gpus_per_node", _positive, "a positive integer"),
    ("engine.teacher_tensor_parallel_size", _positive, "a positive integer"),
)


def validate(cfg: DictConfig) -> None:
    """Check ranges and cross-field rules of a merged config; raise ``SodctlUsageError``."""
    for key, ok, requirement in _RANGES:
        value = OmegaConf.select(cfg, key)
        if isinstance(value, float) and math.isnan(value) or not ok(value):
            raise SodctlUsageError(f"config key '{key}' must be {requirement}, got {value!r}")

    train = cfg.train
    for section in ("train", "sft", "pretrain"):
        for size, steps in cfg[section].max_steps_by_size.items():
            if size not in SIZES or not isinstance(steps, int) or steps <= 0:
                raise SodctlUsageError(
                    f"config key '{section}.max_steps_by_size[{size}]' must map a size "
                    f"({', '.join(SIZES)}) to a positive integer, got {steps!r}"
                )
    for size, path in cfg.data.sft_path_by_size.items():
        if size not in SIZES or not isinstance(path, str) or not path:
            raise SodctlUsageError(
                f"config key 'data.sft_path_by_size[{size}]' must map a size "
                f"({', '.join(SIZES)}) to a parquet path, got {path!r}"
            )
    if train.train_batch_prompts % train.ppo_mini_batch_prompts:
        raise SodctlUsageError(
            "config key 'train.ppo_mini_batch_prompts' must divide 'train.train_batch_prompts' "
            f"({train.ppo_mini_batch_prompts} does not divide {train.train_batch_prompts})"
        )
    if cfg.sod.pattern_low > cfg.sod.pattern_high:
        raise SodctlUsageError(
            f"config key 'sod.pattern_low' ({cfg.sod.pattern_low}) must not exceed "
            f"'sod.pattern_high' ({cfg.sod.pattern_high})"
        )
    if cfg.sod.gate_beta_min > cfg.sod.gate_beta_max:
        raise SodctlUsageError(
            f"config key 'sod.gate_beta_min' ({cfg.sod.gate_beta_min}) must not exceed "
            f"'sod.gate_beta_max' ({cfg.sod.gate_beta_max})"
        )
    if cfg.tool.backend == "sandbox-fusion" and not cfg.tool.sandbox_url:
        raise SodctlUsageError(
            "tool.backend=sandbox-fusion needs tool.sandbox_url (e.g. tool.sandbox_url=http://host:8080/run_code)"
        )
    _validate_benches(list(cfg.eval.benches))
    method_spec(cfg)  # raises on an invalid switch combination


def _validate_benches(benches: list[str]) -> None:
    if not benches:
        raise SodctlUsageError("config key 'eval.benches' must name at least one benchmark")
    for name in benches:
        if name not in BENCHMARKS:
            known = ", ".join(BENCHMARKS)
            raise SodctlUsageError(
                f"config key 'eval.benches': unknown benchmark {name!r}; known: {known}"
            )
    if len(set(benches)) != len(benches):
        raise SodctlUsageError(f"config key 'eval.benches' lists a benchmark twice: {benches}")
