#!/usr/bin/env bash
# build-images.sh: build the guest images (kernel + initramfs) per architecture.
#   build-images.sh [--variant NAME] [--init PATH] ARCH...   -> build/<arch>/{vmlinuz,<image>,SHA256SUMS}
#   build-images.sh --verify [--variant NAME] [--init PATH] ARCH...
#       builds into build/<arch> and again into a temp dir (agent included) and fails unless
#       every output is bit-identical.
# The agent variant's /init is ./cmd/luksmount-agent built for ARCH; --init PATH (or
# $LUKSMOUNT_INIT; "{arch}" in it is replaced by the arch) installs another static binary
# instead, as the nfsclient variant needs.
# All logic lives in Go (cmd/luksmount-mkimage, package initramfs); this only wires it up.
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
VERSION=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo devel)}
verify=0 variant=agent init=${LUKSMOUNT_INIT:-}
arches=()
while [ $# -gt 0 ]; do
	case "$1" in
	--verify) verify=1 ;;
	--variant) variant=$2; shift ;;
	--init) init=$2; shift ;;
	-*) echo "build-images.sh: unknown option $1" >&2; exit 2 ;;
	*) arches+=("$1") ;;
	esac
	shift
done
[ ${#arches[@]} -gt 0 ] || arches=(amd64 arm64)

mkdir -p .cache/bin
mkimage=.cache/bin/luksmount-mkimage
CGO_ENABLED=0 $GO build -trimpath -o "$mkimage" ./cmd/luksmount-mkimage

# init_for ARCH DIR: print the path of the /init binary for ARCH, building the agent into DIR.
init_for() {
	local arch=$1 dir=$2
	if [ -n "$init" ]; then
		echo "${init//\{arch\}/$arch}"
		return
	fi
	if [ ! -d cmd/luksmount-agent ]; then
		echo "build-images.sh: ./cmd/luksmount-agent does not exist yet; pass --init PATH (a static linux/$arch binary)" >&2
		return 1
	fi
	CGO_ENABLED=0 GOOS=linux GOARCH=$arch $GO build -trimpath -buildvcs=false \
		-ldflags "-s -w -buildid= -X github.com/luksmount/luksmount/pkg/version.Version=$VERSION" \
		-o "$dir/luksmount-agent-$arch" ./cmd/luksmount-agent
	echo "$dir/luksmount-agent-$arch"
}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
rc=0
for arch in "${arches[@]}"; do
	start=$(date +%s)
	mkdir -p "$tmp/a"
	bin=$(init_for "$arch" "$tmp/a")
	"$mkimage" build -arch "$arch" -variant "$variant" -init "$bin" -out "build/$arch"
	if [ "$verify" = 1 ]; then
		mkdir -p "$tmp/b"
		bin=$(init_for "$arch" "$tmp/b")
		"$mkimage" build -arch "$arch" -variant "$variant" -init "$bin" -out "$tmp/$arch" >/dev/null
		same=1
		for f in "$tmp/$arch"/*; do
			[ "${f##*/}" = SHA256SUMS ] && continue
			a=$(sha256sum <"build/$arch/${f##*/}") b=$(sha256sum <"$f")
			printf '    %s %s  %s\n' "${a%% *}" "${b%% *}" "${f##*/}" >&2
			[ "$a" = "$b" ] || same=0
		done
		if [ "$same" = 1 ]; then
			printf '==> %s/%s: reproducible: two builds are bit-identical\n' "$arch" "$variant" >&2
		else
			printf '==> %s/%s: NOT reproducible: two builds differ (sha256 of first and second build above):\n' "$arch" "$variant" >&2
			for f in "$tmp/$arch"/*.cpio.lz4; do
				"$mkimage" diff "build/$arch/${f##*/}" "$f" | sed 's/^/    /' >&2 || true
			done
			echo "    (the agent is built from the working tree: edits to it between the two builds also show here)" >&2
			rc=1
		fi
	fi
	printf '==> %s/%s: done in %ss\n' "$arch" "$variant" "$(($(date +%s) - start))" >&2
done
exit $rc
