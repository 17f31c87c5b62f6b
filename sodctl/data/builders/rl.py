"""``sodctl data rl``: the RL mixture of paper Table 3 as one parquet in the engines' schema.

For each source of ``sources.RL_SOURCES`` (DAPO-Math, Skywork-OR1 math and code,
MegaScience) the builder reads a local copy (``--source NAME=PATH``: a parquet or JSON-lines
file, or a directory of them) or the hub snapshot of the source's split, normalises its
rows (``RLSource.normalise``: schema, de-duplication, ground truths, drops by reason), and
keeps the result as a shard under ``out/.shards/NAME`` (a rerun on the same input reuses
it, whatever the seed and counts; a changed input is refused unless ``force``). Then:

1. **Sampling** (ours): ``count`` rows of each source, drawn without replacement with
   ``random.Random(f"{seed}:{name}")`` (seeded from a string: the same draw on every run
   and platform); ``None`` takes every usable row. Fewer usable rows than asked is an
   error that says how many there are.
2. **Mixing** (ours): the samples, in registry order, shuffled with
   ``random.Random(f"{seed}:mixture")``; ``extra_info.index`` is the row's position in the
   final file. The same inputs and seed give a byte-identical ``rl.parquet``.
3. **Length filter** (released: verl's ``data.filter_overlong_prompts`` with 2,560
   tokens; only with a ``tokenizer``): each row's prompt is wrapped exactly as the
   engine will wrap it at load (``wrap_rl_rows`` with the same prompts file and
   ``prompt_wrapping``), measured with ``prompt_length`` (chat template, generation
   prompt, no tool schema), and rows over ``max_prompt_tokens`` are dropped and counted
   per source (``too_long``). With ``"released"`` wrapping the branch is the first row's
   (the released loader's rule), so when the first row itself is dropped the remaining
   rows are measured again under the new first row's branch, until it is stable.

   Our choice: the filter runs AFTER sampling, so a source's final count is its sampled
   count less its long rows; the manifest reports both. The released run filtered at
   load time, inside verl, on the released 30K file, so the paper's Table 3 counts are
   most likely those of the file before any length filter: without ``tokenizer`` (the
   default) the file holds exactly the asked counts, and the engines filter at load as
   the release did (``data.max_prompt_tokens``).

The rows keep their UNWRAPPED prompts: the engines wrap at load, so wrapping here would
wrap twice. The output is ``out/rl.parquet`` (``schema.rl_schema``) and
``out/manifest.json`` (``common.write_manifest``, kind ``rl``): ``seed``, ``inputs``,
``outputs``, per-source counts (``sources``), ``filters``, ``by_data_source`` and the
``table3`` rows.
"""

from __future__ import annotations

import json
import logging
import random
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sodctl.data.builders.common import (
    DEFAULT_HUB,
    HubOptions,
    Shards,
    counted,
    data_files,
    file_identity,
    hub_snapshot,
    input_entry,
    output_entry,
    read_table,
    write_json,
    write_manifest,
    write_parquet,
)
from sodctl.data.builders.schema import rl_schema
from sodctl.data.builders.sources import MEGASCIENCE_ANSWERS, RL_SOURCES, Normalised, RLSource
from sodctl.errors import SodctlUsageError

BUILDER_VERSION = 1  # bump when a normaliser's output changes: old shards are then refused
RL_FILE = "rl.parquet"
SHARDS_DIR = ".shards"
STATS_FILE = "stats.json"
log = logging.getLogger(__name__)


@dataclass
class RLBuild:
    """A finished build: the parquet's ``path`` and the ``manifest`` written beside it."""

    path: Path
    manifest: dict[str, Any]

    def summary(self) -> str:
        """A few lines for people: per source read / usable / final, the total, the file."""
        sources = self.manifest["sources"]
        width = max((len(n) for n in sources), default=0)
        lines = [
            f"RL mixture: {self.path} ({self.manifest['outputs'][0]['rows']:,} rows, seed {self.manifest['seed']})"
        ]
        for name, s in sources.items():
            tail = f", {s['too_long']:,} too long" if s["too_long"] else ""
            lines.append(
                f"  {name:<{width}}  read {s['read']:>9,}  usable {s['usable']:>7,}  "
                f"sampled {s['sampled']:>6,}{tail}  final {s['final']:>6,}"
            )
        f = self.manifest["filters"]
        if f["tokenizer"]:
            lines.append(
                f"  length filter: at most {f['max_prompt_tokens']:,} tokens with {f['tokenizer']} "
                f"({f['prompt_wrapping']} wrapping)"
            )
        else:
            lines.append("  length filter: off (the engines filter at load)")
        return "\n".join(lines)


