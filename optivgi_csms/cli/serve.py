"""``optivgi-csms serve``: run the OCPP server."""

from __future__ import annotations

import argparse

from optivgi_csms.cli import CommandError
from optivgi_csms.cli.common import open_database, run_async, settings_from
from optivgi_csms.config import add_setting_flags


def register(commands: argparse._SubParsersAction) -> None:
    """Add the ``serve`` sub-command with a flag for every setting."""
    parser = commands.add_parser(
        "serve",
        help="run the OCPP server",
        description="Run the OCPP websocket server. Every setting can come from a flag, from its environment "
        "variable, or from the TOML file given with --config, in that order of precedence.",
    )
    add_setting_flags(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Serve until interrupted."""
    from optivgi_csms.server.app import StartupError, serve_until_signalled

    settings = settings_from(args)
    open_database(settings)  # a bad URL fails here with one line, before anything starts
    try:
        run_async(lambda: serve_until_signalled(settings))
    except StartupError as error:
        raise CommandError(str(error)) from None
    return 0
