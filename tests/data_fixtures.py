"""Small files in the exact schemas of the RL mixture's sources (DATA-SOURCES.md §2-4),
written the way pyarrow writes Python dicts and lists (nested struct and list columns).

Each writer returns the path it wrote; the expected outcome of every row is stated next
to it, and the tests check those numbers.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sodctl.data.builders.sources import DAPO_LEAD, DAPO_TAIL


def write_rows(path: Path, rows: Sequence[Mapping[str, Any]]) -> Path:
    """Parquet (``.parquet``) or JSON lines (``.jsonl``) holding ``rows``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    else:
        pq.write_table(pa.Table.from_pylist([dict(r) for r in rows]), path)
    return path


# --- DAPO-Math-17k ---------------------------------------------------------------------------

#: (problem, answer); the builder keeps one row of each.
DAPO_PROBLEMS: list[tuple[str, str]] = [
    ("What is $3 + 4$?", "7"),
    ("Find the number of positive divisors of $36$.", "9"),
    ("Compute $2^{10} - 1000$.", "24"),
    ("Let $x$ satisfy $2x + 3 = -5$. Find $x$.", "-4"),
    ("How many primes are less than $20$?", "8"),
]
DAPO_COPIES = 3  # every problem is written this many times, under distinct UUIDs
LONG_PROBLEM = (
    "Consider the sequence " + ", ".join(str(i) for i in range(1, 700)) + ". What is its length?"
)


def dapo_prompt(problem: str) -> str:
    return f"{DAPO_LEAD}\n\n{problem}\n\n{DAPO_TAIL}"


def dapo_rows(
    *, copies: int = DAPO_COPIES, long: bool = False, seed: int = 0
) -> list[dict[str, Any]]:
    """Every problem ``copies`` times (interleaved, as the accidental ~100x copies are),
    plus one near-duplicate of the first problem (other whitespace and case: removed as a
    duplicate), plus (``long``) one problem of about 3,000 characters."""
    rng = random.Random(seed)
    problems = DAPO_PROBLEMS + ([(LONG_PROBLEM, "699")] if long else [])
    rows = []
    for _ in range(copies):
        for problem, answer in problems:
            rows.append(_dapo_row(dapo_prompt(problem), answer, rng))
    near = "  what IS   $3 +  4$?\n"  # the first problem again
    rows.append(_dapo_row(dapo_prompt(near), "7", rng))
    return rows


def _dapo_row(content: str, answer: str, rng: random.Random) -> dict[str, Any]:
    return {
        "data_source": "math_dapo",
        "prompt": [{"content": content, "role": "user"}],
        "ability": "MATH",
        "reward_model": {"ground_truth": answer, "style": "rule-lighteval/MATH_v2"},
        "extra_info": {"index": str(uuid.UUID(int=rng.getrandbits(128), version=4))},
    }


def write_dapo(path: Path, **kwargs: Any) -> Path:
    """``dapo_rows`` as parquet: 5 problems x 3 + 1 rows -> 5 usable, 11 duplicates."""
    return write_rows(path, dapo_rows(**kwargs))


# --- Skywork-OR1 -----------------------------------------------------------------------------


def _skywork_row(
    data_source: str, ability: str, problem: str, truth: str, index: int
) -> dict[str, Any]:
    return {
        "data_source": data_source,
        "prompt": [{"content": problem, "role": "user"}],
        "ability": ability,
        "reward_model": {"ground_truth": truth, "style": "rule"},
        "extra_info": {
            "index": index,
            "model_difficulty": {
                "DeepSeek-R1-Distill-Qwen-1.5B": index % 16,
                "DeepSeek-R1-Distill-Qwen-32B": 3,
                "DeepSeek-R1-Distill-Qwen-7B": 8,
            },
        },
    }


#: (data_source, ground_truth cell, expected ground truth or None = dropped, reason/answers)
SKYWORK_MATH: list[tuple[str, str, str | None, Any]] = [
    ("train-math-deepscaler", '["12"]', "12", None),
    ("train-math-omnimath", '["3", "\\\\frac{6}{2}"]', "3", ["3", "\\frac{6}{2}"]),
    ("train-math-numinamath1.5_olympiads", "['8']", "8", None),
    ("train-math-deepscaler", "7", "7", None),
    ("train-math-deepscaler", '["2.50"]', "2.50", None),
    ("train-math-deepscaler", "[]", None, "empty ground truth"),
    ("train-math-deepscaler", '[""]', None, "empty ground truth"),
    ("train-math-deepscaler", '["12", ', None, "undecodable ground truth"),
]