# --- options ---------------------------------------------------------------------------------


def _known(names: Any, what: str) -> list[str]:
    unknown = [n for n in names if n not in RL_SOURCES]
    if unknown:
        raise SodctlUsageError(
            f"data rl: unknown source(s) {unknown} in {what}; known: {', '.join(RL_SOURCES)}"
        )
    return list(names)


def _count(name: str, counts: Mapping[str, Any], src: RLSource) -> int | None:
    if name not in counts:
        return src.default_count
    value = counts[name]
    if value is None or (isinstance(value, str) and value.strip().lower() == "all"):
        return None
    try:
        n = int(value)
    except (TypeError, ValueError):
        n = -1
    if n < 0 or isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
        raise SodctlUsageError(
            f"data rl: --count {name}={value!r} is not a row count; pass --count {name}=N (N >= 0) or {name}=all"
        )
    return n


def _options(src: RLSource, megascience_answers: str) -> dict[str, Any]:
    return {"answers": megascience_answers} if "answers" in src.options else {}


def _load_tokenizer(path: str, hub: HubOptions) -> Any:
    from sodctl.data.builders.common import load_tokenizer

    fix = "pass --tokenizer PATH (a saved tokenizer's directory) or --no-length-filter"
    tok = load_tokenizer(path, what="data rl", fix=fix, offline=hub.offline)
    if not getattr(tok, "chat_template", None):
        raise SodctlUsageError(
            f"data rl: the tokenizer {path} has no chat template to measure prompts with; {fix}"
        )
    return tok


# --- one source ------------------------------------------------------------------------------


def _input_files(
    path: Path, name: str, fix: str, patterns: Sequence[str] | None = None
) -> list[Path]:
    """The files ``common.read_table`` would read for ``path``, in its order; with
    ``patterns`` (a hub snapshot) only those whose path inside it matches one of them: one
    snapshot folder holds every split of a repository that was ever fetched (Skywork's math
    and code files lie side by side)."""
    if path.is_dir():
        files = data_files(path, patterns)
        if not files:
            which = (
                f"file matching {list(patterns)}"
                if patterns is not None
                else ".parquet or .jsonl files"
            )
            raise SodctlUsageError(f"data rl: source {name}: {path} holds no {which}; {fix}")
        return files
    if path.is_file():
        return [path]
    raise SodctlUsageError(f"data rl: source {name}: no such file or directory {path}; {fix}")


def _identity(path: Path, files: Sequence[Path]) -> dict[str, Any]:
    """``common.file_identity`` of a file, or of a folder's input files alone (a README or
    the other split's files appearing beside them does not change the input)."""
    if path.is_file():
        return file_identity(path)
    return {
        "path": str(path.resolve()),
        "files": [
            [f.relative_to(path).as_posix(), f.stat().st_size, f.stat().st_mtime_ns] for f in files
        ],
    }


def _normalise_source(
    src: RLSource, files: Sequence[Path], options: Mapping[str, Any], fix: str
) -> tuple[Normalised, list[tuple[Path, int]]]:
    """Read ``files`` (each row error names its own file and row) and normalise them."""
    rows: list[dict[str, Any]] = []
    segments: list[tuple[Path, int]] = []
    for f in files:
        part = read_table(f, what=f"data rl: source {src.name}", fix=fix)
        rows.extend(part)
        segments.append((f, len(part)))
    return src.normalise(rows, segments, **options), segments


@dataclass
class _Source:
    """A normalised source: where it came from and its rows (read back from its shard)."""

    src: RLSource
    path: Path
    repo: str | None
    revision: str | None
    stats: dict[str, Any]  # Normalised.stats() + "files": [[file, rows], ...]
    rows: list[dict[str, Any]]
    reused: bool


