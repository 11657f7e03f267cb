"""Subcommands: qualify."""
