#!/usr/bin/env bash
# Build the Go test helpers of hack/tools/ (today: kstatus) from their wrapper modules.
#
# Each goes into a cache folder keyed by the pinned library version, outside the repository:
#   ${ENTRA_RBAC_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/entra-rbac}/tools/kstatus-<cli-utils version>/kstatus
# and is reused when there. Binaries are never committed. The path of the kstatus binary is the
# last line of stdout (everything else goes to stderr): bin="$(hack/tools/build.sh | tail -1)".
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
die() { echo "hack/tools/build.sh: $*" >&2; exit 1; }

version="$(sed -n 's/^\s*sigs\.k8s\.io\/cli-utils \(v[0-9.]*\)$/\1/p' "$here/kstatus/go.mod")"
go_min="$(sed -n 's/^go \([0-9.]*\)$/\1/p' "$here/kstatus/go.mod")"
[[ -n "$version" ]] || die "cannot read the pinned sigs.k8s.io/cli-utils version from $here/kstatus/go.mod"

cache_root="${ENTRA_RBAC_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/entra-rbac}"
out="$cache_root/tools/kstatus-$version"
bin="$out/kstatus"
# The binary is keyed by version; main.go changes are caught by its checksum beside it.
sum="$(cat "$here/kstatus/main.go" "$here/kstatus/go.sum" | sha256sum | cut -d' ' -f1)"
if [[ -x "$bin" && -s "$bin" && "$(cat "$out/.source-sha256" 2>/dev/null)" == "$sum" ]]; then
  echo "$bin"
  exit 0
fi
command -v go >/dev/null 2>&1 || die "the kstatus test helper is not built and Go is missing.
Install Go $go_min or newer (https://go.dev/dl/) and run 'make tools' (it builds it into $out)."

mkdir -p "$out"
tmp="$(mktemp -d "$out/.build.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
echo "hack/tools/build.sh: building kstatus (sigs.k8s.io/cli-utils $version)" >&2
(cd "$here/kstatus" && CGO_ENABLED=0 GOFLAGS="${GOFLAGS:+$GOFLAGS }-mod=readonly -trimpath" \
  go build -ldflags "-s -w" -o "$tmp/kstatus" .)
[[ -s "$tmp/kstatus" ]] || die "go build produced no kstatus"
mv -f "$tmp/kstatus" "$bin"  # same file system: atomic, never a half-written binary
echo "$sum" >"$out/.source-sha256"
echo "hack/tools/build.sh: built $bin" >&2
echo "$bin"
