"""Training corpora as plain Python: SFT conversations and pretraining text.

``sft_conversations`` reads the SFT corpus (REFERENCE §9: columns ``messages``,
a list of ``{role, content, tool_calls?}`` dicts, and ``tools``, a JSON string)
from ``data.sft_path`` or else the hub file ``data.sft_hub_repo/sft_file``;
``pretrain_texts`` reads the ``text`` column of ``data.pretrain_path``.

Parquet hands nested columns back as NumPy arrays, and a struct column carries
every key any row used, with ``None`` where a row lacked it; conversations are
turned back into lists and dicts with those ``None`` keys dropped, which is what
chat templates expect (``tool_calls`` absent, not null).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from sodctl.config.schema import sft_path_of
from sodctl.data.files import read_parquet, to_python
from sodctl.data.loaders import _hub_file
from sodctl.errors import SodctlUsageError


@dataclass(frozen=True)
class Conversation:
    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]] | None


def plain(value: Any) -> Any:
    """NumPy arrays -> lists, dicts without their ``None`` entries, recursively."""
    return to_python(value, drop_none=True)


def _read(path: Path, columns: list[str], what: str):
    return read_parquet(path, what=what, columns=columns)


def sft_file(cfg: DictConfig) -> Path:
    """The SFT parquet of the model's size (``sft_path_of``: ``data.sft_path_by_size``, else
    ``data.sft_path``), else the hub file (cached, else downloaded)."""
    local = sft_path_of(cfg)
    if local is not None:
        return Path(local)
    return _hub_file(
        cfg.data.sft_hub_repo,
        cfg.data.sft_file,
        what="SFT corpus",
        fix=f"set data.sft_path to its {cfg.data.sft_file}",
    )


def _tools(cell: Any, row: int) -> list[dict[str, Any]] | None:
    if cell is None:
        return None
    if isinstance(cell, str):
        if not cell.strip():
            return None
        try:
            cell = json.loads(cell)
        except json.JSONDecodeError as e:
            raise SodctlUsageError(
                f"SFT corpus: row {row}: 'tools' is not valid JSON ({e})"
            ) from None
    tools = plain(cell)
    if not isinstance(tools, list):
        raise SodctlUsageError(f"SFT corpus: row {row}: 'tools' must be a list of tool schemas")
    return tools or None


def sft_conversations(cfg: DictConfig) -> list[Conversation]:
    """Every conversation of the SFT corpus (the first ``data.limit`` when set)."""
    path = sft_file(cfg)
    frame = _read(path, ["messages"], "SFT corpus")
    if cfg.data.limit is not None:
        frame = frame.head(cfg.data.limit)
    has_tools = "tools" in frame.columns
    out = []
    for i, row in enumerate(frame.itertuples(index=False)):
        messages = plain(row.messages)
        if not isinstance(messages, list) or not all(
            isinstance(m, dict) and "role" in m for m in messages
        ):
            raise SodctlUsageError(
                f"SFT corpus: row {i} of {path}: 'messages' must be a list of {{role, content}} dicts"
            )
        out.append(Conversation(messages, _tools(row.tools, i) if has_tools else None))
    if not out:
        raise SodctlUsageError(f"SFT corpus: {path} has no rows")
    return out


def pretrain_texts(cfg: DictConfig) -> list[str]:
    """The ``text`` column of ``data.pretrain_path`` (the first ``data.limit`` rows when set)."""
    if cfg.data.pretrain_path is None:
        raise SodctlUsageError(
            "pretraining needs data.pretrain_path (a parquet file with a 'text' column); the tiny "
            "presets set it, the paper's base models come pretrained"
        )
    path = Path(cfg.data.pretrain_path)
    frame = _read(path, ["text"], "pretraining text")
    if cfg.data.limit is not None:
        frame = frame.head(cfg.data.limit)
    texts = [str(t) for t in frame["text"].tolist() if t is not None and str(t)]
    if not texts:
        raise SodctlUsageError(f"pretraining text: {path} has no non-empty 'text' rows")
    return texts
