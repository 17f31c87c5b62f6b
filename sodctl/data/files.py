"""Reading the parquet files every stage takes, with one-line errors.

Every data file sodctl reads (the RL and SFT corpora, the pretraining text, the
benchmarks) goes through ``read_parquet``: a missing file, a file that is not
parquet, or one that lacks a column the stage needs is a ``SodctlUsageError``
naming the file and what to fix, never a pyarrow traceback.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sodctl.errors import SodctlUsageError


def read_arrow(path: str | Path, *, what: str, columns: Sequence[str] = (), fix: str = "") -> Any:
    """``pyarrow.parquet.read_table(path)`` checked: ``what`` names the file's role in the
    error ("RL data", "benchmark 'aime24'"), ``columns`` are required, ``fix`` says how to
    mend it. (Rows from ``.to_pylist()`` keep nulls as ``None``; pandas makes some NaN.)"""
    import pyarrow.parquet as pq

    path = Path(path)
    hint = f"; {fix}" if fix else ""
    if not path.is_file():
        raise SodctlUsageError(f"{what}: no such file {path}{hint}")
    try:
        table = pq.read_table(path)
    except Exception as e:  # noqa: BLE001 - pyarrow raises many kinds; all mean "not parquet"
        first = (str(e).splitlines() or [""])[0]
        raise SodctlUsageError(
            f"{what}: cannot read {path} as parquet ({type(e).__name__}: {first}){hint}"
        ) from None
    require_columns(table, columns, path, what=what, fix=fix)
    return table


def read_parquet(path: str | Path, *, what: str, columns: Sequence[str] = (), fix: str = "") -> Any:
    """``read_arrow`` as a pandas frame."""
    return read_arrow(path, what=what, columns=columns, fix=fix).to_pandas()


def require_columns(
    frame: Any, columns: Sequence[str], path: str | Path, *, what: str, fix: str = ""
) -> None:
    """One line naming the ``columns`` a table (pandas or pyarrow) read from ``path`` lacks."""
    present = list(frame.column_names if hasattr(frame, "column_names") else frame.columns)
    missing = [c for c in columns if c not in present]
    if missing:
        hint = f"; {fix}" if fix else ""
        raise SodctlUsageError(f"{what}: {path} lacks column(s) {missing}; found {present}{hint}")


def to_python(value: Any, *, drop_none: bool = False) -> Any:
    """A parquet cell as plain Python: NumPy arrays and scalars become lists and scalars,
    recursively (so ``str()`` and ``json.dumps`` see what the data's writer wrote).
    ``drop_none`` removes the ``None`` entries that parquet struct columns give the keys
    a row does not have."""
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        value = value.tolist()
    if isinstance(value, Mapping):
        return {
            k: to_python(v, drop_none=drop_none)
            for k, v in value.items()
            if not (drop_none and v is None)
        }
    if isinstance(value, (list, tuple)):
        return [to_python(v, drop_none=drop_none) for v in value]
    return value
