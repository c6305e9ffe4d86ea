"""The real Kubernetes control plane for the tests: kube-apiserver, kube-controller-manager, etcd.

Test and development support, never part of the product: `harness.ControlPlane` runs the three
binaries built by `make controlplane` (or found in `KUBEBUILDER_ASSETS`) as local processes on
loopback ports; `fixtures` is the pytest plugin with the session-scoped `control_plane` fixture;
`python -m tests.controlplane` (`make cluster`) runs it by hand in the foreground.
"""
