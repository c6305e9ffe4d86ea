"""`python -m entra_rbac`: the same as the `entra-rbac` command."""

from entra_rbac.cli import main

main()
