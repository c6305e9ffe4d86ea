"""Shared pytest configuration: fixtures for the sandbox servers live in tests/fixtures/."""

pytest_plugins = ["tests.fixtures.kube", "tests.fixtures.entra"]
