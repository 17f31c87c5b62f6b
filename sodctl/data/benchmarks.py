"""The evaluation benchmarks, declared as data (REFERENCE §8, §9).

Only the declarations live here; loaders and graders come with the evaluation
work. A problem count of ``None`` means REFERENCE does not fix it (it depends on
the release) and it is shown as unknown rather than guessed.

Licensing: GPQA and LiveCodeBench problems are never shipped with sodctl; they
are downloaded from the hub by the user.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

BenchKind = Literal["math", "mcq", "code"]

EVAL_HUB_REPO = "Gen-Verse/Open-AgentRL-Eval"


@dataclass(frozen=True)
class BenchmarkSpec:
    """One benchmark: where its parquet lives and what its rows look like.

    hub_repo/file  the dataset repository and the file inside it (``None`` for a
                   synthetic benchmark that ``sodctl data`` generates locally).
    n_problems     the number of problems, when fixed by REFERENCE.
    kind           ``math`` (boxed answer), ``mcq`` (boxed option letter), ``code``.
    columns        the parquet's columns, in the release's spelling.
    paper          part of the paper's Tables 1, 2 and 5 (``--bench all``).
    data_source    the value of the release file's ``data_source`` column (the released
                   loader dispatched on its first row); ``None`` for files without one.
    """

    name: str
    title: str
    file: str | None
    n_problems: int | None
    kind: BenchKind
    columns: tuple[str, ...]
    hub_repo: str | None = EVAL_HUB_REPO
    paper: bool = True
    data_source: str | None = None
    version: str = "1"  # bumped when rows, prompts or grading change; carried into summaries


BENCHMARKS: dict[str, BenchmarkSpec] = {
    b.name: b
    for b in [
        BenchmarkSpec(
            "aime24",
            "AIME 2024",
            "aime2024/aime_2024_problems.parquet",
            30,
            "math",
            ("Problem", "Answer"),
            data_source="AIME2024",
        ),
        BenchmarkSpec(
            "aime25",
            "AIME 2025",
            "aime2025/aime_2025_problems.parquet",
            30,
            "math",
            ("problem", "answer"),
            data_source="AIME2025",
        ),
        BenchmarkSpec(
            "gpqa",
            "GPQA-Diamond",
            "gpqa-diamond/gpqa_diamond.parquet",
            198,
            "mcq",
            ("problem", "solution", "domain"),
            data_source="gpqa_diamond",
        ),
        BenchmarkSpec(
            "lcb",
            "LiveCodeBench v6 (2025-02 to 2025-05)",
            "livecodebench-v6/lcb_v6_2502_2505.parquet",
            None,
            "code",
            ("problem", "reward_model", "extra_info"),
            data_source="LiveCodeBench_v6",
        ),
        BenchmarkSpec(
            "tiny-arith",
            "Tiny arithmetic with one tool call (synthetic, generated from a fixed seed)",
            None,
            30,
            "math",
            ("problem", "answer"),
            hub_repo=None,
            paper=False,
        ),
    ]
}

PAPER_BENCHES: tuple[str, ...] = tuple(b.name for b in BENCHMARKS.values() if b.paper)
