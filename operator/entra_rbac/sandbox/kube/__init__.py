"""The sandbox Kubernetes API server: enough of kube-apiserver for kopf, the client and kubectl.

Modules: store (objects, resourceVersions, watch fan-out), resources (kinds, discovery),
selectors, patch, validation, crds (+ crd_validation), rbac, auth, reviews, cluster (verb
semantics), gc (garbage collector, namespace lifecycle), bootstrap, table, routing, watch,
handlers (HTTP), server (ApiServer, ApiServerThread, kubeconfig). See docs/sandbox.md.
Nothing in the operator's own layers imports this package.
"""
