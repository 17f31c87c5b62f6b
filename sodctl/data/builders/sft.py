"""``sodctl data sft --build``: the SFT corpus regenerated from its sources by a teacher.

The paper's recipe (B.1, Table 3): a teacher model (Qwen3-Coder-30B-A3B) runs inside an
agent framework with a code interpreter (SandboxFusion) and writes end-to-end tool
trajectories for the problems of three sets: s1K-1.1 (1k problems, every trajectory
kept), a LeetCode collection (3k problems, the top 1k kept) and ReTool's multi-turn set
(2k problems, the top 1k kept); the trajectories were ranked with the ReasonFlux process
reward model. 3k conversations in all.

How sodctl does it (our choices where the paper is silent):

- Problems (``SFT_SOURCES``). ``s1k``: ``question``; ground truth = the last ``\\boxed{}``
  of ``solution``, else the whole solution when it is short (at most
  ``SHORT_ANSWER_CHARS``), else the row is dropped (counted). ``retool``: the first user
  message; ground truth = the last ``\\boxed{}`` of the final assistant message, else the
  last ``<answer>...</answer>`` there when short; only the problems are used, the
  trajectories are regenerated. ``leetcode``: ``problem_description`` and
  ``starter_code`` make the prompt; the ground truth is the LeetCode harness
  ``{"import_prefix", "test_code", "entry_point"}`` that ``sodctl.rewards.code`` grades.
  Math prompts are ``compose_math`` of the prompts file (``data.prompts_file``);
  LeetCode prompts are ``code_lead + problem + starter code + agent_note +
  code_submit`` with the starter-code line ``LEETCODE_STARTER`` (our wording; the
  prompts file's ``code_io`` asks for a stdin/stdout program, which the LeetCode
  harness does not run, so it is left out). ``counts[name]`` problems are taken per
  source, a sample seeded by ``seed`` (default: all).
- Generation: the real agent loop (``run_agent_loop``) with the teacher's engine
  (``make_engine(cfg, teacher)``: ``rollout.engine`` hf or vllm), the configured code
  interpreter, the tool schema in the prompt and the evaluation sampling of the config
  (``eval.temperature/top_p/top_k/max_response_tokens/max_turns``, seeded per shard).
  Prompts longer than ``eval.max_prompt_tokens`` are not rolled out (counted).
  ``samples`` trajectories per problem.
- Scoring. ``scorer="rule"`` (default): the graders of the config (``reward.grader``,
  code by the reward's test rules) on the trajectory text, as evaluation grades it;
  only correct trajectories are kept and, of several correct ones for a problem, the
  one with the fewest erroneous tool calls (the first sample on a tie). Any other
  value is ``"module:function"``, a user's ``f(problem: dict, messages: list[dict]) ->
  float`` (e.g. a PRM such as the paper's ReasonFlux-PRM): the best-scoring
  trajectory of each problem is its candidate, and the ``keep[source]`` best
  candidates are kept, correct or not (the graders' verdict is still counted).
  ``keep`` defaults to the paper's: s1k all, leetcode 1000, retool 1000; with the
  rule scorer the first ``keep`` problems (in the sampled order) that have a correct
  trajectory are kept.
- Conversion (``trajectory_messages``): the user turn, then for each assistant turn its
  text before the tool-call blocks as ``content`` with the blocks as ``tool_calls``,
  one ``tool`` message per observation the model was shown, and the final answer turn.
  Rendering them with the chat template and the ``tools`` column reproduces the
  trajectory up to the template's own formatting. Trajectories that stopped for
  ``length`` / ``max_turns`` / ``invalid_call``, or whose turns cannot be written as
  messages (a malformed call block, text after a call), are dropped and counted.
- Restartable: problems go in shards of ``shard_size`` (``Shards``); each shard stores
  every generated trajectory with its stop reason, messages, verdict and score, so the
  selection (``keep``) is redone from the shards without generating again. ``keep`` is
  therefore not part of the fingerprint; the scorer is.
- Output: ``out/sft.parquet`` (``schema.sft_schema``: ``messages``, ``tools``), the kept
  conversations shuffled with ``seed``, and ``out/manifest.json`` (kind ``sft``).
"""

