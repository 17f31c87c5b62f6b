"""``sodctl data ...``: every dataset a stage trains or evaluates on.

=========================  ==============================================================
``data fetch NAME``        the released sets (sft-3k, rl-30k, eval) from the hub or --from
``data rl``                the RL mixture from its sources (DAPO, Skywork math/code, MegaScience)
``data sft``               the SFT corpus: the released one, or ``--build`` from its sources
                           with a teacher through the agent loop
``data hints RL_FILE``     OPSD's privileged texts (hints, solutions) for an RL file
``data inspect FILE``      schema check, counts, token lengths, one rendered example
``data stats [PATH...]``   the paper's Table 3 from the builds' manifests
``data tiny``              the synthetic tiny world (``--preset tiny`` / ``smoke``)
=========================  ==============================================================

Everything is restartable: a finished build is reused, an interrupted one resumes from
its last finished shard; bad input is one line naming the file, row and column (exit 2).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from sodctl.commands.common import OverridesArg, PresetOpt, SeedOpt, load, option_overrides
from sodctl.errors import SodctlUsageError

app = typer.Typer(
    help="Prepare datasets: fetch the released sets, build the RL mixture, the SFT corpus and "
    "OPSD hints from their sources, inspect files, print Table 3, build the tiny world.",
    no_args_is_help=True,
    rich_markup_mode=None,
)

OutOpt = Annotated[
    str | None,
    typer.Option(
        "--out",
        help="The folder written (default: data.out_dir/<what is built>).",
        show_default=False,
    ),
]
ForceOpt = Annotated[
    bool,
    typer.Option(
        "--force", help="Rebuild even if a finished build is there (old shards are set aside)."
    ),
]
SourceOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--source",
        metavar="NAME=PATH",
        help="A local copy of a source (a file or a folder); sources not given come from the hub.",
        show_default=False,
    ),
]
CountOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--count",
        metavar="NAME=N",
        help="Rows taken from a source (N or 'all'; default: the paper's).",
        show_default=False,
    ),
]
RevisionOpt = Annotated[
    str | None,
    typer.Option(
        "--revision", help="Hub revision (commit, tag or branch) to pin.", show_default=False
    ),
]
CacheOpt = Annotated[
    str | None,
    typer.Option("--cache-dir", help="Hugging Face hub cache directory.", show_default=False),
]
OfflineOpt = Annotated[
    bool, typer.Option("--offline", help="Read the hub cache only; never the network.")
]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")]


def pairs(values: list[str] | None, option: str, known: tuple[str, ...]) -> dict[str, str]:
    """``NAME=VALUE`` option values as a dict; one line for a malformed or unknown NAME."""
    out: dict[str, str] = {}
    for value in values or []:
        name, sep, rest = value.partition("=")
        if not sep or not name or not rest:
            raise SodctlUsageError(
                f"{option} {value!r}: expected NAME=VALUE (e.g. {option} {known[0]}=...)"
            )
        if name not in known:
            raise SodctlUsageError(
                f"{option} {value!r}: unknown source {name!r}; known: {', '.join(known)}"
            )
        out[name] = rest
    return out


def counts_of(values: list[str] | None, known: tuple[str, ...]) -> dict[str, int | None]:
    out: dict[str, int | None] = {}
    for name, text in pairs(values, "--count", known).items():
        if text == "all":
            out[name] = None
            continue
        try:
            n = int(text)
        except ValueError:
            n = -1
        if n < 1:
            raise SodctlUsageError(f"--count {name}={text}: expected a positive integer or 'all'")
        out[name] = n
    return out


def _hub(revision: str | None, cache_dir: str | None, offline: bool):
    from sodctl.data.builders.common import HubOptions

    return HubOptions(revision=revision, cache_dir=cache_dir, offline=offline)


@app.command("fetch")
def fetch(
    name: Annotated[
        Literal["sft-3k", "rl-30k", "eval"],
        typer.Argument(metavar="NAME", help="sft-3k, rl-30k or eval (the Open-AgentRL releases)."),
    ],
    source: Annotated[
        str | None,
        typer.Option(
            "--from",
            help="A local copy (the file, or the folder) instead of the hub.",
            show_default=False,
        ),
    ] = None,
    out: OutOpt = None,
    revision: RevisionOpt = None,
    cache_dir: CacheOpt = None,
    offline: OfflineOpt = False,
    overrides: OverridesArg = None,
) -> None:
    """Fetch a released set, check every row, write it normalised with a manifest."""
    from sodctl.data.builders.fetch import fetch_release

    cfg = load(None, overrides)
    target = Path(out) if out else Path(cfg.data.out_dir) / name
    result = fetch_release(name, target, source=source, hub=_hub(revision, cache_dir, offline))
    typer.echo(result.summary())


@app.command("rl")
def rl(
    source: SourceOpt = None,
    count: CountOpt = None,
    seed: SeedOpt = None,
    out: OutOpt = None,
    only: Annotated[
        str | None,
        typer.Option(
            "--only",
            help="Comma-separated sources to build (default: all four).",
            show_default=False,
        ),
    ] = None,
    tokenizer: Annotated[
        str | None,
        typer.Option(
            "--tokenizer",
            help="Tokenizer of the prompt-length filter (default: the config's model.path).",
            show_default=False,
        ),
    ] = None,
    no_length_filter: Annotated[
        bool, typer.Option("--no-length-filter", help="Skip the released prompt-length filter.")
    ] = False,
    megascience_answers: Annotated[
        Literal["numeric", "all"],
        typer.Option(
            "--megascience-answers", help="MegaScience rows kept: numeric answers, or all."
        ),
    ] = "numeric",
    revision: RevisionOpt = None,
    cache_dir: CacheOpt = None,
    offline: OfflineOpt = False,
    force: ForceOpt = False,
    quiet: QuietOpt = False,
    preset: PresetOpt = None,
    overrides: OverridesArg = None,
) -> None:
    """Build the RL mixture (DAPO-Math 17k, Skywork math 4,902 + code 3,586, MegaScience 3k)."""
    from sodctl.data.builders.sources import RL_SOURCES

    known = tuple(RL_SOURCES)
    cfg = load(None, overrides, preset=preset, options=option_overrides(seed=seed))
    chosen = [s.strip() for s in only.split(",") if s.strip()] if only else None
    for name in chosen or []:
        if name not in RL_SOURCES:
            raise SodctlUsageError(
                f"--only {only!r}: unknown source {name!r}; known: {', '.join(known)}"
            )
    given, counts = pairs(source, "--source", known), counts_of(count, known)
    from sodctl.data.builders.rl import build_rl

    result = build_rl(
        Path(out) if out else Path(cfg.data.out_dir) / "rl",
        sources=given,
        counts=counts,
        seed=int(cfg.seed),
        hub=_hub(revision, cache_dir, offline),
        tokenizer=None if no_length_filter else (tokenizer or str(cfg.model.path)),
        max_prompt_tokens=int(cfg.data.max_prompt_tokens),
        prompt_wrapping=str(cfg.data.prompt_wrapping),
        prompts_file=cfg.data.prompts_file,
        megascience_answers=megascience_answers,
        force=force,
        progress=not quiet,
        only=chosen,
    )
    typer.echo(result.summary())


@app.command("sft")
def sft(
    build: Annotated[
        bool,
        typer.Option(
            "--build",
            help="Build from the sources (s1K-1.1, ReTool, LeetCode) with --teacher; without it, "
            "fetch the released 3K corpus.",
        ),
    ] = False,
    teacher: Annotated[
        str | None,
        typer.Option(
            "--teacher",
            help="The model that writes the trajectories (--build).",
            show_default=False,
        ),
    ] = None,
    source: SourceOpt = None,
    count: CountOpt = None,
    keep: Annotated[
        list[str] | None,
        typer.Option(
            "--keep",
            metavar="NAME=N",
            help="Trajectories kept per source (N or 'all'; default: s1k all, leetcode and retool 1000).",
            show_default=False,
        ),
    ] = None,
    samples: Annotated[
        int, typer.Option("--samples", help="Trajectories generated per problem.", min=1)
    ] = 1,
    scorer: Annotated[
        str,
        typer.Option(
            "--scorer",
            help="'rule' (the graders: keep correct ones) or MODULE:FUNCTION(problem, messages) -> "
            "score (e.g. a process reward model).",
        ),
    ] = "rule",
    shard_size: Annotated[
        int, typer.Option("--shard-size", help="Problems per restartable shard.", min=1)
    ] = 64,
    source_release: Annotated[
        str | None,
        typer.Option(
            "--from",
            help="Without --build: a local copy of the released corpus.",
            show_default=False,
        ),
    ] = None,
    seed: SeedOpt = None,
    out: OutOpt = None,
    revision: RevisionOpt = None,
    cache_dir: CacheOpt = None,
    offline: OfflineOpt = False,
    force: ForceOpt = False,
    quiet: QuietOpt = False,
    preset: PresetOpt = None,
    overrides: OverridesArg = None,
) -> None:
    """The SFT corpus: the released 3K (default), or --build it from its sources."""
    cfg = load(None, overrides, preset=preset, options=option_overrides(seed=seed))
    hub = _hub(revision, cache_dir, offline)
    if not build:
        extra = [
            flag
            for flag, given in (
                ("--teacher", teacher),
                ("--source", source),
                ("--count", count),
                ("--keep", keep),
            )
            if given
        ]
        if extra:
            raise SodctlUsageError(
                f"{', '.join(extra)} need --build (without it 'data sft' fetches the released corpus)"
            )
        from sodctl.data.builders.fetch import fetch_release

        target = Path(out) if out else Path(cfg.data.out_dir) / "sft-3k"
        typer.echo(fetch_release("sft-3k", target, source=source_release, hub=hub).summary())
        return
    if teacher is None:
        raise SodctlUsageError("data sft --build needs --teacher MODEL (a model path or hub id)")
    from sodctl.data.builders.sft import SFT_SOURCES, build_sft

    known = tuple(SFT_SOURCES)
    result = build_sft(
        Path(out) if out else Path(cfg.data.out_dir) / "sft",
        teacher=teacher,
        cfg=cfg,
        sources=pairs(source, "--source", known),
        counts=counts_of(count, known),
        keep={k: v for k, v in counts_of(keep, known).items()},
        samples=samples,
        scorer=scorer,
        seed=int(cfg.seed),
        hub=hub,
        shard_size=shard_size,
        force=force,
        progress=not quiet,
    )
    typer.echo(result.summary())


@app.command("hints")
def hints(
    rl_file: Annotated[
        str,
        typer.Argument(metavar="RL_FILE", help="An RL parquet (sodctl data rl / fetch rl-30k)."),
    ],
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            help="The instruction model that writes hints (and solutions).",
            show_default=False,
        ),
    ] = None,
    solution_source: Annotated[
        Literal["answer", "model"],
        typer.Option(
            "--solution-source",
            help="OPSD-gt's text for rows without a solution: the answer itself, or a solution "
            "the model writes given the answer (kept only when it grades correct).",
        ),
    ] = "answer",
    no_hints: Annotated[
        bool, typer.Option("--no-hints", help="Write only the solutions (OPSD-gt).")
    ] = False,
    attempts: Annotated[
        int, typer.Option("--attempts", help="Tries per row before giving up.", min=1)
    ] = 3,
    drop_missing: Annotated[
        bool,
        typer.Option(
            "--drop-missing",
            help="Leave out rows that got no valid hint (OPSD-hint refuses rows without one).",
        ),
    ] = False,
    hint_tokens: Annotated[
        int, typer.Option("--hint-tokens", help="Token budget of one hint.", min=1)
    ] = 512,
    solution_tokens: Annotated[
        int,
        typer.Option("--solution-tokens", help="Token budget of one written solution.", min=1),
    ] = 4096,
    shard_size: Annotated[
        int, typer.Option("--shard-size", help="Rows per restartable shard.", min=1)
    ] = 64,
    seed: SeedOpt = None,
    out: OutOpt = None,
    force: ForceOpt = False,
    quiet: QuietOpt = False,
    preset: PresetOpt = None,
    overrides: OverridesArg = None,
) -> None:
    """OPSD's privileged texts for every row of an RL file: hints (never the answer) and solutions."""
    cfg = load(None, overrides, preset=preset, options=option_overrides(seed=seed))
    needs_model = not no_hints or solution_source == "model"
    if needs_model and model is None:
        raise SodctlUsageError(
            "data hints needs --model (the instruction model that writes the hints); "
            "--no-hints --solution-source answer needs none"
        )
    from sodctl.data.builders.hints import build_hints

    target = Path(out) if out else Path(rl_file).resolve().parent / "privileged"
    result = build_hints(
        rl_file,
        target,
        model=model,
        cfg=cfg,
        solution_source=solution_source,
        hints=not no_hints,
        attempts=attempts,
        drop_missing=drop_missing,
        hint_tokens=hint_tokens,
        solution_tokens=solution_tokens,
        seed=int(cfg.seed),
        shard_size=shard_size,
        force=force,
        progress=not quiet,
    )
    typer.echo(result.summary())


