"""Placeholder; see package docstring."""