from __future__ import annotations

import hashlib
import importlib
import json
import random
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sodctl.data.builders.common import (
    DEFAULT_HUB,
    HubOptions,
    Shards,
    chunks,
    counted,
    data_files,
    file_identity,
    fingerprint_of,
    hub_snapshot,
    input_entry,
    output_entry,
    read_table,
    row_error,
    write_manifest,
    write_parquet,
)
from sodctl.data.builders.schema import TOOL_NAME, sft_message, sft_schema
from sodctl.errors import SodctlUsageError

BUILDER_VERSION = "sft-1"
SHORT_ANSWER_CHARS = 64  # s1K / ReTool: an unboxed answer this short is the ground truth
LEETCODE_STARTER = "\n\nComplete this starter code (the tests call `{entry_point}`):\n```python\n{starter_code}\n```"
OUTPUT_FILE = "sft.parquet"
SHARDS_DIR = "shards"
STOP_KEPT = "answer"  # the only stop reason whose trajectories can be kept

ProblemDict = dict[str, Any]
Scorer = Callable[[ProblemDict, list[dict[str, Any]]], float]


@dataclass(frozen=True)
class SFTProblem:
    """One problem of an SFT source: the user message and the graders' ground truth."""

    source: str
    id: str
    kind: str  # math | code
    prompt: str
    ground_truth: str

    def as_dict(self) -> ProblemDict:
        return {
            "source": self.source,
            "id": self.id,
            "kind": self.kind,
            "prompt": self.prompt,
            "ground_truth": self.ground_truth,
        }


RowMapper = Callable[[dict[str, Any], int, Mapping[str, str], str], "SFTProblem | str"]


@dataclass(frozen=True)
class SFTSource:
    """An SFT source set: where it lives, what it must hold, how a row becomes a problem
    (``to_problem`` returns the problem or the reason the row is dropped)."""

    name: str
    repo: str
    patterns: tuple[str, ...]
    columns: tuple[str, ...]
    kind: str
    domain: str  # Table 3's domain
    label: str  # Table 3's source name
    paper_problems: int
    paper_keep: int | None  # None: every trajectory
    to_problem: RowMapper


# --- ground truths and problems ------------------------------------------------------------


def _short(text: str) -> str | None:
    text = text.strip()
    return text if text and len(text) <= SHORT_ANSWER_CHARS else None


def boxed_or_short(text: str) -> str | None:
    """The last ``\\boxed{}`` of ``text`` (stripped), else the text itself when short."""
    from sodctl.rewards.boxed import last_box

    box = last_box(text)
    if box is not None and box.strip():
        return box.strip()
    return _short(text)


def final_answer_of(text: str) -> str | None:
    """A ReTool answer: the last ``\\boxed{}`` of the final message, else the content of its
    last ``<answer>...</answer>`` when short."""
    from sodctl.rewards.boxed import last_box

    box = last_box(text)
    if box is not None and box.strip():
        return box.strip()
    start = text.rfind("<answer>")
    if start >= 0:
        end = text.find("</answer>", start)
        return _short(text[start + len("<answer>") : end if end >= 0 else len(text)])
    return None


def _text(row: dict[str, Any], column: str, file: str, i: int) -> str:
    value = row.get(column)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise row_error(file, i, column, f"expected a string, got {type(value).__name__}")
    return value


def _s1k(row: dict[str, Any], i: int, templates: Mapping[str, str], file: str) -> SFTProblem | str:
    from sodctl.data.prompting import compose_math

    question = _text(row, "question", file, i).strip()
    if not question:
        return "empty_question"
    truth = boxed_or_short(_text(row, "solution", file, i))
    if truth is None:
        return "no_short_answer"
    return SFTProblem("s1k", f"s1k-{i}", "math", compose_math(templates, question), truth)


def _messages_of(row: dict[str, Any], file: str, i: int) -> list[dict[str, Any]]:
    messages = row.get("messages")
    if isinstance(messages, str):
        try:
            messages = json.loads(messages)
        except json.JSONDecodeError:
            raise row_error(file, i, "messages", "a string that is not JSON") from None
    if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
        raise row_error(file, i, "messages", "expected a list of {role, content} messages")
    return messages


