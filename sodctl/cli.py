"""The ``sodctl`` command line: a thin layer over the stages in ``sodctl.commands``.

Bad input never shows a traceback. ``main`` runs the typer app in
non-standalone mode and turns every usage problem into one line on stderr and
exit status 2:

* ``SodctlUsageError`` (config and argument errors):  ``sodctl: error: <message>``
* click usage errors (unknown option, missing argument, bad choice):
  ``sodctl train: error: No such option: --foo (see 'sodctl train --help')``

Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Annotated

import typer

from sodctl import __version__
from sodctl.commands import data as data_cmd
from sodctl.commands import inspect as inspect_cmd
from sodctl.commands import stages
from sodctl.errors import SodctlUsageError

try:  # typer >= 0.2x vendors click
    from typer._click.exceptions import ClickException, NoArgsIsHelpError, UsageError
except ImportError:  # pragma: no cover - older typer on the click package
    from click.exceptions import ClickException, NoArgsIsHelpError, UsageError  # type: ignore[no-redef]

PROG = "sodctl"

app = typer.Typer(
    name=PROG,
    help="Reproduce SOD (step-wise on-policy distillation for small tool-using agents): "
    "data -> sft -> train -> eval -> table.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"{PROG} {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
    verbose: Annotated[
        bool,
        typer.Option(
            "--verbose",
            "-v",
            help="Show the libraries' own progress bars (transformers' weight loading and "
            "saving, hub downloads); sodctl's bars show either way.",
        ),
    ] = False,
) -> None:
    """Reproduce SOD: step-wise on-policy distillation for small language model agents."""
    quiet_libraries(not verbose)


def quiet_libraries(quiet: bool) -> None:
    """Turn the libraries' tqdm bars off (on with ``--verbose``). transformers reads the
    hub's switch when it is imported; an already imported one is told directly."""
    import os

    if quiet:
        os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
    else:
        os.environ.pop("HF_HUB_DISABLE_PROGRESS_BARS", None)
    if "transformers" in sys.modules:
        from transformers.utils import logging as hf_logging

        (hf_logging.disable_progress_bar if quiet else hf_logging.enable_progress_bar)()
    if "huggingface_hub" in sys.modules:
        from huggingface_hub.utils import disable_progress_bars, enable_progress_bars

        (disable_progress_bars if quiet else enable_progress_bars)()


app.add_typer(data_cmd.app, name="data")
app.command("sft")(stages.sft)
app.command("train")(stages.train)
app.command("eval")(stages.eval_)
app.command("table")(stages.table)
app.command("plot")(stages.plot)
app.command("report")(stages.report)
app.command("reproduce")(stages.reproduce)
app.command("ablate")(stages.ablate)
app.add_typer(inspect_cmd.app, name="inspect")


def _one_line(text: str) -> str:
    text = text.replace("Value error, ", "")  # typer's choice check wraps pydantic's message
    return " ".join(line.strip() for line in text.strip().splitlines() if line.strip())


def main(argv: Sequence[str] | None = None) -> int:
    """Console-script entry point; returns the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        rc = app(args=args, prog_name=PROG, standalone_mode=False)
    except NoArgsIsHelpError as e:  # `sodctl` or `sodctl inspect` alone: show the help
        typer.echo(e.ctx.get_help() if e.ctx else "")
        return 0
    except UsageError as e:
        path = e.ctx.command_path if e.ctx else PROG
        typer.echo(
            f"{path}: error: {_one_line(e.format_message())} (see '{path} --help')", err=True
        )
        return 2
    except SodctlUsageError as e:
        typer.echo(f"{PROG}: error: {e.message}", err=True)
        return 2
    except ClickException as e:  # e.g. a file argument that cannot be opened
        typer.echo(f"{PROG}: error: {_one_line(e.format_message())}", err=True)
        return e.exit_code
    except (KeyboardInterrupt, typer.Abort):
        typer.echo(f"{PROG}: interrupted", err=True)
        return 130
    return rc if isinstance(rc, int) else 0


if __name__ == "__main__":
    sys.exit(main())
