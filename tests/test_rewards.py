"""Graders for math and multiple choice, the training reward and verl's compute_score."""

from __future__ import annotations

import threading

import pytest

from sodctl.rewards import (
    GradeResult,
    compute_score,
    extract_boxed_strict,
    extract_letter,
    grade,
    grade_many,
    kind_for_source,
    training_reward,
    training_rewards,
    verl_num_turns,
)
from sodctl.rewards.math_verify_grader import MathVerifyPool, grade_math_verify

pytestmark = pytest.mark.unit

PAD = "We reason step by step and check with the tool. " * 10  # pushes text out of the window


# --- strict: the released boxed match ------------------------------------------------------


@pytest.mark.parametrize(
    ("response", "pred"),
    [
        ("so the answer is \\boxed{204}.", "204"),
        ("\\boxed{\\frac{1}{2}}", "\\frac{1}{2}"),  # nested braces
        ("\\boxed{\\sqrt{\\frac{a}{b}} + {c}}", "\\sqrt{\\frac{a}{b}} + {c}"),
        ("first \\boxed{3}, then \\boxed{4}", "4"),  # the last box counts
        ("\\boxed{12", None),  # unbalanced: no prediction
        ("\\boxed{7} and then \\boxed{12", None),  # the last box is unbalanced: no fallback
        ("the answer is \\boxed 5", None),  # no brace: not a box
        ("\\boxed{7} so finally \\boxed 5", "7"),  # ... an earlier \boxed{ in the window counts
        ("\\boxed{}", ""),
        ("no box at all", None),
    ],
)
def test_strict_extraction(response, pred):
    assert extract_boxed_strict(PAD + response) == pred


def test_strict_window_is_the_last_100_characters():
    box = "\\boxed{42}"
    inside = PAD + box + "x" * (100 - len(box))  # the box starts exactly 100 from the end
    assert extract_boxed_strict(inside) == "42"
    assert extract_boxed_strict(inside + "x") is None  # one more character pushes it out
    assert extract_boxed_strict(PAD + "\\boxed{42" + "}" + "." * 95) is None  # '\' outside
    long_box = "\\boxed{" + "1" * 95 + "}"  # 103 characters: cannot fit
    assert extract_boxed_strict(long_box) is None


def test_strict_is_exact_string_equality():
    assert grade("\\boxed{204}", "204") == GradeResult(True, 1.0, "204")
    for response in ("\\boxed{ 204 }", "\\boxed{204.0}", "\\boxed{033}"):
        r = grade(response, "204" if "204" in response else "33")
        assert (r.correct, r.score) == (False, 0.0)
    r = grade(PAD, "204")
    assert (r.correct, r.pred) == (False, None) and "no \\boxed" in r.detail


def test_mcq_under_strict_is_the_boxed_exact_match():
    assert grade("\\boxed{C}", "C", kind="mcq").correct
    for response in ("\\boxed{(C)}", "\\boxed{c}", "The answer is C", "\\boxed{\\text{C}}"):
        assert not grade(response, "C", kind="mcq").correct


# --- math-verify -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("response", "gold", "correct"),
    [
        ("\\boxed{033}", "33", True),
        ("\\boxed{ 204 }", "204", True),
        ("\\boxed{\\frac{1}{2}}", "0.5", True),
        ("\\boxed{\\dfrac{3}{4}}", "\\frac{3}{4}", True),
        ("first \\boxed{3}, then \\boxed{4}", "4", True),  # the last box, not the set {3, 4}
        ("first \\boxed{4}, then \\boxed{3}", "4", False),
        ("the answer is \\boxed 5", "5", True),  # math-verify's own extraction
        ("<think>maybe \\boxed{9}</think> The answer is \\boxed{8}.", "8", True),
        ("\\boxed{34}", "33", False),
    ],
)
def test_math_verify(response, gold, correct):
    r = grade(PAD + response, gold, grader="math-verify")
    assert r.correct is correct and r.score == float(correct)
    assert r.pred is not None


def test_033_strict_wrong_math_verify_right():
    strict, mv = (grade("\\boxed{033}", "33", grader=g) for g in ("strict", "math-verify"))
    assert (strict.correct, mv.correct) == (False, True)
    assert strict.pred == mv.pred == "033"


def test_math_verify_no_answer_and_bad_ground_truth():
    r = grade("I could not solve it.", "7", grader="math-verify")
    assert not r.correct
    with pytest.raises(ValueError, match="ground truth"):
        grade("\\boxed{1}", "", grader="math-verify")