def _prepare(
    src: RLSource,
    given: str | None,
    out: Path,
    options: Mapping[str, Any],
    hub: HubOptions,
    force: bool,
) -> _Source:
    fix = f"pass --source {src.name}=PATH to a local copy"
    repo = revision = None
    if given is not None:
        path = Path(given)
        files = _input_files(path, src.name, fix)
    else:
        path, revision = hub_snapshot(
            src.hub_repo, src.patterns, hub=hub, what=f"data rl: source {src.name}", fix=fix
        )
        repo = src.hub_repo
        files = _input_files(path, src.name, fix, src.patterns)
    fingerprint = {
        "builder": "rl",
        "version": BUILDER_VERSION,
        "source": src.name,
        "input": _identity(path, files),
        "options": dict(options),
    }
    shards = Shards(out / SHARDS_DIR / src.name, fingerprint, force=force)
    stats_file = shards.root / STATS_FILE
    reused = shards.done(0) and stats_file.is_file()
    if reused:
        log.info("data rl: source %s: reusing %s", src.name, shards.path(0))
        stats = json.loads(stats_file.read_text())
    else:
        norm, segments = _normalise_source(src, files, options, fix)
        shards.write(0, norm.rows, schema=rl_schema())
        stats = {**norm.stats(), "files": [[str(f), n] for f, n in segments]}
        write_json(stats_file, stats)
    # Always the shard's rows, fresh or reused: a rerun then writes the same bytes.
    return _Source(src, path, repo, revision, stats, shards.read(0), reused)


def _sample(source: _Source, count: int | None, seed: int) -> list[dict[str, Any]]:
    name, rows = source.src.name, source.rows
    usable = len(rows)
    if count is not None and count > usable:
        s = source.stats
        dropped = sum(s["dropped"].values())
        raise SodctlUsageError(
            f"data rl: source {name} has {usable:,} usable rows ({s['read']:,} read, "
            f"{s['duplicates']:,} duplicates, {dropped:,} dropped), fewer than the {count:,} asked; "
            f"pass --count {name}={usable} (or {name}=all)"
        )
    picked = random.Random(f"{seed}:{name}").sample(
        range(usable), usable if count is None else count
    )
    return [rows[i] for i in sorted(picked)]


# --- the length filter -----------------------------------------------------------------------


def filter_overlong_rows(
    rows: list[dict[str, Any]], tokenizer: Any, templates: Mapping[str, str], mode: str, limit: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, int]]:
    """``(kept, dropped, wrapping)``: the rows whose prompt, wrapped as the engine will wrap
    the final file, is at most ``limit`` tokens (module docstring, step 3); ``wrapping``:
    rows per branch the engine will apply to ``kept``."""
    from sodctl.data.prompting import filter_long_prompts, released_branch, wrap_rl_rows

    current, dropped = rows, []
    while True:
        wrapped, _ = wrap_rl_rows(current, templates, mode)
        kept_pairs, long_pairs = filter_long_prompts(
            tokenizer, list(zip(current, wrapped)), limit, lambda pair: pair[1]["prompt"]
        )
        dropped += [row for row, _ in long_pairs]
        kept = [row for row, _ in kept_pairs]
        stable = mode != "released" or not kept or kept[0] is current[0]
        stable = stable or released_branch(kept[0]["data_source"]) == released_branch(
            current[0]["data_source"]
        )
        if stable:
            return kept, dropped, wrap_rl_rows(kept, templates, mode)[1]
        current = kept


# --- the build -------------------------------------------------------------------------------


