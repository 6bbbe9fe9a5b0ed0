"""The ``kb`` command line: thin shells over kb.ingest, kb.search and kb.evaluation, one module per concern."""

from __future__ import annotations

import click

from kb.cli.common import KBGroup
from kb.settings import settings_help

MAIN_HELP = """cbm-kb: a coalbed-methane (煤层气) knowledge base — ingest, hybrid search, cited answers,
need/result matching, and the HTTP service.

Data lives under KB_HOME (default ./data). Every setting is a KB_* environment variable:

\b
""" + settings_help()


@click.group(cls=KBGroup, help=MAIN_HELP, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 120})
def main() -> None:
    pass


def _register() -> None:
    from kb.cli import bureau, evaluate, index, market, mcp, search, serve, sync

    for module in (index, sync, search, market, bureau, evaluate, serve, mcp):
        for command in module.COMMANDS:
            main.add_command(command)


_register()
