"""The configuration schema: one typed tree for the whole pipeline.

Every default reproduces the paper (REFERENCE.md §4-§8); where the paper is
silent the default is what the authors' verl-based run used, and the comment
says so. Choices are ``Literal`` types, which OmegaConf (>= 2.4) enforces on
every assignment; ranges and cross-field rules are checked by ``validate``
after all layers are merged (see ``sodctl.config.loader``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from omegaconf import DictConfig, OmegaConf

from sodctl.data.benchmarks import BENCHMARKS
from sodctl.errors import SodctlUsageError
from sodctl.methods import MethodSpec, Privileged, Stage, TeacherSource, Weighting, get_method

Size = Literal["0.6b", "1.7b", "4b", "14b"]
SIZES: tuple[str, ...] = ("0.6b", "1.7b", "4b", "14b")
Dtype = Literal["auto", "float32", "bfloat16", "float16"]
Preset = Literal["smoke", "tiny", "paper"]
PRESETS: tuple[str, ...] = ("smoke", "tiny", "paper")


@dataclass
class ModelConfig:
    """The student (``model``) or the external teacher (``teacher``)."""

    size: Size = "1.7b"
    # A Hugging Face hub id or a local directory; null means ``zoo[size]``.
    # The loader fills it in, so a resolved config always names the weights.
    path: str | None = None
    dtype: Dtype = "auto"
    attn_implementation: str = "sdpa"


@dataclass
class TeacherConfig(ModelConfig):
    size: Size = "4b"


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
    """Training corpora (REFERENCE §9) and the token budgets of RL (§4)."""

    sft_hub_repo: str = "Gen-Verse/Open-AgentRL-SFT-3K"
    sft_file: str = "full_sft_3k_shuffled_v4.parquet"
    sft_path: str | None = None  # a local parquet in the same schema; wins over the hub
    rl_hub_repo: str = "Gen-Verse/Open-AgentRL-30K"
    rl_file: str = "Open-AgentRL-30K.parquet"
    rl_path: str | None = None
    # Tool-free text (a ``text`` column) for the tiny world's pretraining stage
    # (``sodctl sft --pretrain``); null: no pretraining (the paper's base models come pretrained).
    pretrain_path: str | None = None
    out_dir: str = "data"  # where `sodctl data` writes the prepared parquet files
    max_prompt_tokens: int = 2560
    max_response_tokens: int = 20480  # all response tokens, tool observations included
    prompts_file: str | None = None  # prompt templates; null = the packaged default
    limit: int | None = None  # use only the first N rows (smoke runs)


@dataclass
class MethodConfig:
    """The training method: a registry name plus its switches (``sodctl.methods``).

    The loader fills the switches from the registry entry named by ``name``; a
    user may override a single switch, and the result must still be a valid
    ``MethodSpec`` combination.
    """

    name: str = "sod"
    stage: Stage = "rl"
    grpo: bool = True
    opd: bool = True
    weighting: Weighting = "sod"
    clip_weights: bool = True
    teacher: TeacherSource = "external"
    privileged: Privileged = "none"


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
    opd_form: Literal["advantage", "loss"] = "advantage"
    heuristic_gamma: float = 0.9  # ablation 1.2: gamma^(k - k_err) after the first tool error
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
    engine: Literal["hf", "vllm"] = "hf"
    tensor_parallel_size: int = 1  # vLLM only; the paper ran TP 4


@dataclass
class ToolConfig:
    """The ``code_interpreter`` tool (REFERENCE §6)."""

    backend: Literal["local", "sandbox-fusion"] = "local"
    sandbox_url: str | None = None  # required for sandbox-fusion, e.g. http://host:8080/run_code
    compile_timeout_s: float = 60.0
    run_timeout_s: float = 60.0
    memory_mb: int = 2048
    max_observation_chars: int = 256  # keeps the first and last half around a marker
    # "paper": the released wrapper (wraps the last line in print(...), even when
    # that breaks it); "repl": print the value of a trailing expression correctly.
    print_mode: Literal["paper", "repl"] = "paper"
    fault_rate: float = 0.0  # probability of injecting a failed tool run (tests, analysis)
    on_invalid_call: Literal["end", "error-observation"] = "end"


@dataclass
class RewardConfig:
    """Outcome reward (REFERENCE §5)."""

    grader: Literal["strict", "math-verify"] = "strict"
    correct: float = 1.0
    incorrect: float = -1.0
    # Wrong answers: min(-0.6, score + 0.1 * (num_turns - 2) / 2) with the real
    # num_turns (the released run never passed it, so every wrong answer got -1.1).
    tool_shaping: bool = True
    overlong_penalty: bool = True  # DAPO: min(0, -(L - (L_max - buffer)) / buffer)
    overlong_buffer: int = 1024


@dataclass
class TrainConfig:
    """RL / distillation optimisation (REFERENCE §4)."""

    lr: float = 1e-6
    train_batch_prompts: int = 64
    ppo_mini_batch_prompts: int = 16  # 64 / 16 = 4 optimiser steps per rollout batch
    ppo_epochs: int = 1
    epochs: int = 1  # teachers: up to 2
    max_steps: int | None = None  # null: run the epochs out
    clip_low: float = 0.2
    clip_high: float = 0.28
    dual_clip: float = 3.0
    loss_agg: Literal["token-mean", "seq-mean-token-sum", "seq-mean-token-mean"] = "token-mean"
    grad_clip: float = 1.0
    # Not stated in the paper: verl's actor defaults (AdamW, constant schedule).
    weight_decay: float = 0.01
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    warmup_steps: int = 0
    lr_schedule: Literal["constant", "cosine", "linear"] = "constant"
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
    truncation: Literal["right", "left", "error"] = "right"
    max_steps: int | None = None
    # Not stated in the paper: verl's SFT trainer defaults.
    weight_decay: float = 0.01
    betas: list[float] = field(default_factory=lambda: [0.9, 0.95])
    warmup_ratio: float = 0.1
    lr_schedule: Literal["constant", "cosine", "linear"] = "cosine"
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
    grader: Literal["strict", "math-verify", "both"] = "both"
    limit: int | None = None  # evaluate only the first N problems of each bench
    results_dir: str = "results"
    data_dir: str | None = None  # a local copy of the eval release (else the hub)
    batch_size: int = 64  # trajectories rolled out together


@dataclass
class LoggingConfig:
    wandb_mode: Literal["offline", "online", "disabled"] = "offline"
    project: str = "sodctl"
    entity: str | None = None
    run_name: str | None = None
    log_every: int = 1


@dataclass
class EngineConfig:
    """Which training driver runs the stage, and on what hardware."""

    name: Literal["local", "verl"] = "local"
    device: str = "auto"  # local engine: auto, cpu, cuda, cuda:N
    n_gpus_per_node: int = 1  # verl engine
    nnodes: int = 1


@dataclass
class SodctlConfig:
    """The root of every resolved configuration."""

    experiment: str | None = None  # the loader sets it (file name, or "<method>-<size>")
    preset: Preset = "paper"
    seed: int = 42
    output_dir: str = "runs"
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
    ("reward.overlong_buffer", _positive, "a positive integer"),
    ("train.lr", _positive, "a positive number"),
    ("train.train_batch_prompts", _positive, "a positive integer"),
    ("train.ppo_mini_batch_prompts", _positive, "a positive integer"),
    ("train.ppo_epochs", _positive, "a positive integer"),
    ("train.epochs", _positive, "a positive integer"),
    ("train.max_steps", _optional_positive, "a positive integer or null"),
    ("train.clip_low", _unit_half_open, "in [0, 1)"),
    ("train.clip_high", _non_negative, "a non-negative number"),
    ("train.dual_clip", lambda x: x > 1, "greater than 1"),
    ("train.grad_clip", _positive, "a positive number"),
    ("train.weight_decay", _non_negative, "a non-negative number"),
    ("train.betas", _betas, "two numbers in [0, 1)"),
    ("train.warmup_steps", _non_negative, "a non-negative integer"),
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
    ("eval.limit", _optional_positive, "a positive integer or null"),
    ("logging.log_every", _positive, "a positive integer"),
    ("engine.n_gpus_per_node", _positive, "a positive integer"),
    ("engine.nnodes", _positive, "a positive integer"),
)


def validate(cfg: DictConfig) -> None:
    """Check ranges and cross-field rules of a merged config; raise ``SodctlUsageError``."""
    for key, ok, requirement in _RANGES:
        value = OmegaConf.select(cfg, key)
        if isinstance(value, float) and math.isnan(value) or not ok(value):
            raise SodctlUsageError(f"config key '{key}' must be {requirement}, got {value!r}")

    train = cfg.train
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
