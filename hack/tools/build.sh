#!/usr/bin/env bash
# Build the Go tools of hack/tools/ from their wrapper modules: build.sh [TOOL]
#
#   kstatus     (default) the kstatus test helper (main.go over sigs.k8s.io/cli-utils): Flux's health check
#   helm        helm itself (helm.sh/helm/v4, a `tool` of its wrapper module): the chart tests
#   actionlint  actionlint (github.com/rhysd/actionlint): lints .github/workflows
#
# Each goes into a cache folder keyed by the pinned module version, outside the repository:
#   ${ENTRA_RBAC_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/entra-rbac}/tools/<tool>-<version>/<tool>
# and is reused when there (a checksum of the wrapper's go.mod, go.sum and sources sits beside it,
# so a change of pin or source rebuilds). Binaries are never committed. The path of the binary is
# the last line of stdout (everything else goes to stderr): bin="$(hack/tools/build.sh helm | tail -1)".
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
die() { echo "hack/tools/build.sh: $*" >&2; exit 1; }

tool="${1:-kstatus}"
case "$tool" in
  kstatus) pinned=sigs.k8s.io/cli-utils package=. ;;
  helm) pinned=helm.sh/helm/v4 package=helm.sh/helm/v4/cmd/helm ;;
  actionlint) pinned=github.com/rhysd/actionlint package=github.com/rhysd/actionlint/cmd/actionlint ;;
  *) die "unknown tool '$tool' (kstatus, helm or actionlint)" ;;
esac
module="$here/$tool"
# The pinned version: "<module> vX.Y.Z" in the wrapper's go.mod, required directly or indirectly.
version="$(sed -n "s|^\s*${pinned//./\\.} \(v[0-9][0-9A-Za-z.+-]*\)\( // indirect\)\{0,1\}$|\1|p" "$module/go.mod" | head -1)"
go_min="$(sed -n 's/^go \([0-9.]*\)$/\1/p' "$module/go.mod")"
[[ -n "$version" ]] || die "cannot read the pinned $pinned version from $module/go.mod"

cache_root="${ENTRA_RBAC_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/entra-rbac}"
out="$cache_root/tools/$tool-$version"
bin="$out/$tool"
shopt -s nullglob
sources=("$module"/go.mod "$module"/go.sum "$module"/*.go)
sum="$(cat "${sources[@]}" | sha256sum | cut -d' ' -f1)"
if [[ -x "$bin" && -s "$bin" && "$(cat "$out/.source-sha256" 2>/dev/null)" == "$sum" ]]; then
  echo "$bin"
  exit 0
fi
command -v go >/dev/null 2>&1 || die "$tool is not built and Go is missing.
Install Go $go_min or newer (https://go.dev/dl/) and run 'make tools' (it builds it into $out)."

mkdir -p "$out"
tmp="$(mktemp -d "$out/.build.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
echo "hack/tools/build.sh: building $tool ($pinned $version)" >&2
(cd "$module" && CGO_ENABLED=0 GOFLAGS="${GOFLAGS:+$GOFLAGS }-mod=readonly -trimpath" \
  go build -ldflags "-s -w" -o "$tmp/$tool" "$package")
[[ -s "$tmp/$tool" ]] || die "go build produced no $tool"
mv -f "$tmp/$tool" "$bin" # same file system: atomic, never a half-written binary
echo "$sum" >"$out/.source-sha256"
echo "hack/tools/build.sh: built $bin" >&2
echo "$bin"
