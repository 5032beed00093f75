"""run(command): how every console script runs a click command (an MMCLError is one line, exit 2)."""

from __future__ import annotations

import sys

import click

from .errors import MMCLError


def run(command: click.Command) -> None:
    """Run a click command; an MMCLError becomes one line on stderr and exit status 2.

    A command may return an int: the exit status (extract returns 1 when samples failed)."""
    try:
        status = command.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except MMCLError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        click.echo("interrupted; finished work is kept, rerun to resume", err=True)
        sys.exit(130)
    sys.exit(status if isinstance(status, int) else 0)
