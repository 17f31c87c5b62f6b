"""``sodctl data fetch sft-3k | rl-30k | eval``: the released Open-AgentRL sets, checked and
normalised into the engines' schemas, with a manifest.

Each set comes from its hub id (the hub cache first; ``revision`` pins a commit, tag or
branch; ``offline`` reads the cache only) or from a local copy (``source``: the file, or a
folder holding it). Every row is checked; a bad one is one line naming the file, row and
column. What is written:

==========  ===========================  ==============================================
set         hub id                        written into ``out`` (default data/<set>)
==========  ===========================  ==============================================
sft-3k      Gen-Verse/Open-AgentRL-SFT-3K ``sft.parquet``: ``messages`` (tool-call
                                          arguments as JSON strings) + ``tools`` (JSON)
rl-30k      Gen-Verse/Open-AgentRL-30K    ``rl.parquet``: ``schema.rl_row`` rows
                                          (prompts as released: the engines wrap at load)
eval        Gen-Verse/Open-AgentRL-Eval   ``<release path>`` for each benchmark, the
                                          release's own bytes once they load (so
                                          ``eval.data_dir=<out>`` reads them)
==========  ===========================  ==============================================

Ground truths of rl-30k rows are normalised as the RL builder normalises its sources
(``sources.decode_answers``: a JSON-list answer such as ``'["12"]'`` becomes ``12``, every
answer kept in ``extra_info.answers``; a code spec is re-encoded as JSON); the manifest
counts how many rows needed it. Whether the release holds list-shaped answers is not
verified (DATA-SOURCES §3); if it does, the released strict reward compared them
verbatim and could never match them.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sodctl.data.benchmarks import BENCHMARKS, PAPER_BENCHES
from sodctl.data.builders.common import (
    DEFAULT_HUB,
    HubOptions,
    counted,
    hub_snapshot,
    input_entry,
    output_entry,
    read_table,
    row_error,
    write_manifest,
    write_parquet,
)
from sodctl.data.builders.schema import rl_row, rl_schema, sft_message
from sodctl.errors import SodctlUsageError


@dataclass(frozen=True)
class Release:
    name: str
    hub_repo: str
    files: tuple[str, ...]  # the release's file paths inside the repository
    title: str


RELEASES: dict[str, Release] = {
    r.name: r
    for r in (
        Release(
            "sft-3k",
            "Gen-Verse/Open-AgentRL-SFT-3K",
            ("full_sft_3k_shuffled_v4.parquet",),
            "the 3K multi-turn SFT corpus",
        ),
        Release(
            "rl-30k",
            "Gen-Verse/Open-AgentRL-30K",
            ("Open-AgentRL-30K.parquet",),
            "the 30K RL mixture",
        ),
        Release(
            "eval",
            "Gen-Verse/Open-AgentRL-Eval",
            tuple(BENCHMARKS[b].file for b in PAPER_BENCHES if BENCHMARKS[b].file),
            "the 433-problem evaluation set",
        ),
    )
}


@dataclass
class FetchResult:
    name: str
    out: Path
    outputs: list[dict[str, Any]]
    manifest: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> str:
        lines = [f"{self.name}: {sum(o['rows'] for o in self.outputs)} rows in {self.out}"]
        lines += [f"  {o['file']}: {o['rows']} rows" for o in self.outputs]
        lines.append(f"  use it with: {USE[self.name].format(out=self.out)}")
        return "\n".join(lines)


USE = {
    "sft-3k": "data.sft_path={out}/sft.parquet",
    "rl-30k": "data.rl_path={out}/rl.parquet",
    "eval": "eval.data_dir={out}",
}


def fetch_release(
    name: str,
    out: str | Path,
    *,
    source: str | None = None,
    hub: HubOptions = DEFAULT_HUB,
) -> FetchResult:
    """Fetch (or read from ``source``), check and write one released set into the folder
    ``out`` (with its ``manifest.json``)."""
    if name not in RELEASES:
        raise SodctlUsageError(f"unknown release {name!r}; known: {', '.join(RELEASES)}")
    release = RELEASES[name]
    fix = f"download {release.hub_repo} and pass --from PATH (the file or its folder)"
    if source is not None:
        root, commit, repo = Path(source), None, None
        if not root.exists():
            raise SodctlUsageError(f"data fetch {name}: --from {source} does not exist")
    else:
        root, commit = hub_snapshot(
            release.hub_repo, list(release.files), what=f"data fetch {name}", fix=fix, hub=hub
        )
        repo = release.hub_repo
    target = Path(out)
    if name == "eval":
        outputs, counts, inputs = _fetch_eval(root, target)
    else:
        file = _release_file(root, release)
        rows = read_table(file, what=f"data fetch {name}")
        if not rows:
            raise SodctlUsageError(f"data fetch {name}: {file} has no rows")
        if name == "sft-3k":
            normalised, counts = _normalise_sft(rows, file)
            written = write_parquet(target / "sft.parquet", normalised)
        else:
            normalised, counts = _normalise_rl(rows, file)
            written = write_parquet(target / "rl.parquet", normalised, rl_schema())
        outputs = [output_entry(written, len(normalised), target)]
        inputs = [
            input_entry(name, file, repo=repo, revision=commit or hub.revision, rows=len(rows))
        ]
    if repo is not None:
        for entry in inputs:
            entry.update(hub_repo=repo, revision=commit or hub.revision)
    manifest_path = write_manifest(
        target,
        "fetch",
        {
            "release": name,
            "hub_repo": release.hub_repo,
            "revision": commit or hub.revision,
            "from": None if source is None else str(Path(source).resolve()),
            "inputs": inputs,
            "outputs": outputs,
            "counts": counts,
            "table3": table3_of(name, counts),
        },
    )
    return FetchResult(name, target, outputs, json.loads(manifest_path.read_text()))


def _release_file(root: Path, release: Release) -> Path:
    if root.is_file():
        return root
    for rel in release.files:
        if (root / rel).is_file():
            return root / rel
    found = sorted(root.rglob("*.parquet"))
    if len(found) == 1:
        return found[0]
    raise SodctlUsageError(
        f"data fetch {release.name}: {root} holds no {release.files[0]}"
        + (f" (and {len(found)} other parquet files)" if found else "")
        + "; pass --from the parquet file itself"
    )


# --- sft-3k ---------------------------------------------------------------------------------


def _normalise_sft(
    rows: list[dict[str, Any]], file: Path
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    from sodctl.data.builders.inspect import messages_problem
    from sodctl.data.corpora import plain

    out, turns, calls = [], [], []
    final_kind: list[str] = []
    for i, row in enumerate(rows):
        if "messages" not in row:
            raise row_error(file, i, "messages", "missing")
        messages = plain(row["messages"])
        if not isinstance(messages, list) or not messages:
            raise row_error(file, i, "messages", "not a non-empty list of {role, content} messages")
        problem = messages_problem(messages)  # the check 'sodctl data inspect' runs
        if problem is not None:
            raise row_error(file, i, "messages", problem)
        normalised = [
            sft_message(m["role"], m.get("content") or "", m.get("tool_calls")) for m in messages
        ]
        tools = row.get("tools")
        if isinstance(tools, str):
            try:
                tools = json.loads(tools) if tools.strip() else None
            except json.JSONDecodeError as e:
                raise row_error(file, i, "tools", f"not valid JSON ({e.msg})") from None
        tools = plain(tools)
        if tools is not None and not isinstance(tools, list):
            raise row_error(file, i, "tools", "not a list of tool schemas")
        out.append({"messages": normalised, "tools": json.dumps(tools) if tools else None})
        turns.append(sum(m["role"] == "assistant" for m in normalised))
        calls.append(sum(len(m["tool_calls"] or []) for m in normalised))
        last = next((m["content"] for m in reversed(normalised) if m["role"] == "assistant"), "")
        final_kind.append("code" if "```python" in last else "math")
    counts = {
        "rows": len(out),
        "by_final_answer": counted(final_kind),
        "assistant_turns_mean": round(sum(turns) / len(turns), 2),
        "tool_calls_mean": round(sum(calls) / len(calls), 2),
        "with_tool_calls": sum(c > 0 for c in calls),
    }
    return out, counts


# --- rl-30k ---------------------------------------------------------------------------------


def _normalise_rl(
    rows: list[dict[str, Any]], file: Path
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    from sodctl.data.builders.sources import decode_answers
    from sodctl.data.prompting import json_cell

    out, listed = [], 0
    for i, row in enumerate(rows):
        for column in ("data_source", "prompt", "reward_model"):
            if row.get(column) is None:
                raise row_error(file, i, column, "missing or empty")
        prompt = row["prompt"]
        if isinstance(prompt, str):
            prompt = [{"role": "user", "content": prompt}]
        if not (
            isinstance(prompt, list)
            and prompt
            and all(isinstance(m, Mapping) and isinstance(m.get("content"), str) for m in prompt)
        ):
            raise row_error(file, i, "prompt", "not a list of {role, content} messages")
        users = [m for m in prompt if m.get("role") == "user"]
        if len(prompt) != 1 or not users:
            raise row_error(
                file, i, "prompt", f"holds {len(prompt)} messages; the engines take one user turn"
            )
        reward_model = json_cell(row["reward_model"])
        if not isinstance(reward_model, Mapping) or reward_model.get("ground_truth") in (None, ""):
            raise row_error(file, i, "reward_model", "has no ground_truth")
        source = str(row["data_source"])
        truth = json_cell(reward_model["ground_truth"])
        if "code" in source:
            if not isinstance(truth, (Mapping, list)):
                raise row_error(
                    file, i, "reward_model", "a code row's ground_truth is not a tests spec"
                )
            ground_truth, answers = json.dumps(truth), None
        else:
            answers = decode_answers(reward_model["ground_truth"])
            if not answers:
                raise row_error(
                    file,
                    i,
                    "reward_model",
                    f"ground_truth {reward_model['ground_truth']!r} holds no answer",
                )
            listed += answers != [str(reward_model["ground_truth"]).strip()]
            ground_truth = answers[0]
        extra = json_cell(row.get("extra_info")) or {}
        if not isinstance(extra, Mapping):
            raise row_error(file, i, "extra_info", "not a mapping")
        out.append(
            rl_row(
                data_source=source,
                content=users[0]["content"],
                ability=str(row.get("ability") or ""),
                ground_truth=ground_truth,
                style=str(reward_model.get("style") or "rule"),
                source="rl-30k",
                source_id=str(extra.get("index", i)),
                index=i,
                split=str(extra.get("split") or "train"),
                answers=answers if answers and len(answers) > 1 else None,
                solution=extra.get("solution") or None,
                hint=extra.get("hint") or None,
                raw={k: v for k, v in extra.items() if k != "tools_kwargs"} or None,
            )
        )
    counts = {
        "rows": len(out),
        "by_data_source": counted(r["data_source"] for r in out),
        "list_ground_truths": listed,
        "with_solution": sum(bool(r["extra_info"]["solution"]) for r in out),
        "with_hint": sum(bool(r["extra_info"]["hint"]) for r in out),
    }
    return out, counts


# --- eval -------------------------------------------------------------------------------------


def _fetch_eval(
    root: Path, target: Path
) -> tuple[list[dict[str, Any]], dict[str, Any], list[dict[str, Any]]]:
    """Find each benchmark's file in ``root`` (the release's layout, else by the
    ``data_source`` value of its first row, as the released loader dispatched), load it
    through the benchmark's loader (which checks every row), and copy it into place."""
    from sodctl.data.loaders import load_benchmark

    files = _eval_files(root)
    outputs, counts, inputs = [], {}, []
    for bench in PAPER_BENCHES:
        spec = BENCHMARKS[bench]
        file = files[bench]
        problems = load_benchmark(bench, path=str(file))
        dest = target / str(spec.file)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.tmp")
        shutil.copyfile(file, tmp)
        tmp.replace(dest)
        outputs.append(output_entry(dest, len(problems), target))
        inputs.append(input_entry(bench, file, rows=len(problems)))
        counts[bench] = len(problems)
    counts["total"] = sum(counts.values())
    return outputs, counts, inputs


