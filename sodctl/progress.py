"""The progress bar of every long loop (SFT, RL, evaluation): label, bar, done/total,
elapsed time and ETA, then any extra columns."""

from __future__ import annotations

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


def progress_bar(
    label: str = "{task.description}",
    *extra: ProgressColumn | str,
    console: Console | None = None,
    disable: bool = False,
) -> Progress:
    """A rich ``Progress``; ``label`` and string ``extra`` columns are rich text templates."""
    tail = [TextColumn(c) if isinstance(c, str) else c for c in extra]
    return Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        *tail,
        console=console,
        disable=disable,
    )