def write_skywork_math(path: Path) -> Path:
    """``SKYWORK_MATH`` as Skywork-OR1 math rows: 5 usable (1 multi-answer), 3 dropped."""
    rows = [
        _skywork_row(ds, "math", f"Skywork math problem {i}: find the value.", truth, 1000 + i)
        for i, (ds, truth, _, _) in enumerate(SKYWORK_MATH)
    ]
    return write_rows(path, rows)


TACO_STDIN = {"inputs": ["1 2\n", "3 4\n"], "outputs": ["3\n", "7\n"], "fn_name": None}  # null key
TACO_FUNCTIONAL = {"inputs": [[1, 2], [5, 5]], "outputs": [[3], [10]], "fn_name": "add"}
LEETCODE = {
    "import_prefix": "from typing import *\n",
    "test_code": "def check(candidate):\n    assert candidate(1, 2) == 3\n    assert candidate(0, 0) == 0\n",
    "entry_point": "Solution().add",
}
LEETCODE_NO_PREFIX = {**LEETCODE, "import_prefix": None}  # null key

#: (data_source, ground_truth cell, expected spec or None = dropped, shape or reason)
SKYWORK_CODE: list[tuple[str, str, Any, str]] = [
    (
        "train-code-taco-medium",
        json.dumps(TACO_STDIN),
        {k: v for k, v in TACO_STDIN.items() if v is not None},
        "taco",
    ),
    ("train-code-taco-easy", json.dumps(TACO_FUNCTIONAL), TACO_FUNCTIONAL, "taco-functional"),
    ("train-code-leetcode-Easy", json.dumps(LEETCODE), LEETCODE, "leetcode"),
    (
        "train-code-leetcode-Medium",
        json.dumps(LEETCODE_NO_PREFIX),
        {k: v for k, v in LEETCODE.items() if k != "import_prefix"},
        "leetcode",
    ),
    ("train-code-taco-hard", '{"inputs": ["1"], "outputs": ', None, "ground truth not JSON"),
    (
        "train-code-taco-hard",
        json.dumps({"inputs": ["1", "2"], "outputs": ["1"]}),
        None,
        "tests not parseable",
    ),
    (
        "train-code-leetcode-Hard",
        json.dumps({"test_code": "def check(candidate):\n    pass\n", "entry_point": "f"}),
        None,
        "tests not parseable",
    ),
]


def write_skywork_code(path: Path) -> Path:
    """``SKYWORK_CODE`` as Skywork-OR1 code rows: 4 usable (taco 1, taco-functional 1,
    leetcode 2; 2 with null keys), 3 dropped."""
    rows = [
        _skywork_row(ds, "code", f"Write a program for task {i}.", truth, 2000 + i)
        for i, (ds, truth, _, _) in enumerate(SKYWORK_CODE)
    ]
    return write_rows(path, rows)


# --- MegaScience -----------------------------------------------------------------------------

#: (reference_answer, expected numeric form or None = not numeric, shape)
MEGASCIENCE: list[tuple[str, str | None, str]] = [
    ("42", "42", "integer"),
    ("-3.5", "-3.5", "decimal"),
    ("1,000", "1000", "integer"),
    ("$\\frac{3}{4}$", "\\frac{3}{4}", "fraction"),
    ("-3/4", "-\\frac{3}{4}", "fraction"),
    ("3.2 \\times 10^{5}", "3.2 \\times 10^{5}", "scientific"),
    ("3.2e5", "3.2 \\times 10^{5}", "scientific"),
    ("\\boxed{7}", "7", "integer"),
    ("The mitochondria", None, "text"),
    ("5 m/s", None, "text"),
    ("", None, "empty"),
]


def write_megascience(path: Path) -> Path:
    """``MEGASCIENCE`` as MegaScience rows: numeric 8 usable, 2 not numeric, 1 empty;
    ``answers="all"``: 10 usable, 1 empty."""
    rows = [
        {
            "question": f"Science question {i}: compute the quantity.",
            "answer": f"Step 1. Think.\nStep 2. The answer is {ref}.",
            "subject": ["physics", "chemistry", "biology"][i % 3],
            "reference_answer": ref,
            "source": "TextbookReasoning",
        }
        for i, (ref, _, _) in enumerate(MEGASCIENCE)
    ]
    return write_rows(path, rows)


def write_all_sources(root: Path, **dapo: Any) -> dict[str, str]:
    """One fixture file per source under ``root``: the ``sources`` mapping of ``build_rl``."""
    return {
        "dapo": str(write_dapo(root / "dapo" / "dapo-math-17k.parquet", **dapo)),
        "skywork-math": str(write_skywork_math(root / "skywork" / "math-00000-of-00001.parquet")),
        "skywork-code": str(write_skywork_code(root / "skywork" / "code-00000-of-00001.parquet")),
        "megascience": str(
            write_megascience(root / "megascience" / "train-00000-of-00001.parquet")
        ),
    }
