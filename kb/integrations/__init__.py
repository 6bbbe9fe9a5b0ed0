"""Adapters to the tools users already run: Dify's external knowledge API, MCP. Above the read path, below the shells."""