def _eval_files(root: Path) -> dict[str, Path]:
    import pandas as pd

    if root.is_file():
        raise SodctlUsageError(
            f"data fetch eval: --from {root} is a file; pass the folder holding the four benchmark files"
        )
    found: dict[str, Path] = {}
    by_source = {BENCHMARKS[b].data_source: b for b in PAPER_BENCHES}
    for bench in PAPER_BENCHES:
        rel = BENCHMARKS[bench].file
        if rel and (root / rel).is_file():
            found[bench] = root / rel
    for file in sorted(root.rglob("*.parquet")):
        if file in found.values() or file.name.startswith("."):
            continue
        try:
            first = pd.read_parquet(file, columns=["data_source"])["data_source"]
        except Exception:  # noqa: BLE001 - no data_source column, or not parquet: not a benchmark file
            continue
        bench = by_source.get(str(first.iloc[0])) if len(first) else None
        if bench is not None and bench not in found:
            found[bench] = file
    missing = [b for b in PAPER_BENCHES if b not in found]
    if missing:
        raise SodctlUsageError(
            f"data fetch eval: {root} holds no file for {', '.join(missing)} (looked for "
            + ", ".join(
                f"{BENCHMARKS[b].file} or data_source {BENCHMARKS[b].data_source!r}"
                for b in missing
            )
            + ")"
        )
    return found


