"""Hermes tool-call parsing and rendering."""

from __future__ import annotations

import json

import pytest

from sodctl.tools import (
    InvalidToolCall,
    ToolCall,
    invalid_call_observation,
    parse_tool_calls,
    render_tool_call,
)

pytestmark = pytest.mark.unit

CALL = '<tool_call>\n{"name": "code_interpreter", "arguments": {"code": "print(1)"}}\n</tool_call>'


def test_one_call_with_qwen_whitespace():
    turn = parse_tool_calls(f"Let me compute.\n{CALL}")
    assert turn.calls == [ToolCall("code_interpreter", {"code": "print(1)"}, CALL)]
    assert turn.invalid == [] and turn.has_tool_call


@pytest.mark.parametrize(
    "block",
    [
        '<tool_call>{"name": "code_interpreter", "arguments": {"code": "x"}}</tool_call>',
        '<tool_call>  \n\n {"name":"code_interpreter","arguments":{"code":"x"}} \n\t</tool_call>',
    ],
)
def test_whitespace_around_the_json_is_tolerated(block):
    assert parse_tool_calls(block).calls == [ToolCall("code_interpreter", {"code": "x"}, block)]


def test_no_call():
    turn = parse_tool_calls("<think>hmm</think>The answer is \\boxed{3}.")
    assert (turn.calls, turn.invalid, turn.has_tool_call) == ([], [], False)


def test_several_calls_in_order_with_text_between():
    a = render_tool_call("code_interpreter", {"code": "a"})
    b = render_tool_call("code_interpreter", {"code": "b"})
    turn = parse_tool_calls(f"first {a} then {b} done")
    assert [c.arguments["code"] for c in turn.calls] == ["a", "b"]
    assert [c.raw for c in turn.calls] == [a, b]


def test_calls_inside_think_are_found():
    turn = parse_tool_calls(f"<think>try it: {CALL}</think>")
    assert len(turn.calls) == 1


def test_arguments_as_a_json_string():
    args = json.dumps({"code": "print(2)"})
    text = (
        "<tool_call>" + json.dumps({"name": "code_interpreter", "arguments": args}) + "</tool_call>"
    )
    assert parse_tool_calls(text).calls[0].arguments == {"code": "print(2)"}


def test_missing_arguments_mean_an_empty_object():
    text = '<tool_call>{"name": "code_interpreter"}</tool_call>'
    assert parse_tool_calls(text).calls[0].arguments == {}


def test_closing_tag_inside_the_code_string_does_not_cut_the_block():
    block = render_tool_call("code_interpreter", {"code": "s = '</tool_call>'\nprint(s)"})
    turn = parse_tool_calls(block + " after")
    assert turn.calls[0].arguments["code"] == "s = '</tool_call>'\nprint(s)"
    assert turn.calls[0].raw == block and turn.invalid == []


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ('{"name": "code_interpreter", "arguments": {"code": "x"}', "malformed_json"),
        ("{'name': 'code_interpreter'}", "malformed_json"),
        ('{"name": "code_interpreter"} trailing', "malformed_json"),
        ('["code_interpreter"]', "malformed_json"),
        ('{"arguments": {"code": "x"}}', "missing_name"),
        ('{"name": 3, "arguments": {}}', "missing_name"),
        ('{"name": "web_search", "arguments": {"q": "x"}}', "unknown_tool"),
        ('{"name": "code_interpreter", "arguments": ["x"]}', "arguments_not_object"),
        ('{"name": "code_interpreter", "arguments": "print(1)"}', "arguments_not_object"),
    ],
)
def test_invalid_blocks_are_reported_with_a_reason(body, reason):
    block = f"<tool_call>{body}</tool_call>"
    turn = parse_tool_calls(f"text {block} more")
    assert turn.calls == [] and turn.has_tool_call
    assert [(i.raw, i.reason) for i in turn.invalid] == [(block, reason)]
    assert turn.invalid[0].detail


def test_valid_and_invalid_blocks_together():
    turn = parse_tool_calls(f"<tool_call>oops</tool_call>{CALL}")
    assert len(turn.calls) == 1 and [i.reason for i in turn.invalid] == ["malformed_json"]


def test_known_tools_can_be_widened():
    text = '<tool_call>{"name": "search", "arguments": {}}</tool_call>'
    assert parse_tool_calls(text, known_tools={"search", "code_interpreter"}).calls