def test_math_verify_from_a_worker_thread_uses_the_process_pool():
    # math-verify's signal timeouts fail outside the main thread; the grader sends such
    # calls to worker processes, where they run in the main thread.
    results: list[GradeResult] = []
    errors: list[BaseException] = []

    def work():
        try:
            results.append(grade_math_verify("\\boxed{033}", "33"))
            results.append(grade_math_verify("\\boxed{1/3}", "0.5"))
        except BaseException as e:  # surfaced below
            errors.append(e)

    t = threading.Thread(target=work)
    t.start()
    t.join()
    assert not errors
    assert [r.correct for r in results] == [True, False]


def test_math_verify_pool_replaces_a_dead_worker():
    pool = MathVerifyPool(1)
    try:
        pool.start()
        worker = pool._workers[0]
        worker.proc.kill()  # as the pool itself does with a worker stuck past its deadline
        worker.proc.wait()
        r = pool.verify("\\boxed{1}", "1", 1)
        assert not r.correct and "worker replaced" in r.detail
        assert pool.verify("\\boxed{1}", "1", 1).correct  # a fresh worker serves the next call
        assert pool._workers[0] is not worker
    finally:
        pool.close()


# --- multiple choice under math-verify: letter extraction ------------------------------------


@pytest.mark.parametrize(
    ("response", "letter"),
    [
        ("so \\boxed{C}", "C"),
        ("so \\boxed{(C)}", "C"),
        ("so $\\boxed{\\text{C}}$", "C"),
        ("\\boxed{\\textbf{(c)}}", "C"),
        ("\\boxed{C) 42}", "C"),
        ("Answer: C", "C"),
        ("answer: c", "C"),
        ("**Answer:** **C**", "C"),
        ("The correct answer is (C).", "C"),
        ("the answer is option C because it is the only one", "C"),
        ("I would pick (C)", "C"),
        ("I would pick (c).", "C"),
        ("the answer is a prime, I think", None),  # 'a' is a word here, not option A
        ("\\boxed{42}", None),
        ("\\boxed{42} which is option (B)", "B"),  # a box without a letter does not decide
        ("<think>The answer is (A)?</think> The answer is (D).", "D"),
        ("The answer is (E).", None),  # not one of A-D
    ],
)
def test_letter_extraction(response, letter):
    assert extract_letter(PAD + response) == letter


def test_letters_are_configurable_and_grading_is_case_insensitive():
    assert extract_letter("The answer is (E).", letters="ABCDE") == "E"
    assert grade("\\boxed{b}", "B", kind="mcq", grader="math-verify").correct
    assert grade("\\boxed{B}", "b", kind="mcq", grader="math-verify").correct
    with pytest.raises(ValueError, match="letters"):
        grade("\\boxed{B}", "42", kind="mcq", grader="math-verify")


def test_grade_many_mixes_kinds_and_checks_arguments():
    rs = grade_many(["\\boxed{7}", "\\boxed{B}"], ["7", "B"], kind=["math", "mcq"])
    assert [r.correct for r in rs] == [True, True]
    with pytest.raises(ValueError, match="unknown grader"):
        grade("\\boxed{7}", "7", grader="exact")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown kind"):
        grade("\\boxed{7}", "7", kind="proof")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="2 responses but 1"):
        grade_many(["a", "b"], ["1"])


# --- the training reward ---------------------------------------------------------------------


def reward(response, gt="7", **kw):
    kw.setdefault("kind", "math")
    kw.setdefault("num_turns", 2)
    kw.setdefault("response_tokens", 100)
    return training_reward(response, gt, **kw)


def test_released_tool_shaping_makes_every_wrong_answer_minus_1_1():
    # the released reward never received num_turns (it read 0): min(-0.6, -1 - 0.1)
    for turns in (0, 2, 8, 30):
        r = reward("\\boxed{8}", num_turns=turns)
        assert r.reward == pytest.approx(-1.1) and r.shaped == pytest.approx(-1.1)
    assert reward("\\boxed{7}", num_turns=8).reward == 1.0
    assert reward("\\boxed{8}", tool_shaping="off").reward == -1.0
    with pytest.raises(ValueError, match="tool_shaping"):
        reward("\\boxed{8}", tool_shaping=True)


def test_reward_plus_minus_one_and_tool_shaping_with_the_real_num_turns():
    r = reward("\\boxed{7}", num_turns=8, tool_shaping="num-turns")
    assert (r.reward, r.correct, r.score, r.shaped, r.overlong_penalty) == (
        1.0,
        True,
        1.0,
        1.0,
        0.0,
    )
    # wrong: min(-0.6, -1 + 0.1 * (num_turns - 2) / 2)
    for turns, want in [(2, -1.0), (4, -0.9), (6, -0.8), (8, -0.7), (10, -0.6), (30, -0.6)]:
        r = reward("\\boxed{8}", num_turns=turns, tool_shaping="num-turns")
        assert r.reward == pytest.approx(want) and r.shaped == pytest.approx(want)
        assert (r.correct, r.score, r.pred) == (False, 0.0, "8")
    assert reward("\\boxed{8}", num_turns=0, tool_shaping="num-turns").reward == pytest.approx(-1.1)


