"""The `cascc` group: errors translated once, in `CasccGroup`; each command group lives in its own module."""

from __future__ import annotations

import os
import warnings
from typing import Any

import click
from rich.markup import escape

from ..errors import EXIT_BAD_INPUT, EXIT_CHECK_FAILED, EXIT_INTERNAL, CasccError
from .options import err

# torch.export emits a pytree FutureWarning on every export; it is torch's, not the user's.
warnings.filterwarnings("ignore", message=".*LeafSpec.*", category=FutureWarning)


EXIT_CODES = f"""Exit codes: 0 ok · {EXIT_CHECK_FAILED} a check failed · {EXIT_BAD_INPUT} bad input or usage ·
{EXIT_INTERNAL} internal error (rerun with --debug or CASCC_DEBUG=1 for the traceback)."""


class CasccGroup(click.Group):
    """Translates a CasccError into one paragraph and its exit code; anything else into exit 101."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except CasccError as exc:
            if _debug(ctx):
                raise
            err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
            ctx.exit(exc.exit_code)
        except Exception as exc:
            if _debug(ctx):
                raise
            err.print(
                f"[bold red]internal error:[/] {type(exc).__name__}: {escape(str(exc))}. "
                "This is a cascc bug; rerun with --debug for the traceback and report it.",
                highlight=False,
                soft_wrap=True,
            )
            ctx.exit(EXIT_INTERNAL)


def _debug(ctx: click.Context) -> bool:
    root = ctx.find_root()
    return bool((root.params or {}).get("debug")) or os.environ.get("CASCC_DEBUG") == "1"


def _version() -> str:
    from .. import __version__

    return __version__


@click.group(cls=CasccGroup, epilog=EXIT_CODES)
@click.version_option(_version(), prog_name="cascc")
@click.option(
    "--debug", is_flag=True, envvar="CASCC_DEBUG", help="Show full tracebacks (also CASCC_DEBUG=1)."
)
def main(debug: bool) -> None:
    """cascc: sparsify neural networks and compile them through TVM into on-device artifacts."""
    _print_pass_warnings()


def _print_pass_warnings() -> None:
    """Show a pass's PassWarning as one `warning:` line; leave every other warning to Python."""
    from ..errors import PassWarning

    original = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, PassWarning):
            err.print(f"[bold yellow]warning:[/] {escape(str(message))}", highlight=False, soft_wrap=True)
        else:
            original(message, category, filename, lineno, file, line)

    warnings.showwarning = show
    warnings.simplefilter("always", PassWarning)


def _add_commands() -> None:
    from . import artifact, compile, info, train

    for command in (*compile.COMMANDS, *artifact.COMMANDS, train.train_cmd, *info.COMMANDS):
        main.add_command(command)


_add_commands()
