#!/usr/bin/env bash
# Build the real control plane (kube-apiserver, kube-controller-manager, etcd) from Go modules.
#
# The binaries go into a cache folder keyed by version, outside the repository:
#   ${ENTRA_RBAC_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/entra-rbac}/controlplane/k8s-<v>-etcd-<v>/
# and are reused when all three are there. KUBEBUILDER_ASSETS (the envtest convention, e.g. the
# folder printed by `setup-envtest use -p path`) wins: when set, that folder is used and nothing
# is built, so no Go is needed. The folder is printed as the last line of stdout (everything else
# goes to stderr), so callers can capture it: dir="$(hack/controlplane/build.sh | tail -1)".
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
binaries=(kube-apiserver kube-controller-manager etcd)

die() { echo "build.sh: $*" >&2; exit 1; }

has_all() { # has_all DIR: true when DIR holds the three binaries, executable
  local b
  for b in "${binaries[@]}"; do [[ -x "$1/$b" && -s "$1/$b" ]] || return 1; done
}

if [[ -n "${KUBEBUILDER_ASSETS:-}" ]]; then
  has_all "$KUBEBUILDER_ASSETS" \
    || die "KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS does not hold all of: ${binaries[*]} (unset it to build them with Go)"
  echo "$KUBEBUILDER_ASSETS"
  exit 0
fi

# ENTRA_RBAC_KUBERNETES=<major>.<minor> (e.g. 1.30, the oldest supported minor, for
# `make conformance-matrix`) builds from the wrapper module hack/controlplane/kube-<major>.<minor>
# instead of the pinned release's hack/controlplane/kube. Unset or empty: the pinned release.
kube_dir="$here/kube"
if [[ -n "${ENTRA_RBAC_KUBERNETES:-}" ]]; then
  kube_dir="$here/kube-$ENTRA_RBAC_KUBERNETES"
  [[ -f "$kube_dir/go.mod" ]] || die "ENTRA_RBAC_KUBERNETES=$ENTRA_RBAC_KUBERNETES: no wrapper module $kube_dir/go.mod (the minors with one: $(cd "$here" && ls -d kube-*/ 2>/dev/null | sed 's#kube-##; s#/##' | tr '\n' ' '))"
fi

# The versions are read from the wrapper modules: go.mod is the single place they are pinned.
kube_version="$(sed -n 's/^require k8s\.io\/kubernetes \(v[0-9.]*\)$/\1/p' "$kube_dir/go.mod")"
etcd_version="$(sed -n 's/^require go\.etcd\.io\/etcd\/server\/v3 \(v[0-9.]*\)$/\1/p' "$here/etcd/go.mod")"
go_min="$(sed -n 's/^go \([0-9.]*\)$/\1/p' "$kube_dir/go.mod")"
[[ -n "$kube_version" && -n "$etcd_version" ]] || die "cannot read the pinned versions from $kube_dir/go.mod and $here/etcd/go.mod"

cache_root="${ENTRA_RBAC_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/entra-rbac}"
out="$cache_root/controlplane/k8s-$kube_version-etcd-$etcd_version"
if has_all "$out"; then
  echo "$out"
  exit 0
fi

command -v go >/dev/null 2>&1 || die "the real control plane (kube-apiserver, kube-controller-manager, etcd) is needed and not built.
Either install Go $go_min or newer (https://go.dev/dl/) and run 'make controlplane' again (it builds them into $out),
or set KUBEBUILDER_ASSETS to a folder holding those three binaries (for example: KUBEBUILDER_ASSETS=\"\$(setup-envtest use -p path ${kube_version#v})\")."

mkdir -p "$out"
# One build at a time per cache folder; a second caller waits, then finds the binaries.
if command -v flock >/dev/null 2>&1; then
  exec 9>"$out/.lock"
  flock 9
  if has_all "$out"; then echo "$out"; exit 0; fi
fi

tmp="$(mktemp -d "$out/.build.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT

export CGO_ENABLED=0 GOFLAGS="${GOFLAGS:+$GOFLAGS }-mod=readonly -trimpath"
minor="$(cut -d. -f2 <<<"$kube_version")"
vpkgs=(k8s.io/component-base/version k8s.io/client-go/pkg/version)
ldflags="-s -w"
for p in "${vpkgs[@]}"; do
  ldflags+=" -X $p.gitVersion=$kube_version -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
done

echo "build.sh: building kube-apiserver and kube-controller-manager $kube_version with $(go version | cut -d' ' -f3) (a cold build takes long)" >&2
(cd "$kube_dir" && go build -ldflags "$ldflags" -o "$tmp/" \
  k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager)
echo "build.sh: building etcd $etcd_version" >&2
(cd "$here/etcd" && go build -ldflags "-s -w" -o "$tmp/etcd" go.etcd.io/etcd/server/v3)

# Move each finished binary into place (same file system: rename is atomic), so an interrupted
# build never leaves a half-written binary that looks done.
for b in "${binaries[@]}"; do
  [[ -s "$tmp/$b" ]] || die "go build produced no $b"
  mv -f "$tmp/$b" "$out/$b"
done
echo "build.sh: built ${binaries[*]} into $out" >&2
echo "$out"