def _retool(
    row: dict[str, Any], i: int, templates: Mapping[str, str], file: str
) -> SFTProblem | str:
    from sodctl.data.prompting import compose_math

    messages = _messages_of(row, file, i)
    user = next((m for m in messages if m.get("role") == "user"), None)
    problem = str((user or {}).get("content") or "").strip()
    if not problem:
        return "no_user_message"
    final = next((m for m in reversed(messages) if m.get("role") == "assistant"), None)
    truth = final_answer_of(str((final or {}).get("content") or ""))
    if truth is None:
        return "no_final_answer"
    return SFTProblem("retool", f"retool-{i}", "math", compose_math(templates, problem), truth)


def leetcode_ground_truth(row: Mapping[str, Any]) -> str:
    """The LeetCode harness spec of a LeetCodeDataset row, as ``sodctl.rewards.code`` reads it."""
    return json.dumps(
        {
            "import_prefix": row.get("prompt") or "",
            "test_code": row.get("test"),
            "entry_point": row.get("entry_point"),
        }
    )


def leetcode_prompt(
    templates: Mapping[str, str], description: str, starter: str, entry_point: str
) -> str:
    """``code_lead + problem + LEETCODE_STARTER + agent_note + code_submit`` (our wording)."""
    from sodctl.data.prompting import piece

    starter_text = (
        LEETCODE_STARTER.format(entry_point=entry_point, starter_code=starter.rstrip())
        if starter.strip()
        else ""
    )
    return (
        piece(templates, "code_lead")
        + description.strip()
        + starter_text
        + piece(templates, "agent_note")
        + piece(templates, "code_submit")
    )


def _leetcode(
    row: dict[str, Any], i: int, templates: Mapping[str, str], file: str
) -> SFTProblem | str:
    from sodctl.rewards.code import parse_tests

    description = _text(row, "problem_description", file, i)
    if not description.strip():
        return "empty_problem"
    for column in ("test", "entry_point", "prompt", "starter_code"):
        _text(row, column, file, i)
    truth = leetcode_ground_truth(row)
    try:
        parse_tests(truth)
    except ValueError:
        return "bad_tests"
    task = str(row.get("task_id") or f"row-{i}")
    prompt = leetcode_prompt(
        templates, description, _text(row, "starter_code", file, i), str(row["entry_point"])
    )
    return SFTProblem("leetcode", f"leetcode-{task}", "code", prompt, truth)


SFT_SOURCES: dict[str, SFTSource] = {
    "s1k": SFTSource(
        "s1k", "simplescaling/s1K-1.1", ("*.parquet",), ("question", "solution"),
        "math", "Mathematical", "s1-1k", 1000, None, _s1k,
    ),
    "retool": SFTSource(
        "retool", "swordfaith/ReTool-SFT-multi-turn", ("*.parquet",), ("messages",),
        "math", "Tool-use", "ReTool", 2000, 1000, _retool,
    ),
    "leetcode": SFTSource(
        "leetcode", "newfacade/LeetCodeDataset", ("*.jsonl",),
        ("task_id", "problem_description", "starter_code", "prompt", "entry_point", "test"),
        "code", "Coding", "LeetCode", 3000, 1000, _leetcode,
    ),
}  # fmt: skip


# --- reading the sources -------------------------------------------------------------------


@dataclass
class LoadedSource:
    name: str
    path: Path
    repo: str | None
    revision: str | None
    rows: int
    problems: list[SFTProblem]
    dropped: Counter[str] = field(default_factory=Counter)


def _data_files(path: Path, patterns: Sequence[str]) -> list[Path]:
    """The file itself, else the folder's files matching ``patterns`` (all of them when
    none matches: a user's copy may name its files otherwise)."""
    if path.is_file():
        return [path]
    return data_files(path, patterns) or data_files(path)


def _locate(
    src: SFTSource, given: str | None, hub: HubOptions
) -> tuple[Path, str | None, str | None]:
    fix = f"pass --source {src.name}=PATH (a local copy of {src.repo})"
    if given is None:
        folder, commit = hub_snapshot(
            src.repo, src.patterns, what=f"SFT source {src.name}", fix=fix, hub=hub
        )
        return folder, src.repo, commit
    path = Path(given)
    if not path.exists():
        raise SodctlUsageError(f"--source {src.name}={given}: no such file or folder")
    return path, None, None


