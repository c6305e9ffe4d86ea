"""Plumbing shared by the sandbox servers: TLS material (`tls`) and fault injection (`faults`).

Holds nothing specific to Kubernetes or to Entra; those live in `sandbox.kube` and `sandbox.entra`.
"""