@app.command("inspect")
def inspect_(
    file: Annotated[
        str, typer.Argument(metavar="FILE", help="A parquet file (RL, SFT or benchmark).")
    ],
    tokenizer: Annotated[
        str | None,
        typer.Option(
            "--tokenizer",
            help="Tokenizer for lengths and rendering (default: model.path).",
            show_default=False,
        ),
    ] = None,
    row: Annotated[int, typer.Option("--row", help="The example row to render.", min=0)] = 0,
    preset: PresetOpt = None,
    overrides: OverridesArg = None,
) -> None:
    """Check a data file's schema (every missing or ill-typed column), count rows per source,
    give token-length statistics and render one example with the chat template and tools."""
    from sodctl.data.builders.inspect import inspect_file

    cfg = load(None, overrides, preset=preset)
    report = inspect_file(file, cfg=cfg, tokenizer=tokenizer, row=row)
    typer.echo(report.text())
    if report.problems:
        raise SodctlUsageError(
            f"{file}: {len(report.problems)} schema problem(s), listed above; the engines would refuse it"
        )


@app.command("stats")
def stats(
    paths: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="PATH",
            help="Manifests or the folders holding them (default: every build under data.out_dir).",
            show_default=False,
        ),
    ] = None,
    out: Annotated[
        str | None,
        typer.Option("--out", help="Also write the table (markdown) here.", show_default=False),
    ] = None,
) -> None:
    """The paper's Table 3 (dataset composition) for what was built, beside the paper's counts."""
    from sodctl.config import load_config
    from sodctl.data.builders.stats import find_manifests, table3

    manifests = [Path(p) for p in paths] if paths else find_manifests(load_config().data.out_dir)
    text = table3(manifests)
    typer.echo(text)
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(text + "\n")


@app.command("tiny")
def tiny(
    overrides: OverridesArg = None,
    preset: PresetOpt = None,
    out: OutOpt = None,
    force: Annotated[
        bool, typer.Option("--force", help="Rebuild even if a finished build is there.")
    ] = False,
) -> None:
    """Build the synthetic tiny world (benchmarks, corpora, tiny models) for --preset tiny or smoke."""
    cfg = load(
        None, overrides, preset=preset or "tiny", options=option_overrides(data__out_dir=out)
    )
    from sodctl.data.tinyworld import TINY_PROMPTS_FILE, build_tinyworld

    if cfg.preset not in ("tiny", "smoke"):
        raise SodctlUsageError(
            f"'data tiny' builds the tiny world for --preset tiny or smoke, not '{cfg.preset}'"
        )
    result = build_tinyworld(
        cfg.data.out_dir,
        preset=cfg.preset,
        force=force,
        prompts_file=cfg.data.prompts_file or TINY_PROMPTS_FILE,
        tool_cfg=cfg.tool,
    )
    typer.echo(result.summary())
