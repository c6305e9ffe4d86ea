#!/usr/bin/env bash
# End-to-end suite on a real Kubernetes (kind) cluster: `make e2e-kind`.
#
# Needs Docker and kind; it cannot run on machines without a Docker engine (docs/testing.md).
# Steps: create (or reuse) a kind cluster, build the operator's image and load it into the
# cluster, apply deploy/ (the install users apply, with the local image), prove the image runs
# under the namespace's `restricted` Pod Security, then run `pytest tests/e2e` against the cluster.
#
# The operator's Deployment is applied with 0 replicas: the e2e suite starts the operator itself
# (as `entra-rbac run` on this machine, next to the local Entra directory, signed in to the
# cluster as the operator's ServiceAccount, so real RBAC applies), or scales the Deployment when a
# directory is reachable from inside the cluster.
#
# Environment (all optional):
#   KIND_CLUSTER   cluster name (default entra-rbac-e2e); an existing cluster is reused and kept
#   KEEP_CLUSTER   1 keeps a cluster this script created (default: deleted on exit)
#   E2E_IMAGE      image reference to build and load (default entra-rbac-operator:e2e)
#   KIND_IMAGE     node image for `kind create cluster --image` (default: kind's own)
#   PYTEST_ARGS    extra arguments for pytest (e.g. "-x -k rename")
# The suite receives:
#   ENTRA_RBAC_E2E_KUBECONFIG           cluster-admin kubeconfig of the kind cluster
#   ENTRA_RBAC_E2E_OPERATOR_KUBECONFIG  kubeconfig holding the operator ServiceAccount's token
#   ENTRA_RBAC_E2E_NAMESPACE            the operator's namespace (entra-rbac-system)
#   ENTRA_RBAC_E2E_IMAGE                the loaded image
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CLUSTER="${KIND_CLUSTER:-entra-rbac-e2e}"
IMAGE="${E2E_IMAGE:-entra-rbac-operator:e2e}"
NAMESPACE="entra-rbac-system"
SERVICE_ACCOUNT="entra-rbac-operator"
PYTEST="${ROOT}/.venv/bin/pytest"
KUBECTL="${KUBECTL:-${ROOT}/.venv/bin/kubectl}"
[[ -x "${KUBECTL}" ]] || KUBECTL="kubectl"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/entra-rbac-e2e.XXXXXX")"
CREATED_CLUSTER=0

step() { printf '\n==> %s\n' "$*"; }
fail() { printf 'e2e-kind: %s\n' "$*" >&2; exit 2; }

cleanup() {
  local status=$?
  if [[ "${CREATED_CLUSTER}" == 1 && "${KEEP_CLUSTER:-0}" != 1 ]]; then
    step "Deleting kind cluster ${CLUSTER} (KEEP_CLUSTER=1 keeps it)"
    kind delete cluster --name "${CLUSTER}" || true
  fi
  rm -rf "${WORK}"
  exit "${status}"
}
trap cleanup EXIT

check_tools() {
  command -v docker >/dev/null || fail "docker not found: this target needs Docker (see docs/testing.md)"
  command -v kind >/dev/null || fail "kind not found: install it from https://kind.sigs.k8s.io (see docs/testing.md)"
  docker info >/dev/null 2>&1 || fail "the Docker engine is not reachable (is it running? may you use it?)"
  [[ -x "${PYTEST}" ]] || fail "${PYTEST} missing: run 'make venv' first"
}

create_cluster() {
  if kind get clusters 2>/dev/null | grep -qx "${CLUSTER}"; then
    step "Reusing kind cluster ${CLUSTER}"
  else
    step "Creating kind cluster ${CLUSTER}"
    local image_args=()
    [[ -n "${KIND_IMAGE:-}" ]] && image_args=(--image "${KIND_IMAGE}")
    kind create cluster --name "${CLUSTER}" --wait 180s "${image_args[@]}"
    CREATED_CLUSTER=1
  fi
  kind get kubeconfig --name "${CLUSTER}" >"${WORK}/admin.kubeconfig"
  export KUBECONFIG="${WORK}/admin.kubeconfig"
}

build_and_load_image() {
  step "Building ${IMAGE}"
  docker build --tag "${IMAGE}" "${ROOT}"
  step "Loading ${IMAGE} into ${CLUSTER}"
  kind load docker-image "${IMAGE}" --name "${CLUSTER}"
}