# --- Table 3 ----------------------------------------------------------------------------------


def family_of(data_source: str) -> tuple[str, str]:
    """``(domain, Table 3 source)`` of a released ``data_source`` value: math_dapo ->
    DAPO-Math, train-math-* -> Skywork math, train-code-* -> Skywork code, mega-science
    -> MegaScience; anything else is its own row."""
    from sodctl.data.builders.sources import RL_SOURCES

    name = {"math_dapo": "dapo", "mega-science": "megascience"}.get(data_source)
    if name is None and data_source.startswith("train-math-"):
        name = "skywork-math"
    if name is None and data_source.startswith("train-code-"):
        name = "skywork-code"
    if name is None:
        return "Other", data_source
    return RL_SOURCES[name].domain, RL_SOURCES[name].title


def table3_of(name: str, counts: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Table 3's rows for a fetched set: the RL mixture by ``data_source`` family; the SFT
    corpus by the form of its final answers (a python block: coding; else mathematical;
    the release does not say which of s1K / ReTool a math row came from)."""
    if name == "rl-30k":
        by_family: dict[tuple[str, str], int] = {}
        for source, n in counts["by_data_source"].items():
            key = family_of(source)
            by_family[key] = by_family.get(key, 0) + n
        return [
            {"type": "RL Dataset", "domain": domain, "source": title, "samples": n}
            for (domain, title), n in by_family.items()
        ]
    if name == "sft-3k":
        kinds = counts["by_final_answer"]
        return [
            {
                "type": "SFT Dataset",
                "domain": "Mathematical / Tool-use",
                "source": "s1-1k + ReTool (released)",
                "samples": kinds.get("math", 0),
            },
            {
                "type": "SFT Dataset",
                "domain": "Coding",
                "source": "LeetCode (released)",
                "samples": kinds.get("code", 0),
            },
        ]
    return []
