"""``sodctl data stats``: the paper's Table 3 (training-data composition) for what was built.

Every builder's manifest carries ``table3`` rows (``type``, ``domain``, ``source``,
``samples``); this module collects them from the manifests given (or every manifest
under ``data.out_dir``), sums them per dataset type, and prints them beside the paper's
counts (Table 3 of the paper; its RL total is not printed there, the text says 30k).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sodctl.data.builders.common import MANIFEST, read_manifest
from sodctl.errors import SodctlUsageError

# (type, domain, source) -> the paper's count
PAPER_TABLE3: dict[tuple[str, str, str], int] = {
    ("SFT Dataset", "Mathematical", "s1-1k"): 1000,
    ("SFT Dataset", "Coding", "LeetCode"): 1000,
    ("SFT Dataset", "Tool-use", "ReTool"): 1000,
    ("RL Dataset", "Mathematical", "DAPO-Math"): 17000,
    ("RL Dataset", "Mathematical", "Skywork-or1 (Math)"): 4902,
    ("RL Dataset", "Coding", "Skywork-or1 (Code)"): 3586,
    ("RL Dataset", "Scientific", "MegaScience"): 3000,
}
PAPER_TOTALS = {"SFT Dataset": "3k", "RL Dataset": "30k (text)"}


def find_manifests(root: str | Path) -> list[Path]:
    """The manifests of every build under ``root`` (its folders, one level down, and
    ``root`` itself)."""
    root = Path(root)
    found = [
        p / MANIFEST
        for p in [root, *sorted(q for q in root.glob("*") if q.is_dir())]
        if (p / MANIFEST).is_file()
    ]
    if not found:
        raise SodctlUsageError(
            f"no data manifest under {root}; build or fetch the data first (sodctl data rl, "
            "sodctl data sft, sodctl data fetch), or pass the manifests' paths"
        )
    return found


def table3_rows(manifests: Sequence[str | Path]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for path in manifests:
        manifest = read_manifest(path)
        where = Path(path).parent if Path(path).is_file() else Path(path)
        for r in manifest.get("table3") or []:
            rows.append({**r, "built_in": str(where)})
    return rows


def table3(manifests: Sequence[str | Path]) -> str:
    """Table 3 as markdown: one row per (type, domain, source) built, with the paper's
    count where the paper has the row, and a total per type."""
    rows = table3_rows(manifests)
    if not rows:
        raise SodctlUsageError(
            "the manifests hold no Table 3 rows (hints manifests have none); pass the rl / sft / fetch builds"
        )
    lines = [
        "| Dataset type | Domain | Source | # Samples | Paper | Built in |",
        "|---|---|---|---:|---:|---|",
    ]
    for kind in ("SFT Dataset", "RL Dataset"):
        mine = [r for r in rows if r["type"] == kind]
        if not mine:
            continue
        for r in mine:
            paper = PAPER_TABLE3.get((r["type"], r["domain"], r["source"]))
            lines.append(
                f"| {kind} | {r['domain']} | {r['source']} | {r['samples']:,} | "
                f"{'' if paper is None else f'{paper:,}'} | {r['built_in']} |"
            )
        total = sum(int(r["samples"]) for r in mine)
        lines.append(f"| {kind} | **Total** | | **{total:,}** | {PAPER_TOTALS[kind]} | |")
    return "\n".join(lines)
