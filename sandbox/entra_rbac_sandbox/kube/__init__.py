"""The sandbox Kubernetes API server: enough of kube-apiserver for kopf, the client and kubectl.

Modules: store (objects, resourceVersions, watch fan-out), resources (kinds, discovery), openapi
(the OpenAPI v3 documents kubectl reads), selectors, patch, protobuf (kubectl's request bodies),
known_fields and validation (built-in kinds), escalation, crds with crd_validation and crd_cel (custom
resources), rbac, auth, reviews, cluster (verb semantics), gc (garbage collector, namespace
lifecycle), bootstrap, table, routing, watch, handlers (HTTP), server (ApiServer,
ApiServerThread, kubeconfig). See docs/sandbox.md. Nothing in the operator's own layers imports
this package.
"""