def test_reward_overlong_penalty():
    # L_max 20480, buffer 1024: no penalty up to 19456 tokens, then linear down to -1
    for tokens, pen in [(19456, 0.0), (19968, -0.5), (20480, -1.0)]:
        r = reward("\\boxed{7}", response_tokens=tokens)
        assert r.overlong_penalty == pytest.approx(pen) and r.reward == pytest.approx(1 + pen)
        assert r.correct  # accuracy is untouched
    r = reward("\\boxed{8}", num_turns=4, response_tokens=19968, tool_shaping="num-turns")
    assert (r.shaped, r.reward) == (pytest.approx(-0.9), pytest.approx(-1.4))
    assert reward("\\boxed{7}", response_tokens=20480, overlong=False).reward == 1.0
    r = reward("\\boxed{7}", response_tokens=150, max_response_tokens=200, overlong_buffer=100)
    assert r.overlong_penalty == pytest.approx(-0.5)


def test_reward_grader_and_custom_values():
    assert reward("\\boxed{033}", "33", tool_shaping="off").reward == -1.0
    assert reward("\\boxed{033}", "33", grader="math-verify").reward == 1.0
    r = reward("\\boxed{8}", correct_reward=1.0, incorrect_reward=0.0)
    assert r.reward == 0.0  # the shaping only touches negative rewards


def test_training_rewards_batch_matches_single_calls():
    responses = ["\\boxed{7}", "\\boxed{8}", "nothing", "\\boxed{B}"]
    gts, kinds = ["7", "7", "7", "B"], ["math", "math", "math", "mcq"]
    turns, tokens = [2, 6, 4, 2], [10, 20000, 10, 10]
    batch = training_rewards(responses, gts, kind=kinds, num_turns=turns, response_tokens=tokens)
    singles = [
        training_reward(r, g, kind=k, num_turns=n, response_tokens=t)
        for r, g, k, n, t in zip(responses, gts, kinds, turns, tokens)
    ]
    assert batch == singles
    assert verl_num_turns(assistant_turns=3, tool_rounds=2) == 6  # 2 tool calls -> -0.8


# --- verl's compute_score --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "gt", "kind"),
    [
        ("AIME2024", "33", "math"),
        ("math_dapo", "C", "math"),  # a letter alone does not make a math source mcq
        ("gpqa_diamond", "C", "mcq"),
        ("gpqa_diamond", "42", "math"),
        ("mega-science", "B", "mcq"),
        ("mega-science", "3.5", "math"),
        ("LiveCodeBench_v6", "{}", "code"),
        ("skywork_or1_code", "{}", "code"),
        ("lcb_v6", "{}", "math"),  # the released rule: 'code' in data_source, nothing else
        ("train-code-leetcode-Easy", "{}", "code"),
        ("gpqa_diamond", "\\boxed{C}", "mcq"),
        (None, "1", "math"),
    ],
)
def test_kind_for_source(source, gt, kind):
    assert kind_for_source(source, gt) == kind


def test_compute_score():
    out = compute_score("AIME2025", PAD + "\\boxed{33}", "33", {"num_turns": 4})
    assert out == {"score": 1.0, "acc": True, "pred": "33"}
    out = compute_score("AIME2025", PAD + "\\boxed{033}", "33", {"num_turns": 4})
    assert (out["score"], out["acc"], out["pred"]) == (pytest.approx(-1.1), False, "033")  # released
    out = compute_score(
        "AIME2025", PAD + "\\boxed{033}", "33", {"num_turns": 4}, tool_shaping="num-turns"
    )
    assert (out["score"], out["acc"], out["pred"]) == (pytest.approx(-0.9), False, "033")
    # a GPQA ground truth given boxed is graded against its letter
    out = compute_score("gpqa_diamond", PAD + "\\boxed{B}", "\\boxed{B}", {})
    assert out == {"score": 1.0, "acc": True, "pred": "B"}
    out = compute_score("AIME2025", "\\boxed{033}", "33", {"num_turns": 4}, grader="math-verify")
    assert out["acc"] is True
    out = compute_score("gpqa_diamond", "The answer is (B).", "B", {}, grader="math-verify")
    assert out == {"score": 1.0, "acc": True, "pred": "B"}
    # "num-turns" without num_turns: no shaping; unknown verl kwargs are ignored
    out = compute_score(
        "AIME2025", "no box", "33", None, reward_router_address=None, tool_shaping="num-turns"
    )
    assert out == {"score": -1.0, "acc": False, "pred": ""}
