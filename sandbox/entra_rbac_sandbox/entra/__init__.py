"""The sandbox Entra directory: a token endpoint and the Graph v1.0 subset, over a YAML file.

`server.EntraSandbox` / `server.EntraSandboxThread` are the entry points; `python -m
entra_rbac_sandbox.entra --directory FILE` runs it as a process. Never imported by the operator.
"""