# An overlay of deploy/ in the scratch directory: the local image, never pulled, and no running
# operator (the suite decides how to run it). kustomize accepts only relative paths to a base.
write_overlay() {
  local overlay="${WORK}/overlay" base name tag
  mkdir -p "${overlay}"
  base="$(realpath --relative-to="${overlay}" "${ROOT}/deploy")"
  name="${IMAGE%:*}"
  tag="${IMAGE##*:}"
  cat >"${overlay}/kustomization.yaml" <<EOF
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - ${base}
images:
  # deploy/ names the released image; this overlay swaps in the local build.
  - name: ghcr.io/entra-rbac/entra-rbac-operator
    newName: ${name}
    newTag: "${tag}"
patches:
  - target: {kind: Deployment, name: entra-rbac-operator}
    patch: |
      - {op: replace, path: /spec/replicas, value: 0}
      - {op: replace, path: /spec/template/spec/containers/0/imagePullPolicy, value: Never}
EOF
  printf '%s\n' "${overlay}"
}

apply_deploy() {
  local overlay
  overlay="$(write_overlay)"
  step "Applying deploy/ (image ${IMAGE}, operator scaled to 0)"
  # A first install sends the Guardrails object before its CRD is established: apply again.
  "${KUBECTL}" apply --server-side --force-conflicts -k "${overlay}" || true
  "${KUBECTL}" wait --for condition=Established --timeout 60s \
    crd/entragroupbindings.entra-rbac.io crd/clusterkopfpeerings.kopf.dev crd/guardrails.entra-rbac.io
  "${KUBECTL}" apply --server-side --force-conflicts -k "${overlay}"
}

# The image must start as the Deployment runs it: non-root, read-only root filesystem, no
# capabilities, admitted by the namespace's `restricted` Pod Security.
smoke_test_image() {
  step "Running the image under restricted Pod Security"
  "${KUBECTL}" -n "${NAMESPACE}" delete pod image-smoke --ignore-not-found --wait=true
  "${KUBECTL}" apply -f - <<EOF
apiVersion: v1
kind: Pod
metadata:
  name: image-smoke
  namespace: ${NAMESPACE}
spec:
  restartPolicy: Never
  automountServiceAccountToken: false
  securityContext:
    runAsNonRoot: true
    runAsUser: 65532
    runAsGroup: 65532
    seccompProfile: {type: RuntimeDefault}
  containers:
    - name: smoke
      image: ${IMAGE}
      imagePullPolicy: Never
      command: [entra-rbac, --version]
      securityContext:
        allowPrivilegeEscalation: false
        readOnlyRootFilesystem: true
        capabilities: {drop: [ALL]}
EOF
  "${KUBECTL}" -n "${NAMESPACE}" wait --for=jsonpath='{.status.phase}'=Succeeded --timeout 120s pod/image-smoke
  "${KUBECTL}" -n "${NAMESPACE}" logs pod/image-smoke
  "${KUBECTL}" -n "${NAMESPACE}" delete pod image-smoke --wait=false
}

# A kubeconfig that signs in as the operator's ServiceAccount, so the suite can run the operator
# with exactly the permissions deploy/ grants it.
write_operator_kubeconfig() {
  local token server ca
  token="$("${KUBECTL}" -n "${NAMESPACE}" create token "${SERVICE_ACCOUNT}" --duration 2h)"
  server="$("${KUBECTL}" config view --minify --raw -o jsonpath='{.clusters[0].cluster.server}')"
  ca="$("${KUBECTL}" config view --minify --raw -o jsonpath='{.clusters[0].cluster.certificate-authority-data}')"
  cat >"${WORK}/operator.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
  - name: kind
    cluster: {server: "${server}", certificate-authority-data: "${ca}"}
users:
  - name: ${SERVICE_ACCOUNT}
    user: {token: "${token}"}
contexts:
  - name: operator
    context: {cluster: kind, user: ${SERVICE_ACCOUNT}}
current-context: operator
EOF
  chmod 600 "${WORK}/operator.kubeconfig"
}

run_suite() {
  step "Running the end-to-end suite (pytest tests/e2e)"
  local status=0
  # PYTEST_ARGS is split on purpose: it carries several arguments.
  # shellcheck disable=SC2086
  ENTRA_RBAC_E2E_KUBECONFIG="${WORK}/admin.kubeconfig" \
    ENTRA_RBAC_E2E_OPERATOR_KUBECONFIG="${WORK}/operator.kubeconfig" \
    ENTRA_RBAC_E2E_NAMESPACE="${NAMESPACE}" \
    ENTRA_RBAC_E2E_IMAGE="${IMAGE}" \
    "${PYTEST}" "${ROOT}/tests/e2e" ${PYTEST_ARGS:-} || status=$?
  # pytest's 5 means "no tests collected": say so rather than pass silently.
  [[ "${status}" == 5 ]] && fail "no end-to-end tests were collected in tests/e2e"
  return "${status}"
}

main() {
  check_tools
  create_cluster
  build_and_load_image
  apply_deploy
  smoke_test_image
  write_operator_kubeconfig
  run_suite
}

main "$@"