def load_source(
    src: SFTSource,
    given: str | None,
    *,
    templates: Mapping[str, str],
    count: int | None,
    seed: int,
    hub: HubOptions = DEFAULT_HUB,
) -> LoadedSource:
    """The problems of one source: every row read and checked, unusable rows dropped
    (counted by reason), duplicates dropped, then ``count`` of them sampled (seeded)."""
    path, repo, revision = _locate(src, given, hub)
    files = _data_files(path, src.patterns)
    if not files:
        raise SodctlUsageError(
            f"SFT source {src.name}: {path} holds no .parquet or .jsonl file; pass --source {src.name}=PATH"
        )
    problems: list[SFTProblem] = []
    dropped: Counter[str] = Counter()
    seen: set[tuple[str, str]] = set()
    rows = 0
    fix = f"pass --source {src.name}=PATH in the schema of {src.repo}"
    for file in files:
        table = read_table(file, what=f"SFT source {src.name}", columns=src.columns, fix=fix)
        for i, row in enumerate(table):
            made = src.to_problem(row, rows + i, templates, str(file))
            if isinstance(made, str):
                dropped[made] += 1
            elif (made.id, made.prompt) in seen or (made.prompt, made.ground_truth) in seen:
                dropped["duplicate"] += 1
            else:
                seen.update({(made.id, made.prompt), (made.prompt, made.ground_truth)})
                problems.append(made)
        rows += len(table)
    if count is not None and count < len(problems):
        rng = random.Random(f"{seed}/sft/{src.name}")
        problems = [problems[i] for i in sorted(rng.sample(range(len(problems)), count))]
    return LoadedSource(src.name, path, repo, revision, rows, problems, dropped)


# --- trajectories -> SFT messages ----------------------------------------------------------


