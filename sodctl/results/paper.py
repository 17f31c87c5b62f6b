"""The paper's published numbers, as data (REFERENCE.md §10; the "±" values from the paper text).

Keys are ``(table, size, row, column)``:

* ``table``  ``table1``, ``table2``, ``table4``, ``table5``;
* ``size``   the model size label (``0.6b``, ``1.7b``; ``4b`` for Table 1's teacher row);
* ``row``    the row's name in ``sodctl.methods.TABLE_ROWS`` (``uniform-weighting``, not its
  canonical ``opd``), or ``teacher`` for Table 1's "4B teacher (GRPO)" row;
* ``column`` a bench (``aime24``, ``aime25``, ``gpqa``, ``lcb``) or ``average``; for Table 4
  ``step_time_s``, ``peak_mem_gb``, ``total_h`` and ``steps``.

The paper prints a "±" after each bench number (not after the averages) and never says
what it is (the standard error over problems? the spread over its 5 seeds?). It is kept
verbatim and always labelled "paper ±", never compared with our standard errors as if it
were the same quantity. Table 4 has no "±".

Table 1's (and Table 5's, and Table 4's) OPD row is ``opd-gated``, the released code's
gated OPD; Table 2's "(1.1) w/ Uniform Weighting" is another run (``opd``: every step
weighted 1), and the paper prints different numbers for the two (43.86 ... vs 41.68 ...).
"(2.2) w/o Step-wise OPD" repeats Table 1's 1.7B GRPO row exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

PAPER_BENCHES: tuple[str, ...] = ("aime24", "aime25", "gpqa", "lcb")
BENCH_TITLES: dict[str, str] = {
    "aime24": "AIME24",
    "aime25": "AIME25",
    "gpqa": "GPQA",
    "lcb": "LCB",
    "average": "Average",
}
TABLE4_COLUMNS: tuple[str, ...] = ("step_time_s", "peak_mem_gb", "total_h", "steps")

# Table 1's extra row: the GRPO-trained Qwen3-4B teacher.
TEACHER_ROW: tuple[str, str] = ("teacher", "4B teacher (GRPO)")
TEACHER_SIZE = "4b"


@dataclass(frozen=True)
class PaperValue:
    """One published number and the "±" printed after it (``None`` where none is printed)."""

    value: float
    pm: float | None = None


_Bench = tuple[float, float]  # (value, paper ±)
_Row = tuple[_Bench, _Bench, _Bench, _Bench, float]  # AIME24, AIME25, GPQA, LCB, Average

# One row of the paper per line, as printed.
# fmt: off
_EVAL: dict[tuple[str, str, str], _Row] = {
    # Table 1: the teacher, then each student block.
    ("table1", "4b", "teacher"): ((67.60, 1.34), (60.42, 1.47), (55.19, 0.81), (63.13, 0.93), 61.59),
    ("table1", "0.6b", "vanilla"): ((7.71, 0.33), (12.81, 0.38), (13.24, 0.24), (14.89, 0.29), 12.16),
    ("table1", "0.6b", "sft"): ((5.67, 0.26), (5.42, 0.22), (15.20, 0.30), (9.61, 0.27), 8.97),
    ("table1", "0.6b", "grpo"): ((4.06, 0.37), (4.90, 0.31), (20.38, 0.47), (15.95, 0.51), 11.32),
    ("table1", "0.6b", "opd-gated"): ((16.82, 0.81), (22.95, 0.97), (17.76, 0.41), (22.65, 0.75), 20.04),
    ("table1", "0.6b", "opsd-gt"): ((12.63, 0.58), (17.04, 0.64), (17.32, 0.35), (16.73, 0.44), 15.93),
    ("table1", "0.6b", "opsd-hint"): ((9.77, 0.43), (14.12, 0.48), (15.98, 0.30), (12.65, 0.37), 13.13),
    ("table1", "0.6b", "sod"): ((20.84, 0.90), (26.13, 1.07), (22.19, 0.59), (27.72, 0.83), 24.22),
    ("table1", "1.7b", "vanilla"): ((9.90, 0.38), (8.96, 0.33), (26.80, 0.36), (22.73, 0.41), 17.10),
    ("table1", "1.7b", "sft"): ((26.77, 0.66), (22.40, 0.72), (29.85, 0.51), (24.63, 0.57), 25.91),
    ("table1", "1.7b", "grpo"): ((25.63, 1.03), (21.67, 1.12), (33.55, 0.76), (20.70, 0.87), 25.39),
    ("table1", "1.7b", "opd-gated"): ((43.86, 1.23), (37.04, 1.31), (31.73, 0.55), (32.45, 0.93), 36.27),
    ("table1", "1.7b", "opsd-gt"): ((33.85, 0.88), (24.69, 0.94), (35.02, 0.67), (22.73, 0.61), 29.07),
    ("table1", "1.7b", "opsd-hint"): ((34.42, 0.76), (21.43, 0.83), (33.46, 0.59), (23.12, 0.52), 28.11),
    ("table1", "1.7b", "sod"): ((50.83, 1.15), (41.72, 1.24), (38.72, 0.73), (40.63, 0.91), 42.98),
    # Table 2: ablations on the 1.7B student.
    ("table2", "1.7b", "uniform-weighting"): ((41.68, 0.95), (35.58, 1.01), (30.12, 0.59), (31.43, 0.68), 34.70),
    ("table2", "1.7b", "heuristic-weighting"): ((44.96, 0.98), (38.75, 1.04), (31.14, 0.64), (33.71, 0.72), 37.14),
    ("table2", "1.7b", "mask-after-wrong"): ((39.11, 1.08), (31.59, 1.14), (26.56, 0.67), (30.12, 0.80), 31.85),
    ("table2", "1.7b", "no-clipping"): ((45.78, 1.16), (37.93, 1.21), (33.57, 0.74), (35.12, 0.79), 38.10),
    ("table2", "1.7b", "no-grpo"): ((48.87, 0.93), (39.73, 1.02), (35.89, 0.62), (38.62, 0.71), 40.78),
    ("table2", "1.7b", "no-stepwise-opd"): ((25.63, 1.03), (21.67, 1.12), (33.55, 0.76), (20.70, 0.87), 25.39),
    ("table2", "1.7b", "sod"): ((50.83, 1.15), (41.72, 1.24), (38.72, 0.73), (40.63, 0.91), 42.98),
    # Table 5 (Appendix C.3): naive OPD beside the distillation variants, 1.7B student.
    ("table5", "1.7b", "naive-opd"): ((40.54, 1.05), (35.83, 1.11), (28.96, 0.58), (29.81, 0.74), 33.79),
    ("table5", "1.7b", "opd-gated"): ((43.86, 1.23), (37.04, 1.31), (31.73, 0.55), (32.45, 0.93), 36.27),
    ("table5", "1.7b", "no-grpo"): ((48.87, 0.93), (39.73, 1.02), (35.89, 0.62), (38.62, 0.71), 40.78),
    ("table5", "1.7b", "sod"): ((50.83, 1.15), (41.72, 1.24), (38.72, 0.73), (40.63, 0.91), 42.98),
}

# Table 4 (Appendix C.1), 8 x H20: avg time per step (s), peak memory (GB), total time (h);
# the step counts (120 for 0.6B, 150 for 1.7B) are from the appendix's text.
_COST: dict[tuple[str, str], tuple[float, float, float, int]] = {
    ("0.6b", "grpo"): (680.6, 78.5, 22.7, 120),
    ("0.6b", "opd-gated"): (1090.5, 87.7, 36.4, 120),
    ("0.6b", "sod"): (1052.3, 87.6, 35.1, 120),
    ("1.7b", "grpo"): (784.6, 81.7, 32.7, 150),
    ("1.7b", "opd-gated"): (1053.6, 88.2, 43.9, 150),
    ("1.7b", "sod"): (1105.4, 88.7, 46.1, 150),
}
# fmt: on

# Table 4's rows (the paper's order) and the student sizes of each table.
TABLE4_ROWS: tuple[tuple[str, str], ...] = (("grpo", "GRPO"), ("opd-gated", "OPD"), ("sod", "SOD"))
TABLE_SIZES: dict[str, tuple[str, ...]] = {
    "table1": ("0.6b", "1.7b"),
    "table2": ("1.7b",),
    "table4": ("0.6b", "1.7b"),
    "table5": ("1.7b",),
}


def _build() -> dict[tuple[str, str, str, str], PaperValue]:
    out: dict[tuple[str, str, str, str], PaperValue] = {}
    for (table, size, row), (*benches, average) in _EVAL.items():
        for bench, (value, pm) in zip(PAPER_BENCHES, benches):
            out[(table, size, row, bench)] = PaperValue(value, pm)
        out[(table, size, row, "average")] = PaperValue(average)
    for (size, row), values in _COST.items():
        for column, value in zip(TABLE4_COLUMNS, values):
            out[("table4", size, row, column)] = PaperValue(float(value))
    return out


PAPER: dict[tuple[str, str, str, str], PaperValue] = _build()


def paper_value(table: str, size: str, row: str, column: str) -> PaperValue | None:
    """The paper's number for one cell, or ``None`` where the paper has none."""
    return PAPER.get((table, size, row, column))
