"""Subcommands: triage."""
