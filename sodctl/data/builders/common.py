"""What every data builder shares: source files, hub snapshots, row errors, atomic
parquet, restartable shards and the manifest.

Builders (``sodctl data fetch | rl | sft | hints``) read their inputs through
``read_table`` (parquet or JSON lines, one-line errors), fetch what was not given
with ``hub_snapshot`` (the hub cache first, one line offline that names the
option to pass instead), name the file, row and column of bad input with
``row_error``, write every output with ``write_parquet`` (temporary file, then
rename), keep slow work in ``Shards`` (finished shards are skipped on a rerun),
and end with ``write_manifest``: the inputs with their revisions and checksums,
the outputs with their rows and checksums, the counts and filters, the seed and
the code version.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sodctl.data.files import read_arrow
from sodctl.errors import SodctlUsageError

MANIFEST = "manifest.json"
FINGERPRINT = "fingerprint.json"
log = logging.getLogger(__name__)


# --- errors ----------------------------------------------------------------------------------


def row_error(
    file: str | Path, row: int, column: str, problem: str, fix: str = ""
) -> SodctlUsageError:
    """The one-line error for bad input: ``FILE: row R, column 'C': problem[; fix]``."""
    tail = f"; {fix}" if fix else ""
    return SodctlUsageError(f"{file}: row {row}, column {column!r}: {problem}{tail}")


# --- reading ---------------------------------------------------------------------------------


def read_table(
    path: str | Path, *, what: str, columns: Sequence[str] = (), fix: str = ""
) -> list[dict[str, Any]]:
    """The rows of a parquet file, a JSON-lines file (``.jsonl`` / ``.json``), or a directory
    of them (read in name order), as plain Python dicts (nulls as ``None``). ``columns`` are
    required; every problem is one line naming the file."""
    path = Path(path)
    hint = f"; {fix}" if fix else ""
    if path.is_dir():
        files = data_files(path)
        if not files:
            raise SodctlUsageError(f"{what}: {path} holds no .parquet or .jsonl files{hint}")
        return [row for f in files for row in read_table(f, what=what, columns=columns, fix=fix)]
    if path.suffix in (".jsonl", ".json"):
        return _read_jsonl(path, what=what, columns=columns, hint=hint)
    return read_arrow(path, what=what, columns=columns, fix=fix).to_pylist()


DATA_SUFFIXES = (".parquet", ".jsonl", ".json")


def data_files(folder: Path, patterns: Sequence[str] | None = None) -> list[Path]:
    """The data files (parquet, JSON lines) under ``folder``, in name order, hidden ones
    (any part starting with ".") left out; with ``patterns``, only those whose path inside
    ``folder`` matches one (``fnmatch``, as the hub matches ``allow_patterns``)."""
    from fnmatch import fnmatch

    files = sorted(
        p
        for p in folder.rglob("*")
        if p.is_file()
        and p.suffix in DATA_SUFFIXES
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )
    if patterns is None:
        return files
    return [
        p for p in files if any(fnmatch(p.relative_to(folder).as_posix(), pat) for pat in patterns)
    ]


def _read_jsonl(
    path: Path, *, what: str, columns: Sequence[str], hint: str
) -> list[dict[str, Any]]:
    if not path.is_file():
        raise SodctlUsageError(f"{what}: no such file {path}{hint}")
    rows: list[dict[str, Any]] = []
    with path.open(encoding="utf-8") as f:
        for n, line in enumerate(f):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise SodctlUsageError(
                    f"{what}: {path}: line {n + 1} is not JSON ({e.msg}){hint}"
                ) from None
            if not isinstance(row, dict):
                raise SodctlUsageError(f"{what}: {path}: line {n + 1} is not a JSON object{hint}")
            rows.append(row)
    for i, row in enumerate(rows):
        missing = [c for c in columns if c not in row]
        if missing:
            raise SodctlUsageError(f"{what}: {path}: row {i} lacks column(s) {missing}{hint}")
    return rows


# --- the hub ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class HubOptions:
    """How builders reach the hub: ``revision`` (a branch, tag or commit; None = main),
    ``cache_dir`` (None = the hub's default cache), ``offline`` (the cache only)."""

    revision: str | None = None
    cache_dir: str | None = None
    offline: bool = False


DEFAULT_HUB = HubOptions()


def hub_snapshot(
    repo: str,
    patterns: Sequence[str],
    *,
    what: str,
    fix: str,
    hub: HubOptions = DEFAULT_HUB,
) -> tuple[Path, str | None]:
    """``(local folder, commit)`` of the files of dataset ``repo`` matching ``patterns``:
    from the cache when it holds them, else downloaded. Without the hub (offline,
    unreachable, gated, renamed) one line says what failed and ``fix`` (the option that
    passes a local copy instead)."""
    import socket
    from urllib.parse import urlparse

    from huggingface_hub import constants, snapshot_download

    kwargs = dict(
        repo_type="dataset",
        allow_patterns=list(patterns),
        revision=hub.revision,
        cache_dir=hub.cache_dir,
    )
    try:
        folder = Path(snapshot_download(repo, local_files_only=True, **kwargs))
        if data_files(folder, patterns):
            return folder, _commit_of(folder)
    except Exception:  # noqa: BLE001 - not cached: try the network
        pass
    if hub.offline or constants.HF_HUB_OFFLINE:
        raise SodctlUsageError(
            f"{what}: {repo} is not in the hub cache and offline mode is on; {fix}"
        )
    host = urlparse(constants.ENDPOINT).hostname or "huggingface.co"
    try:
        socket.getaddrinfo(host, 443)
    except OSError:
        raise SodctlUsageError(
            f"{what}: {repo} is not cached and {host} cannot be reached; {fix}"
        ) from None
    hub_log = logging.getLogger("huggingface_hub")
    level = hub_log.level
    hub_log.setLevel(logging.ERROR)  # its retry warnings would break the one-line error
    try:
        folder = Path(snapshot_download(repo, **kwargs))
    except Exception as e:  # noqa: BLE001 - offline, gated, renamed: say how to get around it
        raise SodctlUsageError(
            f"{what}: could not fetch {repo} from the hub ({type(e).__name__}); {fix}"
        ) from None
    finally:
        hub_log.setLevel(level)
    if not data_files(folder, patterns):
        raise SodctlUsageError(f"{what}: {repo} has no file matching {list(patterns)}; {fix}")
    return folder, _commit_of(folder)


def _commit_of(folder: Path) -> str | None:
    """The commit of a hub snapshot folder (``.../snapshots/<commit>``)."""
    return folder.name if folder.parent.name == "snapshots" else None


def hub_reachable() -> bool:
    """Whether the hub's host resolves (a quick check before a slow, retrying download)."""
    import socket
    from urllib.parse import urlparse

    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return False
    try:
        socket.getaddrinfo(urlparse(constants.ENDPOINT).hostname or "huggingface.co", 443)
    except OSError:
        return False
    return True


def load_tokenizer(name: str, *, what: str, fix: str, offline: bool = False) -> Any:
    """A tokenizer from a local folder, the hub cache, or the hub (when reachable and not
    ``offline``); one line naming ``name`` and ``fix`` otherwise, fast (no retries against
    an unreachable hub)."""
    from transformers import AutoTokenizer

    def failed(e: Exception) -> SodctlUsageError:
        first = (str(e).splitlines() or [""])[0][:160]
        return SodctlUsageError(
            f"{what}: cannot load the tokenizer {name} ({type(e).__name__}: {first}); {fix}"
        )

    if Path(name).exists():
        try:
            return AutoTokenizer.from_pretrained(name)
        except Exception as e:  # noqa: BLE001 - not a tokenizer folder
            raise failed(e) from None
    try:
        return AutoTokenizer.from_pretrained(name, local_files_only=True)
    except Exception:  # noqa: BLE001 - not cached
        if offline or not hub_reachable():
            raise SodctlUsageError(
                f"{what}: cannot load the tokenizer {name}: it is not a folder, not in the hub "
                f"cache, and the hub {'is off (offline)' if offline else 'cannot be reached'}; {fix}"
            ) from None
    try:
        return AutoTokenizer.from_pretrained(name)
    except Exception as e:  # noqa: BLE001 - gated, renamed
        raise failed(e) from None


# --- writing ---------------------------------------------------------------------------------


def write_parquet(path: str | Path, rows: Sequence[Mapping[str, Any]], schema: Any = None) -> Path:
    """Write ``rows`` to ``path`` atomically (a hidden temporary file, then a rename), with
    the pyarrow ``schema`` when given (else inferred)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    table = pa.Table.from_pylist([dict(r) for r in rows], schema=schema)
    pq.write_table(table, tmp)
    os.replace(tmp, path)
    return path


def write_json(path: str | Path, obj: Any) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")
    os.replace(tmp, path)
    return path


def sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fingerprint_of(obj: Any) -> str:
    """A short stable digest of a JSON-able description of a build's inputs."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def file_identity(path: str | Path) -> dict[str, Any]:
    """What identifies an input file cheaply (path, size, modification time)."""
    p = Path(path)
    files = sorted(q for q in p.rglob("*") if q.is_file()) if p.is_dir() else [p]
    return {
        "path": str(p.resolve()),
        "files": [
            [
                str(q.relative_to(p) if p.is_dir() else q.name),
                q.stat().st_size,
                q.stat().st_mtime_ns,
            ]
            for q in files
        ],
    }


# --- restartable shards ----------------------------------------------------------------------


class Shards:
    """Slow work kept in numbered parquet shards under ``root``, each written atomically;
    a rerun with the same ``fingerprint`` skips the finished ones. ``root`` built from a
    different fingerprint is refused (one line) unless ``force``, which sets the old
    shards aside as ``root.stale-N`` (never deleted)."""

    def __init__(
        self, root: str | Path, fingerprint: Mapping[str, Any], *, force: bool = False
    ) -> None:
        self.root = Path(root)
        self.fingerprint = dict(fingerprint)
        marker = self.root / FINGERPRINT
        if marker.is_file():
            old = json.loads(marker.read_text())
            if old != json.loads(json.dumps(self.fingerprint, default=str)):
                if not force:
                    changed = sorted(
                        k
                        for k in set(old) | set(self.fingerprint)
                        if old.get(k)
                        != json.loads(json.dumps(self.fingerprint.get(k), default=str))
                    )
                    raise SodctlUsageError(
                        f"{self.root} holds shards built from other inputs (changed: "
                        f"{', '.join(changed)}); pass --force to set them aside and rebuild, "
                        "or choose another --out"
                    )
                self._set_aside()
        elif force and self.root.is_dir() and any(self.root.iterdir()):
            self._set_aside()
        self.root.mkdir(parents=True, exist_ok=True)
        write_json(marker, self.fingerprint)

    def _set_aside(self) -> None:
        n = 1
        while self.root.with_name(f"{self.root.name}.stale-{n}").exists():
            n += 1
        target = self.root.with_name(f"{self.root.name}.stale-{n}")
        os.replace(self.root, target)
        log.warning("%s was built from other inputs; set aside as %s", self.root, target.name)

    def path(self, index: int) -> Path:
        return self.root / f"shard-{index:05d}.parquet"

    def done(self, index: int) -> bool:
        return self.path(index).is_file()

    def write(self, index: int, rows: Sequence[Mapping[str, Any]], schema: Any = None) -> Path:
        return write_parquet(self.path(index), rows, schema)

    def read(self, index: int) -> list[dict[str, Any]]:
        return read_table(self.path(index), what=f"shard {index} of {self.root}")

    def read_all(self, count: int) -> list[dict[str, Any]]:
        return [row for i in range(count) for row in self.read(i)]


def chunks(n: int, size: int) -> list[range]:
    """``range(n)`` cut into consecutive ranges of at most ``size``."""
    return [range(s, min(n, s + size)) for s in range(0, n, max(1, size))]


# --- the manifest ----------------------------------------------------------------------------


def output_entry(path: str | Path, rows: int, root: str | Path | None = None) -> dict[str, Any]:
    p = Path(path)
    name = str(p.relative_to(root)) if root is not None else p.name
    return {"file": name, "rows": rows, "sha256": sha256(p), "bytes": p.stat().st_size}


def input_entry(
    name: str,
    path: str | Path,
    *,
    repo: str | None = None,
    revision: str | None = None,
    rows: int | None = None,
) -> dict[str, Any]:
    """One input of a build: its name, where it was read, the hub repo and commit it came
    from (when it did), its row count and a checksum of its files."""
    p = Path(path)
    files = (
        sorted(q for q in p.rglob("*") if q.is_file() and not q.name.startswith("."))
        if p.is_dir()
        else [p]
    )
    digest = hashlib.sha256()
    for q in files:
        digest.update(sha256(q).encode())
    return {
        "name": name,
        "path": str(p),
        "hub_repo": repo,
        "revision": revision,
        "rows": rows,
        "sha256": digest.hexdigest(),
    }


def write_manifest(out: str | Path, kind: str, body: Mapping[str, Any]) -> Path:
    """``out/manifest.json``: ``kind`` (fetch, rl, sft, hints), when, the code version,
    then ``body`` (inputs, outputs, counts, filters, seed)."""
    from sodctl.runinfo import git_info, package_versions

    manifest = {
        "kind": kind,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "sodctl": package_versions().get("sodctl"),
        "git": git_info(),
        **body,
    }
    return write_json(Path(out) / MANIFEST, manifest)


def read_manifest(path: str | Path) -> dict[str, Any]:
    """A manifest (the file, or the directory holding ``manifest.json``); one line if absent."""
    p = Path(path)
    file = p / MANIFEST if p.is_dir() else p
    if not file.is_file():
        raise SodctlUsageError(
            f"no manifest at {file}; build the data first (sodctl data rl / sft / fetch)"
        )
    try:
        obj = json.loads(file.read_text())
    except json.JSONDecodeError as e:
        raise SodctlUsageError(f"{file} is not JSON ({e.msg}); rebuild the data") from None
    if not isinstance(obj, dict) or "kind" not in obj:
        raise SodctlUsageError(f"{file} is not a sodctl data manifest (no 'kind')")
    return obj


def counted(values: Iterable[str]) -> dict[str, int]:
    from collections import Counter

    return dict(sorted(Counter(values).items()))