class UnusableTrajectory(ValueError):
    """A trajectory that cannot be written as SFT messages; ``reason`` is counted."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _strip_end(text: str, end_tokens: Sequence[str]) -> str:
    changed = True
    while changed:
        changed = False
        for tok in end_tokens:
            if tok and text.endswith(tok):
                text, changed = text[: -len(tok)], True
    return text


def _shown(call: Any) -> bool:
    """Whether the model saw this call's observation: every call the tool ran, and blocks
    that were not run but answered (``PlannedCall.shown``); a block recorded only (not
    run, not answered) has status ``invalid_call`` and an empty observation."""
    return not (call.status == "invalid_call" and call.observation == "")


def trajectory_messages(
    prompt: str,
    traj: Any,
    *,
    known_tools: Sequence[str] = (TOOL_NAME,),
    end_tokens: Sequence[str] = ("<|im_end|>", "<|endoftext|>"),
) -> list[dict[str, Any]]:
    """The SFT messages (``schema.sft_message``) of a finished ``Trajectory`` whose user
    message was ``prompt``; ``UnusableTrajectory`` says why one cannot be written."""
    from sodctl.tools.parsing import ToolCall, parse_tool_calls

    if traj.stop_reason != STOP_KEPT:
        raise UnusableTrajectory(str(traj.stop_reason))
    messages = [sft_message("user", prompt)]
    last = len(traj.turn_texts) - 1
    for k, raw in enumerate(traj.turn_texts):
        text = _strip_end(raw, end_tokens)
        blocks = parse_tool_calls(text, known_tools=tuple(known_tools)).blocks
        if k == last:
            if blocks:
                raise UnusableTrajectory("final_turn_has_call")
            messages.append(sft_message("assistant", text))
            break
        if not blocks or not all(isinstance(b, ToolCall) for b in blocks):
            raise UnusableTrajectory("invalid_call_block")
        first = text.find(blocks[0].raw)
        rest, cursor = text[first:], 0
        for b in blocks:  # nothing but whitespace may stand between or after the blocks
            at = rest.find(b.raw, cursor)
            if rest[cursor:at].strip():
                raise UnusableTrajectory("text_between_tool_calls")
            cursor = at + len(b.raw)
        if rest[cursor:].strip():
            raise UnusableTrajectory("text_after_tool_call")
        calls = [
            {
                "type": "function",
                "function": {
                    "name": b.name,
                    "arguments": json.dumps(b.arguments, ensure_ascii=False),
                },
            }
            for b in blocks
        ]
        messages.append(sft_message("assistant", text[:first].rstrip(), calls))
        for call in traj.tool_calls:
            if call.turn == k and _shown(call):
                messages.append(sft_message("tool", call.observation))
    return messages


# --- scorers -------------------------------------------------------------------------------


def load_scorer(spec: str) -> Scorer | None:
    """None for ``"rule"``; else the function ``module:function`` names (one-line errors)."""
    if spec == "rule":
        return None
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise SodctlUsageError(f"--scorer {spec!r}: expected 'rule' or MODULE:FUNCTION")
    try:
        module = importlib.import_module(module_name)
    except Exception as e:  # noqa: BLE001 - any import failure is the user's spec
        raise SodctlUsageError(
            f"--scorer {spec!r}: cannot import {module_name} ({type(e).__name__}: {e})"
        ) from None
    fn = module
    for part in attr.split("."):
        fn = getattr(fn, part, None)
        if fn is None:
            raise SodctlUsageError(f"--scorer {spec!r}: {module_name} has no attribute {attr!r}")
    if not callable(fn):
        raise SodctlUsageError(f"--scorer {spec!r}: {attr} is not callable")
    return fn  # type: ignore[return-value]


def _score(scorer: Scorer, spec: str, problem: SFTProblem, messages: list[dict[str, Any]]) -> float:
    try:
        value = scorer(problem.as_dict(), [dict(m) for m in messages])
        return float(value)
    except Exception as e:  # noqa: BLE001 - a user's function: name it in one line
        raise SodctlUsageError(
            f"--scorer {spec}: failed on problem {problem.id} ({type(e).__name__}: {e})"
        ) from None


# --- the build -----------------------------------------------------------------------------


def candidate_schema() -> Any:
    import pyarrow as pa

    return pa.schema(
        [
            ("problem", pa.int64()),
            ("source", pa.string()),
            ("problem_id", pa.string()),
            ("sample", pa.int64()),
            ("stop_reason", pa.string()),
            ("unusable", pa.string()),
            ("messages", pa.string()),
            ("correct", pa.bool_()),
            ("score", pa.float64()),
            ("n_tool_calls", pa.int64()),
            ("n_tool_errors", pa.int64()),
            ("num_turns", pa.int64()),
            ("response_tokens", pa.int64()),
        ]
    )


@dataclass
class SFTBuild:
    """What ``build_sft`` wrote: the corpus, its manifest, and the per-source counts."""

    out: Path
    path: Path
    rows: int
    manifest: dict[str, Any]
    generated_shards: int

    def summary(self) -> str:
        parts = []
        for name, s in self.manifest["sources"].items():
            parts.append(
                f"{name} {s['kept']} kept of {s['trajectories']} trajectories ({s['problems']} problems, "
                f"{s['correct']} correct)"
            )
        return f"SFT corpus: {self.rows} conversations -> {self.path}; " + "; ".join(parts)


def _shard_seed(seed: int, shard: int) -> int:
    digest = hashlib.sha256(f"{seed}/sft/shard/{shard}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def _check_names(what: str, mapping: Mapping[str, Any]) -> None:
    unknown = [k for k in mapping if k not in SFT_SOURCES]
    if unknown:
        raise SodctlUsageError(
            f"{what}: unknown SFT source {unknown[0]!r}; known: {', '.join(SFT_SOURCES)}"
        )
    for k, v in mapping.items():
        if v is not None and (not isinstance(v, int) or v < 1) and what != "--source":
            raise SodctlUsageError(f"{what} {k}={v}: expected a positive integer or all")


@dataclass
class _Generator:
    """The teacher, tool and loop settings; the engine is made on first use."""

    cfg: Any
    teacher: str
    engine: Any
    tool: Any
    scorer: Scorer | None
    scorer_spec: str
    seed: int

    def ensure(self) -> None:
        from sodctl.eval.runner import make_engine
        from sodctl.tools.code_interpreter import CodeInterpreter

        if self.engine is None:
            self.engine = make_engine(self.cfg, self.teacher)
        if self.tool is None:
            self.tool = CodeInterpreter.from_config(self.cfg.tool, fault_seed=self.cfg.seed)

    def schema(self) -> dict[str, Any]:
        from sodctl.tools.code_interpreter import tool_schema

        return getattr(self.tool, "schema", None) or tool_schema(str(self.cfg.tool.schema))

    def run(
        self, problems: Sequence[tuple[int, SFTProblem]], samples: int, shard: int
    ) -> list[dict[str, Any]]:
        """Roll out, convert, grade and score every (problem, sample) of one shard."""
        from sodctl.rewards import grade_many
        from sodctl.rewards.reward import code_test_options
        from sodctl.rollout.agent import AgentLoopConfig, chat_prompt_ids, run_agent_loop
        from sodctl.rollout.engine import SamplingParams

        self.ensure()
        ev = self.cfg.eval
        tokenizer = self.engine.tokenizer
        schema = self.schema()
        units, rows = [], []
        for gi, p in problems:
            ids = chat_prompt_ids(tokenizer, [{"role": "user", "content": p.prompt}], [schema])
            for s in range(samples):
                if len(ids) > ev.max_prompt_tokens:
                    rows.append(_row(gi, p, s, stop="prompt_too_long"))
                else:
                    units.append((gi, p, s, ids))
        params = SamplingParams(
            max_new_tokens=ev.max_response_tokens,
            temperature=ev.temperature,
            top_p=ev.top_p,
            top_k=ev.top_k,
            seed=_shard_seed(self.seed, shard),
        )
        loop = AgentLoopConfig.from_config(
            self.cfg, max_turns=ev.max_turns, max_response_tokens=ev.max_response_tokens
        )
        trajs = (
            run_agent_loop(self.engine, tokenizer, self.tool, [u[3] for u in units], params, loop)
            if units
            else []
        )
        end_tokens = tuple(t for t in ("<|im_end|>", "<|endoftext|>", tokenizer.eos_token) if t)
        finished: list[tuple[dict[str, Any], SFTProblem, Any, list[dict[str, Any]]]] = []
        for (gi, p, s, _), tr in zip(units, trajs):
            row = _row(gi, p, s, stop=str(tr.stop_reason), traj=tr)
            try:
                messages = trajectory_messages(
                    p.prompt, tr, known_tools=loop.known_tools, end_tokens=end_tokens
                )
            except UnusableTrajectory as e:
                if tr.stop_reason == STOP_KEPT:
                    row["unusable"] = e.reason
                rows.append(row)
                continue
            row["messages"] = json.dumps(messages, ensure_ascii=False)
            finished.append((row, p, tr, messages))
        if finished:
            grades = grade_many(
                [tr.text for _, _, tr, _ in finished],
                [p.ground_truth for _, p, _, _ in finished],
                kind=[p.kind for _, p, _, _ in finished],
                grader=str(self.cfg.reward.grader),
                **code_test_options(self.cfg.reward),
            )
            for (row, p, _, messages), g in zip(finished, grades):
                row["correct"] = bool(g.correct)
                if self.scorer is None:
                    row["score"] = 1.0 if g.correct else 0.0
                else:
                    row["score"] = _score(self.scorer, self.scorer_spec, p, messages)
                rows.append(row)
        return sorted(rows, key=lambda r: (r["problem"], r["sample"]))


def read_shard(path: str | Path) -> list[dict[str, Any]]:
    """A shard's rows (``Shards.path(i)``) with their nulls as None (through pandas, null
    strings and booleans would come back as NaN)."""
    import pyarrow.parquet as pq

    try:
        return pq.read_table(path).to_pylist()
    except Exception as e:  # noqa: BLE001 - a torn or foreign file: rebuild it
        raise SodctlUsageError(
            f"shard {path} cannot be read ({type(e).__name__}); delete it to regenerate, or pass --force"
        ) from None


def _row(gi: int, p: SFTProblem, sample: int, *, stop: str, traj: Any = None) -> dict[str, Any]:
    return {
        "problem": gi,
        "source": p.source,
        "problem_id": p.id,
        "sample": sample,
        "stop_reason": stop,
        "unusable": None,
        "messages": None,
        "correct": None,
        "score": None,
        "n_tool_calls": traj.n_tool_calls if traj is not None else 0,
        "n_tool_errors": traj.n_tool_errors if traj is not None else 0,
        "num_turns": traj.num_turns if traj is not None else 0,
        "response_tokens": len(traj.response_ids) if traj is not None else 0,
    }


def select(
    candidates: Sequence[Mapping[str, Any]], *, rule: bool, keep: int | None
) -> list[Mapping[str, Any]]:
    """The kept trajectories of one source (see the module docstring), in problem order
    (rule) or best score first (a custom scorer)."""
    usable = [c for c in candidates if c.get("messages") is not None]
    by_problem: dict[int, list[Mapping[str, Any]]] = {}
    for c in usable:
        if rule and not c.get("correct"):
            continue
        by_problem.setdefault(int(c["problem"]), []).append(c)
    best = []
    for problem in sorted(by_problem):
        group = sorted(by_problem[problem], key=lambda c: int(c["sample"]))
        if rule:
            best.append(min(group, key=lambda c: int(c["n_tool_errors"])))
        else:
            best.append(max(group, key=lambda c: float(c["score"])))  # first max on a tie
    if not rule:
        best.sort(key=lambda c: -float(c["score"]))  # stable: problem order on a tie
    return best if keep is None else best[:keep]


def build_sft(
    out: str | Path,
    *,
    teacher: str,
    cfg: Any,
    sources: Mapping[str, str] = {},  # noqa: B006 - read-only
    counts: Mapping[str, int | None] = {},  # noqa: B006
    keep: Mapping[str, int | None] = {},  # noqa: B006
    samples: int = 1,
    scorer: str = "rule",
    seed: int = 42,
    hub: HubOptions = DEFAULT_HUB,
    shard_size: int = 64,
    force: bool = False,
    progress: bool = True,
    engine: Any = None,
    tool: Any = None,
) -> SFTBuild:
    """Build the SFT corpus from s1K-1.1, ReTool and LeetCode with ``teacher`` (module
    docstring); ``engine`` / ``tool`` replace the config's (tests, a running server)."""
    from omegaconf import OmegaConf

    from sodctl.data.loaders import load_prompts
    from sodctl.progress import progress_bar

    _check_names("--source", sources)
    _check_names("--count", counts)
    _check_names("--keep", keep)
    if samples < 1:
        raise SodctlUsageError(f"--samples {samples}: expected a positive integer")
    if shard_size < 1:
        raise SodctlUsageError(f"--shard-size {shard_size}: expected a positive integer")
    user_scorer = load_scorer(scorer)
    out = Path(out)
    templates = load_prompts(cfg.data.prompts_file)
    loaded = [
        load_source(
            src, sources.get(name), templates=templates, count=counts.get(name), seed=seed, hub=hub
        )
        for name, src in SFT_SOURCES.items()
    ]
    problems = [p for ls in loaded for p in ls.problems]
    ev = cfg.eval
    settings = {
        "temperature": ev.temperature, "top_p": ev.top_p, "top_k": ev.top_k,
        "max_response_tokens": ev.max_response_tokens, "max_turns": ev.max_turns,
        "max_prompt_tokens": ev.max_prompt_tokens, "turn_layout": str(cfg.rollout.turn_layout),
    }  # fmt: skip
    fingerprint = {
        "builder": BUILDER_VERSION,
        "teacher": teacher,
        "sources": {ls.name: file_identity(ls.path) for ls in loaded},
        "counts": {name: counts.get(name) for name in SFT_SOURCES},
        "samples": samples,
        "scorer": scorer,
        "seed": seed,
        "shard_size": shard_size,
        "sampling": settings,
        "tool": OmegaConf.to_container(cfg.tool, resolve=True, enum_to_str=True),
        "grader": {
            "grader": str(cfg.reward.grader),
            "code": fingerprint_of(
                OmegaConf.to_container(cfg.reward, resolve=True, enum_to_str=True)
            ),
        },
        "templates": fingerprint_of(templates),
        "problems": fingerprint_of([p.as_dict() for p in problems]),
    }
    shards = Shards(out / SHARDS_DIR, fingerprint, force=force)
    gen = _Generator(cfg, teacher, engine, tool, user_scorer, scorer, seed)
    ranges = chunks(len(problems), shard_size)
    generated = 0
    with progress_bar("{task.description}", disable=not progress) as bar:
        task = bar.add_task("sft trajectories", total=len(problems))
        for index, r in enumerate(ranges):
            if not shards.done(index):
                rows = gen.run([(i, problems[i]) for i in r], samples, index)
                shards.write(index, rows, schema=candidate_schema())
                generated += 1
            bar.update(task, advance=len(r))
    candidates = [row for i in range(len(ranges)) for row in read_shard(shards.path(i))]
    return _finish(out, loaded, candidates, gen, keep=keep, scorer=scorer, teacher=teacher,
                   seed=seed, samples=samples, settings=settings, generated=generated)  # fmt: skip


