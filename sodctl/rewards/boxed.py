"""The strict grader (paper-faithful, REFERENCE §5): the last ``\\boxed{...}`` near the end,
compared by exact string equality.

How we read "searched in the last 100 characters of the last 300": the released reward
first cut the response to its last 300 characters, then its strict check cut that to
its last 100 and searched there. The last 100 characters of the last 300 are simply the
last 100 characters, so the 300 has no effect of its own:

- the window is ``response[-100:]``; the whole box, from the backslash of ``\\boxed{`` to
  its matching closing brace, must lie inside it;
- within the window the *last* occurrence of ``\\boxed{`` is the box; its braces are
  matched by counting (``\\boxed{\\frac{1}{2}}`` gives ``\\frac{1}{2}``);
- if that box's braces do not close inside the window there is no prediction (no
  fallback to an earlier box); neither is ``\\boxed 5`` (no brace) a box, so a response
  ending in it has no prediction unless an earlier ``\\boxed{`` lies in the window;
- the box's content is compared with the ground truth as it is: no stripping, no
  normalisation (``\\boxed{ 204 }`` and ``\\boxed{033}`` fail against "204" / "33").
"""

from __future__ import annotations

from sodctl.rewards.result import GradeResult

RELEASED_CUT = 300  # the released reward's first cut (no effect, see above)
STRICT_WINDOW = 100  # where the box must lie
_OPEN = "\\boxed{"


def matched_box(text: str, start: int) -> str | None:
    """Content of the box whose ``\\boxed{`` starts at ``start``; None if it never closes."""
    depth = 0
    for i in range(start + len(_OPEN) - 1, len(text)):
        ch = text[i]
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return text[start + len(_OPEN) : i]
    return None


def last_box(text: str) -> str | None:
    """Content of the last ``\\boxed{...}`` of ``text`` (brace-matched), or None."""
    start = text.rfind(_OPEN)
    return None if start < 0 else matched_box(text, start)


def extract_boxed_strict(response: str) -> str | None:
    """The released code's prediction: the last box within the response's final 100 characters."""
    return last_box(response[-RELEASED_CUT:][-STRICT_WINDOW:])


def grade_strict(response: str, ground_truth: str) -> GradeResult:
    pred = extract_boxed_strict(response)
    if pred is None:
        return GradeResult(False, 0.0, None, "no \\boxed{...} in the last 100 characters")
    correct = pred == ground_truth
    return GradeResult(correct, 1.0 if correct else 0.0, pred)
