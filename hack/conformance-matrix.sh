#!/usr/bin/env bash
# `make conformance-matrix`: the end-to-end suite (tests/e2e) on the real control plane of each
# Kubernetes minor in MATRIX: the oldest supported one (1.30, hack/controlplane/kube-1.30) and the
# pinned release (`pinned`, hack/controlplane/kube). Builds what is not cached yet
# (hack/controlplane/build.sh, ENTRA_RBAC_KUBERNETES selecting the wrapper module), runs pytest
# once per version, and writes the results between the conformance-matrix markers of
# docs/testing.md (hack/conformance_table.py). Not part of `make test`.
#
#   MATRIX="1.30 pinned"   the versions (default); e.g. MATRIX=1.30 for the oldest alone
#   TEST_WORKERS=2         pytest-xdist workers, as in `make test` (0: one process)
#   PYTEST_ARGS=...        more pytest arguments (e.g. -x, -k)
# Exits non-zero when any version's run failed, after writing every result.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

matrix="${MATRIX:-1.30 pinned}"
workers="${TEST_WORKERS:-2}"
parallel=()
[[ "$workers" == 0 ]] || parallel=(-n "$workers" --dist loadfile)
results="$(mktemp -d "${TMPDIR:-/tmp}/conformance-matrix.XXXXXX")"
status=0
for entry in $matrix; do
  minor=""
  [[ "$entry" == pinned ]] || minor="$entry"
  dir="$(ENTRA_RBAC_KUBERNETES="$minor" ./hack/controlplane/build.sh | tail -1)"
  version="$("$dir/kube-apiserver" --version | awk '{print $2}')"
  echo "conformance-matrix: Kubernetes $version ($dir): pytest tests/e2e on the real control plane" >&2
  began=$(date +%s)
  rc=0
  # shellcheck disable=SC2086 # PYTEST_ARGS is split on purpose
  ENTRA_RBAC_KUBERNETES="$minor" ENTRA_RBAC_CONTROLPLANE="$dir" ENTRA_RBAC_E2E_SERVERS=real \
    .venv/bin/pytest tests/e2e "${parallel[@]}" -q -p no:cacheprovider \
    --junitxml="$results/$version.xml" ${PYTEST_ARGS:-} >"$results/$version.log" 2>&1 || rc=$?
  tail -n 15 "$results/$version.log" >&2
  echo "$version $rc $(( $(date +%s) - began ))" >>"$results/summary"
  [[ "$rc" == 0 ]] || status=1
done
commit="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
[[ -z "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]] || commit="$commit+changes"
.venv/bin/python hack/conformance_table.py "$results" docs/testing.md "$commit"
echo "conformance-matrix: results in docs/testing.md (logs: $results)" >&2
exit "$status"