def build_rl(
    out: str | Path,
    *,
    sources: Mapping[str, str] = {},  # noqa: B006 - read only
    counts: Mapping[str, int | None] = {},  # noqa: B006 - read only
    seed: int = 42,
    hub: HubOptions = DEFAULT_HUB,
    tokenizer: str | None = None,
    max_prompt_tokens: int = 2560,
    prompt_wrapping: str = "released",
    prompts_file: str | None = None,
    megascience_answers: str = "numeric",
    force: bool = False,
    progress: bool = True,
    only: Sequence[str] | None = None,
) -> RLBuild:
    """Build ``out/rl.parquet`` and its manifest (module docstring). ``sources``: NAME ->
    local PATH (else the hub); ``counts``: NAME -> rows (None or ``"all"``: every usable
    row; default the paper's); ``only``: these sources alone (default all four);
    ``tokenizer``: a saved tokenizer to drop prompts over ``max_prompt_tokens`` with (None:
    no filter); ``force``: set aside shards built from other inputs."""
    from sodctl.data.loaders import load_prompts
    from sodctl.data.prompting import WRAPPING_MODES
    from sodctl.progress import progress_bar

    out = Path(out)
    _known(sources, "--source")
    _known(counts, "--count")
    wanted = set(_known(only, "--only")) if only is not None else set(RL_SOURCES)
    names = [n for n in RL_SOURCES if n in wanted]  # registry order, whatever the order given
    if not names:
        raise SodctlUsageError(
            f"data rl: no source to build; name one or more of {', '.join(RL_SOURCES)}"
        )
    if prompt_wrapping not in WRAPPING_MODES:
        raise SodctlUsageError(
            f"data rl: prompt wrapping {prompt_wrapping!r} is not one of {', '.join(WRAPPING_MODES)}"
        )
    if megascience_answers not in MEGASCIENCE_ANSWERS:
        raise SodctlUsageError(
            f"data rl: megascience answers {megascience_answers!r} is not one of {', '.join(MEGASCIENCE_ANSWERS)}"
        )
    if tokenizer is not None and max_prompt_tokens < 1:
        raise SodctlUsageError(
            f"data rl: --max-prompt-tokens {max_prompt_tokens} must be at least 1"
        )
    wanted_counts = {n: _count(n, counts, RL_SOURCES[n]) for n in names}
    # What can fail fast does, before any source is read.
    tok = _load_tokenizer(tokenizer, hub) if tokenizer is not None else None
    templates = load_prompts(prompts_file) if tok is not None else None

    prepared: dict[str, _Source] = {}
    sampled: dict[str, list[dict[str, Any]]] = {}
    with progress_bar("data rl: {task.description}", disable=not progress) as bar:
        task = bar.add_task("sources", total=len(names))
        for name in names:
            bar.update(task, description=name)
            src = RL_SOURCES[name]
            prepared[name] = _prepare(
                src, sources.get(name), out, _options(src, megascience_answers), hub, force
            )
            sampled[name] = _sample(prepared[name], wanted_counts[name], seed)
            bar.advance(task)
        bar.update(task, description="mixing")

    mixture = [row for name in names for row in sampled[name]]
    random.Random(f"{seed}:mixture").shuffle(mixture)
    too_long: Counter[str] = Counter()
    wrapping: dict[str, int] = {}
    if tok is not None and mixture:
        assert templates is not None
        mixture, dropped, wrapping = filter_overlong_rows(
            mixture, tok, templates, prompt_wrapping, max_prompt_tokens
        )
        too_long.update(row["extra_info"]["source"] for row in dropped)
    if not mixture:
        raise SodctlUsageError(
            "data rl: the mixture is empty (every count is 0, or the length filter dropped every "
            "row); raise --count or --max-prompt-tokens"
        )
    for i, row in enumerate(mixture):
        row["extra_info"] = {**row["extra_info"], "index": i}
    path = write_parquet(out / RL_FILE, mixture, schema=rl_schema())

    final = Counter(row["extra_info"]["source"] for row in mixture)
    per_source: dict[str, Any] = {}
    for name in names:
        p, s = prepared[name], prepared[name].stats
        per_source[name] = {
            "title": p.src.title,
            "domain": p.src.domain,
            "path": str(p.path),
            "hub_repo": p.repo,
            "revision": p.revision,
            "reused_shard": p.reused,
            "read": s["read"],
            "duplicates": s["duplicates"],
            "dropped": s["dropped"],
            "usable": s["usable"],
            "shapes": s["shapes"],
            "asked": wanted_counts[name],
            "sampled": len(sampled[name]),
            "too_long": too_long[name],
            "final": final[name],
        }
    body = {
        "seed": seed,
        "builder_version": BUILDER_VERSION,
        "inputs": [  # one entry per file read, with the hub repo and commit it came from
            input_entry(n, f, repo=prepared[n].repo, revision=prepared[n].revision, rows=rows)
            for n in names
            for f, rows in prepared[n].stats["files"]
        ],
        "outputs": [output_entry(path, len(mixture))],
        "sources": per_source,
        "filters": {
            "tokenizer": tokenizer,
            "max_prompt_tokens": max_prompt_tokens if tokenizer is not None else None,
            "prompt_wrapping": prompt_wrapping,
            "prompts_file": prompts_file,
            "wrapping_measured": wrapping,
            "megascience_answers": megascience_answers,
        },
        "by_data_source": counted(str(row["data_source"]) for row in mixture),
        "table3": [
            {
                "type": "RL Dataset",
                "domain": RL_SOURCES[n].domain,
                "source": RL_SOURCES[n].title,
                "samples": final[n],
            }
            for n in names
        ],
    }
    manifest = write_manifest(out, "rl", body)
    return RLBuild(path, json.loads(manifest.read_text()))