def test_unclosed_block_is_invalid_by_default():
    text = '<tool_call>\n{"name": "code_interpreter", "arguments": {"code": "x"}}\n'
    turn = parse_tool_calls(text)
    assert turn.calls == [] and [(i.raw, i.reason) for i in turn.invalid] == [(text, "unclosed")]
    # opt-in: a complete final block cut before its closing tag is accepted
    assert parse_tool_calls(text, allow_unclosed=True).calls[0].arguments == {"code": "x"}
    # an incomplete one never is
    cut = '<tool_call>{"name": "code_interpreter", "argu'
    assert parse_tool_calls(cut, allow_unclosed=True).invalid[0].reason == "unclosed"


def test_unclosed_block_does_not_swallow_the_next_one():
    broken = '<tool_call>{"name": "code_interpreter", '
    turn = parse_tool_calls(broken + CALL)
    assert [i.raw for i in turn.invalid] == [broken] and len(turn.calls) == 1


def test_render_round_trips_and_keeps_unicode():
    args = {"code": 'print("π ≈", 3.14)\nfor i in range(2):\n    print(i)'}
    block = render_tool_call("code_interpreter", args)
    assert block.startswith("<tool_call>\n{") and block.endswith("}\n</tool_call>")
    assert "π" in block
    assert parse_tool_calls(block).calls == [ToolCall("code_interpreter", args, block)]


def test_invalid_call_observation_explains_the_error():
    text = invalid_call_observation(InvalidToolCall("<tool_call>x", "unclosed", "no tag"))
    assert text.startswith("Error: invalid tool call") and "</tool_call>" in text
    text = invalid_call_observation(InvalidToolCall("...", "unknown_tool", "unknown tool 'web'"))
    assert "unknown tool 'web'" in text and "code_interpreter" in text


# --- plan_turn: what each policy runs and shows ------------------------------------------

from sodctl.tools.parsing import plan_turn  # noqa: E402


def _blocks(*bodies: str) -> str:
    return "\n".join(f"<tool_call>{b}</tool_call>" for b in bodies)


_GOOD = '{"name": "code_interpreter", "arguments": {"code": "1"}}'
_GOOD2 = '{"name": "code_interpreter", "arguments": {"code": "2"}}'
_UNKNOWN = '{"name": "web", "arguments": {"q": "x"}}'
_BAD_JSON = "{nope}"
_NO_ARGS = '{"name": "code_interpreter"}'
_STR_ARGS = '{"name": "code_interpreter", "arguments": "{\\"code\\": \\"3\\"}"}'


@pytest.mark.unit
def test_released_plan_follows_verls_hermes_parser_and_tool_call():
    turn = parse_tool_calls(_blocks(_BAD_JSON, _UNKNOWN, _GOOD, _NO_ARGS, _GOOD2))
    plan = plan_turn(turn, "released", max_parallel_calls=None)
    # the bad JSON and the call without arguments are invisible to verl (recorded only)
    assert [(c.name, c.run, c.shown) for c in plan.calls] == [
        (None, False, False),
        ("web", False, True),
        ("code_interpreter", True, False),
        (None, False, False),
        ("code_interpreter", True, False),
    ]
    assert plan.calls[1].observation == "Error when executing tool: 'web'"
    assert not plan.ends and plan.dropped == 0
    # one call per turn: the first *parsed* call is the unknown tool; nothing else runs
    one = plan_turn(turn, "released", max_parallel_calls=1)
    assert [c.name for c in one.calls if c.run or c.shown] == ["web"] and one.dropped == 2


@pytest.mark.unit
def test_released_plan_passes_string_arguments_as_they_are():
    (call,) = plan_turn(parse_tool_calls(_blocks(_STR_ARGS)), "released").calls
    assert call.run and call.arguments == '{"code": "3"}'  # the tool reports it (a str)
    (call,) = plan_turn(parse_tool_calls(_blocks(_STR_ARGS)), "end").calls
    assert call.run and call.arguments == {"code": "3"}  # sodctl decodes it


@pytest.mark.unit
@pytest.mark.parametrize("policy", ["released", "end"])
def test_a_turn_with_no_callable_block_ends(policy):
    plan = plan_turn(parse_tool_calls(_blocks(_BAD_JSON, "<tool_call>[1]</tool_call>")), policy)
    assert plan.ends and not any(c.run or c.shown for c in plan.calls)


@pytest.mark.unit
def test_error_observation_plan_answers_every_invalid_block():
    plan = plan_turn(parse_tool_calls(_blocks(_BAD_JSON, _GOOD, _UNKNOWN)), "error-observation")
    assert [(c.run, c.shown) for c in plan.calls] == [(False, True), (True, False), (False, True)]
    assert "invalid tool call" in plan.calls[0].observation and not plan.ends
    with pytest.raises(ValueError, match="policy"):
        plan_turn(parse_tool_calls(_GOOD), "ignore")  # type: ignore[arg-type]
