"""Multiple choice under the math-verify grader: find the chosen option letter, robustly.

(Under the strict grader a multiple-choice answer is graded like a math one: the boxed
text must equal the letter exactly, REFERENCE §5.)

The letter is looked for in the final answer (the text after the last ``</think>``), in
this order, the first rule that finds one deciding:

1. the last ``\\boxed{...}``, its content unwrapped from ``\\text{}``/``\\textbf{}``/
   ``\\mathrm{}``/``\\mathbf{}``, ``$`` and ``*``: a letter alone or at its start followed by
   a separator (``C``, ``(C)``, ``C.``, ``(C) 42``, ``C: 42``); a box without a letter
   (``\\boxed{42}``) does not decide, the next rules still run;
2. the last "answer is X" / "answer: X" (also "final answer", "option X", markdown or
   LaTeX around it: ``**Answer:** **X**``, ``(X)``, ``[X]``, ``\\text{X}``): an upper-case
   letter may be followed by anything but a letter or digit ("The answer is C because");
   a lower-case one must be in brackets or end the sentence, so that "the answer is a
   prime" is not option A;
3. ``(X)`` at the very end of the answer (trailing ``.``, ``*``, ``$``, spaces allowed).

Letters are case-insensitive and returned upper-case; the valid letters are
configurable (default A-D).
"""

from __future__ import annotations

import re
from functools import lru_cache

from sodctl.rewards.boxed import matched_box
from sodctl.rewards.result import GradeResult

DEFAULT_LETTERS = "ABCD"
_WRAPPERS = re.compile(r"\\(?:text|textbf|mathrm|mathbf|textit|mathit)\s*\{([^{}]*)\}")


_BOXED_LETTER = re.compile(r"^\$?\s*\\boxed\s*\{\s*([A-Za-z])\s*\}\s*\$?$")


def option_letter(ground_truth: str) -> str:
    """An option-letter ground truth as the graders compare it: ``"B"``, ``" b "``,
    ``"\\boxed{B}"`` and ``"$\\boxed{ B }$"`` all give ``"B"``; anything else comes back
    stripped, unchanged."""
    gt = ground_truth.strip()
    boxed = _BOXED_LETTER.match(gt)
    if boxed:
        gt = boxed.group(1)
    return gt.upper() if len(gt) == 1 and gt.isalpha() else gt


def _answer_part(response: str) -> str:
    return response.rsplit("</think>", 1)[-1]


@lru_cache(maxsize=16)
def _patterns(letters: str) -> tuple[re.Pattern[str], re.Pattern[str], re.Pattern[str]]:
    cls = "[" + re.escape(letters.upper() + letters.lower()) + "]"
    in_box = re.compile(rf"^\(?({cls})\)?(?:$|[\s.:,;)\]])")
    prose = re.compile(
        r"answer(?:\s+is)?[\s*_:：=]*(?:option\s*|choice\s*)?"
        rf"(?:\*\*|\$|\\text\{{|\\textbf\{{)*\s*(\(({cls})\)|\[({cls})\]|({cls}))"
        r"(?=(?P<after>.{0,3}))",
        re.IGNORECASE | re.DOTALL,
    )
    tail = re.compile(rf"\(({cls})\)[\s.*$}}]*$")
    return in_box, prose, tail


def _box_letter(answer: str, in_box: re.Pattern[str]) -> str | None:
    start = answer.rfind("\\boxed{")
    if start < 0:
        return None
    content = matched_box(answer, start)
    if content is None:
        return None
    previous = None
    while previous != content:  # \text{\textbf{C}} -> C
        previous, content = content, _WRAPPERS.sub(r"\1", content)
    content = content.replace("$", "").replace("*", "").strip()
    m = in_box.match(content)
    return m.group(1) if m else None


def _prose_letter(answer: str, prose: re.Pattern[str]) -> str | None:
    found = None
    for m in prose.finditer(answer):
        bracketed = m.group(2) or m.group(3)
        bare = m.group(4)
        if bracketed:
            found = bracketed
            continue
        after = m.group("after")
        if bare.isupper():
            if not (after[:1].isalnum()):
                found = bare
        elif re.match(r"\s*(?:$|[.,;:!)\]}*$\n])", after):
            found = bare
    return found


def extract_letter(response: str, letters: str = DEFAULT_LETTERS) -> str | None:
    """The option letter the response chose (upper case), or None."""
    answer = _answer_part(response)
    in_box, prose, tail = _patterns(letters)
    letter = _box_letter(answer, in_box) or _prose_letter(answer, prose)
    if letter is None:
        m = tail.search(answer.rstrip())
        letter = m.group(1) if m else None
    return letter.upper() if letter else None


def grade_letter(response: str, ground_truth: str, letters: str = DEFAULT_LETTERS) -> GradeResult:
    gold = ground_truth.strip().upper()
    if len(gold) != 1 or gold not in letters.upper():
        raise ValueError(
            f"a multiple-choice ground truth must be one of the letters {letters}, got "
            f"{ground_truth!r}"
        )
    pred = extract_letter(response, letters)
    if pred is None:
        return GradeResult(False, 0.0, None, "no option letter found")
    correct = pred == gold
    return GradeResult(correct, 1.0 if correct else 0.0, pred)
