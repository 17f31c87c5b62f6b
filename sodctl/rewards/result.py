"""What a grader returns, and the names of the kinds of problem and of the graders."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

Kind = Literal["math", "mcq", "code"]
Grader = Literal["strict", "math-verify"]
KINDS: tuple[str, ...] = get_args(Kind)
GRADERS: tuple[str, ...] = get_args(Grader)


@dataclass(frozen=True)
class GradeResult:
    """The verdict on one response.

    correct  the answer is right (code: every test passed).
    score    1.0 / 0.0 for math and mcq; for code the fraction of tests passed.
    pred     the extracted answer: the boxed text, the option letter, or the code block;
             None when nothing could be extracted (code: also a syntax error, or no
             entry point for functional tests).
    detail   why, in a few words, when it is not simply right or wrong.
    """

    correct: bool
    score: float
    pred: str | None
    detail: str = ""


def check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"unknown {name} {value!r}; choose one of {', '.join(choices)}")
