"""What evaluation and training write, and where: the contract between the stages
that produce results and the ones that read them (tables, plots, report).

Evaluation (``sodctl eval``), one directory per evaluated model::

    <results_dir>/<preset>/<model>/<method>/<bench>.jsonl   one EvalRecord per (problem, sample)
    <results_dir>/<preset>/<model>/<method>/<bench>.json    the BenchSummary

``model`` is a size label (``0.6b``, ``1.7b``, ``4b``) or a sanitised model name;
``method`` a registry name (``sod``, ``opd``, ...; the 4B teacher of Table 1 is
``4b/grpo``), or ``external`` for a checkpoint evaluated outside any experiment. Seeds repeat a run
under ``.../<method>/seed-<n>/<bench>.*`` when there are several.

Training, one directory per run::

    runs/<experiment>/<run-id>/metrics.jsonl    one TrainMetrics line per optimiser step
    runs/<experiment>/<run-id>/samples.jsonl    a bounded sample of trajectories with d_k / w_k
    runs/<experiment>/<run-id>/config.yaml      the resolved configuration (method.name, model.size, preset)

Readers (``sodctl.results``) find runs by their ``metrics.jsonl`` and tolerate a torn last
line in either JSONL file (a run killed mid-write).

Numbers in summaries are percentages (0-100) where the paper prints percentages.
"""

from __future__ import annotations

from typing import TypedDict

GRADERS = ("strict", "math-verify")


class ToolCallLog(TypedDict):
    turn: int
    code: str | None
    observation: str
    status: str
    erroneous: bool
    latency_s: float


class EvalRecord(TypedDict):
    """One sampled answer to one problem."""

    bench: str
    problem_id: str  # stable id within the bench (row index as a string when the data has none)
    sample: int  # 0 .. k-1
    seed: int
    ground_truth: str  # the answer, the option letter, or a JSON tests spec for code
    response: str  # decoded response (tool observations included, as the model saw them)
    num_turns: int
    stop_reason: str  # answer | invalid_call | max_turns | length
    response_tokens: int  # all response tokens (generated + tool/template)
    generated_tokens: int
    n_tool_calls: int
    n_tool_errors: int
    tool_calls: list[ToolCallLog]
    pred: dict[str, str | None]  # grader -> extracted prediction
    correct: dict[str, bool]  # grader -> correct?
    score: dict[str, float]  # grader -> score (code: fraction of tests passed)
    gen_time_s: float


class GraderSummary(TypedDict):
    avg_at_k: float  # mean over problems of (correct samples / k), percent
    stderr: float  # standard error over problems of the per-problem accuracy, percent
    mean_sample_std: float  # mean over problems of the std of the k 0/1 outcomes, percent
    pass_at: dict[str, float]  # "1", "2", "4", ... up to k: unbiased pass@n, percent
    maj_at_k: float  # majority vote of the k predictions, percent


class BenchSummary(TypedDict):
    bench: str
    bench_version: str
    model: str  # what was evaluated (path or hub id)
    label: dict[str, str]  # preset, model (size label), method, seed: where it sits in the tables
    k: int
    n_problems: int  # evaluated (after the prompt-length filter)
    n_filtered: int  # left out: prompt over eval.max_prompt_tokens (the released filter)
    filtered_ids: list[str]
    n_records: int
    graders: dict[str, GraderSummary]
    mean_turns: float
    tool_calls_per_sample: float
    tool_error_rate: float  # erroneous calls / calls, percent
    mean_response_tokens: float
    stop_reasons: dict[str, int]
    tokens_per_s: float
    wall_time_s: float
    config: dict  # the resolved configuration
    run: dict  # sodctl.runinfo.run_metadata: versions, git commit, argv, host


class TrainMetrics(TypedDict, total=False):
    """One line of metrics.jsonl; keys are namespaced, every value a number."""

    step: int
    epoch: float
    # train/: optimisation
    # "train/loss", "train/pg_loss", "train/opd_loss", "train/grad_norm", "train/lr",
    # "train/entropy", "train/clipfrac", "train/approx_kl"
    # rollout/: what was sampled
    # "rollout/reward", "rollout/acc", "rollout/response_tokens", "rollout/turns",
    # "rollout/tool_calls", "rollout/tool_error_rate"
    # sod/: step divergence and weights (core.divergence_metrics keys)
    # "sod/d_1", "sod/d_last", "sod/w_mean", "sod/w_p10", "sod/w_p50", "sod/w_p90",
    # "sod/pattern_stable", "sod/pattern_erroneous", "sod/pattern_recovery"
    # perf/: cost (Table 4)
    # "perf/step_time_s", "perf/gen_time_s", "perf/train_time_s", "perf/tokens_per_s",
    # "perf/peak_mem_gb"


class _TrainSampleRequired(TypedDict):
    step: int  # the optimiser step whose rollout batch held the trajectory
    traj_id: str  # unique within the step (e.g. "<prompt index>-<sample index>")
    d: list[float]  # d_1 .. d_K: mean |log pi_old - log pi_teacher| over step k's tokens
    w: list[float]  # w_1 .. w_K: the step weights the method applied (SOD: Eq. 7)
    pattern: str | None  # stable | erroneous | recovery (sodctl.core.patterns); None: no steps
    correct: bool  # the outcome under the training grader


class TrainSample(_TrainSampleRequired, total=False):
    """One line of samples.jsonl: one trajectory's per-step divergence and weights.

    Written for a bounded sample of each rollout batch (Figure 5 / Appendix G). ``d`` and
    ``w`` have one entry per step (a step is a maximal run of ``response_mask == 1``), so
    ``len(d) == len(w)``; a trajectory with no generated tokens has empty lists. Example::

        {"step": 40, "traj_id": "12-3", "d": [0.218, 0.305, 0.476, 0.713],
         "w": [1.0, 0.71, 0.46, 0.31], "pattern": "erroneous", "correct": false,
         "reward": -1.0, "num_turns": 4}
    """

    reward: float  # the shaped reward the trajectory received
    num_turns: int  # assistant turns
    tool_error: list[bool]  # per step: did the step's tool call fail (erroneous)?
    teacher_entropy: list[float]  # per step: mean teacher conditional entropy (Appendix G's H)
