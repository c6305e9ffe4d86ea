"""The sandbox of entra-rbac-operator: a local Kubernetes API server, a local Entra directory
(Microsoft Graph, token endpoint) and the demo, for tests and for trying the product without a
cluster or a tenant.

A distribution of its own (`entra-rbac-sandbox`), installed beside the product for `make demo`
and `make test`; the product's wheel and image never contain it. It imports from the product only
what any outside user could (its public constants), and adds the `sandbox` and `demo` commands to
`entra-rbac` through the `entra_rbac.commands` entry point group.
"""