def _finish(
    out: Path,
    loaded: Sequence[LoadedSource],
    candidates: Sequence[Mapping[str, Any]],
    gen: _Generator,
    *,
    keep: Mapping[str, int | None],
    scorer: str,
    teacher: str,
    seed: int,
    samples: int,
    settings: Mapping[str, Any],
    generated: int,
) -> SFTBuild:
    """Select, write the corpus and the manifest; one line when nothing was kept."""
    per_source: dict[str, Any] = {}
    kept_rows: list[dict[str, Any]] = []
    for ls in loaded:
        src = SFT_SOURCES[ls.name]
        limit = keep.get(ls.name, src.paper_keep)
        mine = [c for c in candidates if c["source"] == ls.name]
        chosen = select(mine, rule=scorer == "rule", keep=limit)
        kept_rows += [{"messages": json.loads(c["messages"]), "source": ls.name} for c in chosen]
        entry: dict[str, Any] = {
            "rows": ls.rows,
            "problems": len(ls.problems),
            "dropped": dict(sorted(ls.dropped.items())),
            "trajectories": sum(c["stop_reason"] != "prompt_too_long" for c in mine),
            "stop_reasons": counted(str(c["stop_reason"]) for c in mine),
            "unusable": counted(str(c["unusable"]) for c in mine if c.get("unusable")),
            "correct": sum(bool(c.get("correct")) for c in mine),
            "kept": len(chosen),
            "keep": limit,
        }
        if scorer != "rule":
            entry["scored"] = sum(c.get("score") is not None for c in mine)
        per_source[ls.name] = entry
    if not kept_rows:
        counts = "; ".join(
            f"{n}: {s['problems']} problems, {s['trajectories']} trajectories, stop reasons "
            f"{s['stop_reasons']}, {s['correct']} correct"
            for n, s in per_source.items()
        )
        raise SodctlUsageError(
            f"no trajectory was kept: no trajectory was correct{' or scored' if scorer != 'rule' else ''} "
            f"({counts}); the shards in {out / SHARDS_DIR} are left for inspection"
        )
    random.Random(f"{seed}/sft/shuffle").shuffle(kept_rows)
    tools = json.dumps([gen.schema()])
    path = write_parquet(
        out / OUTPUT_FILE,
        [{"messages": r["messages"], "tools": tools} for r in kept_rows],
        schema=sft_schema(),
    )
    body = {
        "builder": BUILDER_VERSION,
        "seed": seed,
        "teacher": teacher,
        "scorer": scorer,
        "samples": samples,
        "sampling": dict(settings),
        "inputs": [
            input_entry(ls.name, ls.path, repo=ls.repo, revision=ls.revision, rows=ls.rows)
            for ls in loaded
        ],
        "outputs": [output_entry(path, len(kept_rows), root=out)],
        "sources": per_source,
        "table3": [
            {
                "type": "SFT Dataset",
                "domain": SFT_SOURCES[name].domain,
                "source": SFT_SOURCES[name].label,
                "samples": s["kept"],
            }
            for name, s in per_source.items()
        ],
    }
    write_manifest(out, "sft", body)
    manifest = json.loads((out / "manifest.json").read_text())
    return SFTBuild(out, path, len(kept_rows), manifest, generated)
