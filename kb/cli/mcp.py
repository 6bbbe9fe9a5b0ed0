"""The MCP server over stdio, for desktop agents (Claude Desktop, Cherry Studio, Cursor ...)."""

from __future__ import annotations

import click

from kb.cli.common import settings


@click.command("mcp")
def mcp() -> None:
    """Serve the knowledge base to an MCP client over stdin/stdout.

    Tools: search, ask, match, get_document; one resource per document
    (kb://documents/DOC_ID). The client starts this command itself; see
    docs/INTEGRATIONS.md for its configuration. `kb serve` offers the same
    server over HTTP at /mcp.
    """
    import os

    from kb.integrations.mcp_server import LocalRunner, build_server
    from kb.models import EVERYTHING

    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as kb serve: idle model threads sleep
    runner = LocalRunner(settings())
    try:
        # stdio: the agent runs as this machine's user, who can read KB_HOME anyway (trusted, as the CLI)
        build_server(runner.settings, runner, visible=lambda: EVERYTHING).run("stdio")
    finally:
        runner.close()


COMMANDS = [mcp]
