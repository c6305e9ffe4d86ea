"""entra-rbac-operator: cluster access that follows Microsoft Entra ID groups."""

__version__ = "0.1.0"
