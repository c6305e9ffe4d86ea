"""Shared pytest configuration: fixtures for the sandbox servers live in tests/fixtures/, those of
the real control plane (kube-apiserver, kube-controller-manager, etcd) in tests/controlplane/."""

pytest_plugins = ["tests.fixtures.kube", "tests.fixtures.entra", "tests.controlplane.fixtures"]
