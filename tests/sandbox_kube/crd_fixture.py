"""A CRD shaped like the product's EntraGroupBinding (cluster-scoped, status subresource,
printer columns, CEL rule), and a namespaced one, for the sandbox conformance tests."""

from __future__ import annotations

from typing import Any

GROUP = "example.entra-rbac.io"


def widget_crd(scope: str = "Cluster", plural: str = "widgets", kind: str = "Widget") -> dict[str, Any]:
    schema = {
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "required": ["size"],
                "properties": {
                    "size": {"type": "integer", "minimum": 1, "maximum": 10},
                    "color": {"type": "string", "enum": ["red", "blue"], "default": "red"},
                    "tags": {
                        "type": "array",
                        "maxItems": 3,
                        "items": {"type": "string", "pattern": "^[a-z]+$"},
                    },
                    "name": {"type": "string", "maxLength": 8},
                },
                "x-kubernetes-validations": [{"rule": "self.size != 7", "message": "size 7 is unlucky"}],
            },
            "status": {
                "type": "object",
                "properties": {
                    "observedGeneration": {"type": "integer"},
                    "conditions": {
                        "type": "array",
                        "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                    },
                    "message": {"type": "string"},
                },
            },
        },
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": scope,
            "names": {
                "plural": plural,
                "singular": kind.lower(),
                "kind": kind,
                "shortNames": [plural[:3]],
                "categories": ["entra"],
            },
            "versions": [
                {
                    "name": "v1alpha1",
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": schema},
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": [
                        {
                            "name": "Ready",
                            "type": "string",
                            "jsonPath": '.status.conditions[?(@.type=="Ready")].status',
                        },
                        {"name": "Size", "type": "integer", "jsonPath": ".spec.size"},
                        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
                        {"name": "Message", "type": "string", "priority": 1, "jsonPath": ".status.message"},
                    ],
                }
            ],
        },
    }


def widget(name: str, size: int = 3, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/v1alpha1",
        "kind": "Widget",
        "metadata": {"name": name},
        "spec": {"size": size, **spec},
    }
