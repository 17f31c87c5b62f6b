"""Shared pieces for rollout tests: a tiny tokenizer/model and a fake tool."""

from __future__ import annotations

from dataclasses import dataclass

from sodctl.models.tiny import build_tokenizer
from sodctl.tools.code_interpreter import CODE_INTERPRETER_SCHEMA

TOK = build_tokenizer()


def ids(text: str) -> list[int]:
    return TOK(text, add_special_tokens=False)["input_ids"]


# prompts of different lengths, one in chat format, for the engines' contract tests
PROMPTS = [
    ids("hello world"),
    ids("a"),
    ids("<|im_start|>user\nwhat is 2+2?<|im_end|>\n<|im_start|>assistant\n"),
    ids("xyz"),
]


@dataclass
class FakeOutcome:
    observation: str
    status: str = "ok"
    erroneous: bool = False
    latency_s: float = 0.0


class FakeTool:
    """Evaluates `code` with Python's eval on a tiny whitelist; 'boom' fails."""

    name = "code_interpreter"

    def __init__(self, long_output: bool = False) -> None:
        self.calls: list[dict] = []
        self.long_output = long_output

    def run_many(self, arguments):
        out = []
        for args in arguments:
            self.calls.append(args)
            code = args.get("code", "")
            if not code:
                out.append(FakeOutcome("Error: no code", "invalid_call", True))
            elif "boom" in code:
                out.append(FakeOutcome("Traceback: boom", "error", True))
            elif self.long_output:
                out.append(FakeOutcome("x" * 300))
            else:
                out.append(FakeOutcome(str(eval(code, {"__builtins__": {}}))))
        return out


TOOLS = [CODE_INTERPRETER_SCHEMA]
