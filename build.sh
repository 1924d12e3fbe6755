#!/usr/bin/env bash
# build.sh: the one place that knows how luksmount is built and tested. The Makefile calls it.
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$(pwd)
GO=${GO:-go}
# version: a v-tag gives 1.2.0 (1.2.0-3-g<sha> after it); without one, 0.0.0-dev.<commit date>.g<sha>
# still names the commit; -dirty marks uncommitted edits. Homebrew and archive names use it as is.
version() {
	local d
	if d=$(git describe --tags --match 'v[0-9]*' --dirty 2>/dev/null); then
		echo "${d#v}"
	elif d=$(TZ=UTC git log -1 --date=format-local:%Y%m%d --format=%cd.g%h --abbrev=12 2>/dev/null) && [ -n "$d" ]; then
		git diff --quiet HEAD -- 2>/dev/null || d=$d-dirty
		echo "0.0.0-dev.$d"
	else
		echo devel
	fi
}
VERSION=${VERSION:-$(version)}
LDFLAGS="-s -w -X github.com/luksmount/luksmount/pkg/version.Version=${VERSION}"

# Debian packages the build and the tests use on the host.
HOST_PACKAGES=(qemu-system-x86 qemu-system-arm qemu-utils cryptsetup-bin e2fsprogs cpio libnfs-utils lz4 xz-utils zstd kmod busybox-static ca-certificates ruby)

step() { printf '==> %s\n' "$*" >&2; }
timed() { # timed NAME CMD...: run CMD and print how long it took
	local name=$1 start rc=0
	shift
	start=$(date +%s)
	"$@" || rc=$?
	printf '==> %s took %ss (exit %s)\n' "$name" "$(($(date +%s) - start))" "$rc" >&2
	return "$rc"
}

deps() {
	local missing=()
	dpkg --print-foreign-architectures | grep -qx arm64 || { step "adding dpkg architecture arm64"; dpkg --add-architecture arm64; missing+=(update); }
	for p in "${HOST_PACKAGES[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
	done
	if [ ${#missing[@]} -eq 0 ] && [ -d /var/lib/apt/lists ] && ls /var/lib/apt/lists/*arm64_Packages* >/dev/null 2>&1; then
		return 0
	fi
	local sudo=""
	[ "$(id -u)" -eq 0 ] || sudo=sudo
	step "installing Debian packages: ${HOST_PACKAGES[*]}"
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${HOST_PACKAGES[@]}" >/dev/null
}

host() {
	mkdir -p bin
	step "building bin/luksmount"
	$GO build -trimpath -ldflags "$LDFLAGS" -o bin/luksmount ./cmd/luksmount
}

cross() {
	local os arch
	for os in darwin linux; do
		for arch in arm64 amd64; do
			step "go build ./... for $os/$arch"
			GOOS=$os GOARCH=$arch CGO_ENABLED=0 $GO build -trimpath -o /dev/null ./...
			GOOS=$os GOARCH=$arch CGO_ENABLED=0 $GO vet ./...
		done
	done
}

test_quick() {
	$GO vet ./...
	$GO test -count=1 ./...
}

fuzz() {
	# Each fuzz target runs briefly; the seed corpus always runs in test-quick. The budget is a count,
	# not a duration: Go 1.26's coordinator can report a bare "context deadline exceeded" failure when a
	# -fuzztime duration expires mid-call (golang/go#75804, fixed in Go 1.27); a count has no deadline.
	# FUZZTIME=30s still works for a longer local run.
	local pkg target
	while read -r pkg target; do
		[ -n "$target" ] || continue
		step "fuzz $pkg $target"
		$GO test -run='^$' -fuzz="^${target}\$" -fuzztime=${FUZZTIME:-150000x} "$pkg"
	done < <(grep -rl --include='*_test.go' '^func Fuzz' . | while read -r f; do
		d=$(dirname "$f")
		grep -o '^func Fuzz[A-Za-z0-9_]*' "$f" | sed 's/^func //' | sed "s|^|$d |"
	done)
}

# client_images: the nfsclient variant with the test client's init, for the kernel-NFS-client VM.
client_images() {
	local arch
	mkdir -p .cache/bin
	for arch in "${@:-amd64}"; do
		CGO_ENABLED=0 GOOS=linux GOARCH=$arch $GO build -trimpath -buildvcs=false -ldflags "-s -w -buildid=" \
			-o ".cache/bin/luksmount-clientinit-$arch" ./test/clientvm/cmd/luksmount-clientinit
	done
	"$ROOT/initramfs/build-images.sh" --variant nfsclient --init "$ROOT/.cache/bin/luksmount-clientinit-{arch}" "${@:-amd64}" >/dev/null
}

test_vm() {
	mkdir -p build
	timed "client image" client_images amd64
	# -p 1: VMs under TCG share two cores; running packages in parallel only makes each slower.
	local rc=0
	$GO test -count=1 -p 1 -tags vmtest -timeout 60m -v ./test/... >build/test-vm.log 2>&1 || rc=$?
	grep -E '^(=== RUN|--- |PASS|FAIL|ok |panic:)|^    [a-z_]+_test\.go:[0-9]+: ' build/test-vm.log | grep -vE '^    [a-z_]+_test\.go:[0-9]+: host: ' || true
	if [ $rc -ne 0 ]; then
		echo "VM tier failed; full log: build/test-vm.log" >&2
	fi
	return $rc
}

# dist [-o DIR] [os/arch...]: release archives, SHA256SUMS and the Homebrew formula (packaging/dist).
# Needs build/<arch> from `make images`. Archive times are the commit's, so a rerun is byte-identical.
dist() {
	local out=dist p goos goarch bins=.cache/dist/bin platforms=()
	[ "${1:-}" = -o ] && { out=$2; shift 2; }
	platforms=("$@")
	[ $# -gt 0 ] || platforms=(darwin/arm64 darwin/amd64 linux/amd64 linux/arm64)
	for p in "${platforms[@]}"; do
		goos=${p%/*} goarch=${p#*/}
		mkdir -p "$bins/$goos-$goarch"
		GOOS=$goos GOARCH=$goarch CGO_ENABLED=0 $GO build -trimpath -buildvcs=false -ldflags "$LDFLAGS -buildid=" \
			-o "$bins/$goos-$goarch/luksmount" ./cmd/luksmount
	done
	$GO run ./cmd/luksmount-dist build -version "$VERSION" -mtime "$(git log -1 --format=%ct)" -bins "$bins" -out "$out" \
		-platforms "$(IFS=,; echo "${platforms[*]}")" -base-url "${RELEASE_BASE_URL:-https://github.com/luksmount/luksmount/releases/download/v{{version}}}" \
		-gomodcache "$($GO env GOMODCACHE)" -goroot "$($GO env GOROOT)"
}

# dist_check: what CI checks of `make dist`: two runs give the same SHA256SUMS, the formula parses
# (ruby -c) and its sha256s match the archives.
dist_check() {
	rm -rf build/dist-a build/dist-b
	dist -o build/dist-a >/dev/null
	dist -o build/dist-b >/dev/null
	if ! cmp build/dist-a/SHA256SUMS build/dist-b/SHA256SUMS; then
		diff build/dist-a/SHA256SUMS build/dist-b/SHA256SUMS >&2 || true
		echo "make dist is not reproducible: two runs of the same commit differ (build/dist-a, build/dist-b)" >&2
		return 1
	fi
	ruby -c build/dist-a/luksmount.rb >/dev/null
	$GO run ./cmd/luksmount-dist verify -version "$VERSION" -dir build/dist-a
	step "dist: reproducible, formula parses and matches: $(cut -c1-12 build/dist-a/SHA256SUMS | tr '\n' ' ')"
	rm -rf build/dist-b
}

images_cmd() { # images [--variant V] [--init PATH] ARCH...: build/<arch>/{vmlinuz,initramfs.cpio.lz4,SHA256SUMS}
	VERSION=$VERSION timed "images $*" "$ROOT/initramfs/build-images.sh" "$@"
}

verify_images() { # build twice and compare sha256s
	VERSION=$VERSION timed "verify-images $*" "$ROOT/initramfs/build-images.sh" --verify "$@"
}

lock_images() { # re-resolve the guest packages from apt and rewrite initramfs/packages.lock
	local sudo=""
	[ "$(id -u)" -eq 0 ] || sudo=sudo
	step "apt-get update (current package versions)"
	$sudo apt-get -o DPkg::Lock::Timeout=300 update -qq
	$GO run ./cmd/luksmount-mkimage lock "$@"
}

test_all() {
	local t0
	t0=$(date +%s)
	timed "unit tests (test-quick)" test_quick
	timed "cross builds" cross
	timed "dist (twice, compared; formula checked)" dist_check
	timed "fuzz" fuzz
	mkdir -p build
	timed "VM tier" test_vm
	printf '==> whole test run took %ss\n' "$(($(date +%s) - t0))" >&2
}

bench() {
	# One run, one table (also bench/results/<date>.json). Needs build/<arch> from `make images`;
	# builds its own client and nfsd images into build/bench. Never gates on absolute times.
	mkdir -p bench/results build/bench
	$GO build -trimpath -o build/bench/luksmount-bench ./bench/cmd/luksmount-bench
	timed "bench" timeout 45m build/bench/luksmount-bench -root "$ROOT" "$@"
}

# soak: `make soak`, never part of `make test`: 100 QEMU SIGKILLs mid-write under the kernel client
# (e2fsck -n after each), an hour of fsx, 8 concurrent writers and readers for 10 minutes, 50
# serve/write/stop rounds (test/cli TestStopSaysStopped), the kernel-client workload at 10k files; one table at the end (build/soak.log
# has everything). SOAK_SCALE=small runs each briefly.
soak() {
	local rounds=100 fsx=3600 writers=600 stops=50 files=10000 poweroffs=100
	if [ "${SOAK_SCALE:-}" = small ]; then
		rounds=2 fsx=30 writers=30 stops=4 files=500 poweroffs=8
	fi
	timed "client image" client_images amd64
	mkdir -p build
	local rc=0
	step "soak: $rounds crash rounds, fsx ${fsx}s, concurrent writers ${writers}s (log: build/soak.log)"
	LUKSMOUNT_CRASH_ROUNDS=$rounds LUKSMOUNT_SOAK_FSX_SECONDS=$fsx LUKSMOUNT_SOAK_WRITERS_SECONDS=$writers LUKSMOUNT_MANY_FILES=$files \
		$GO test -count=1 -p 1 -tags 'vmtest soak' -timeout 8h -v \
		-run '^(TestCrashDurability|TestSoakFSX|TestSoakConcurrentWriters|TestKernelClientWorkload)$' ./test/e2e/ >build/soak.log 2>&1 || rc=$?
	step "soak: $stops serve/write/stop rounds (issue 11.1's stress run)"
	LUKSMOUNT_STOP_ROUNDS=$stops $GO test -count=1 -p 1 -tags vmtest -timeout 2h -v \
		-run '^TestStopSaysStopped$' ./test/cli/ >>build/soak.log 2>&1 || rc=$?
	step "soak: $poweroffs power-offs under virtio-net traffic (issue 11's power-off hang)"
	LUKSMOUNT_POWEROFF_ROUNDS=$poweroffs $GO test -count=1 -p 1 -tags vmtest -timeout 2h -v \
		-run '^TestPowerOffUnderTraffic$' ./test/vmboot/ >>build/soak.log 2>&1 || rc=$?
	{
		printf '| soak | size | result | time |\n|---|---|---|---|\n'
		grep -o 'SOAK|.*' build/soak.log | awk -F'|' '{ printf "| %s | %s | %s | %s |\n", $2, $3, $4, $5 }'
		{ grep -E '^--- FAIL' build/soak.log || true; } | sed 's/^--- FAIL: \([^ ]*\) (\(.*\))/| \1 | | FAILED (see build\/soak.log) | \2 |/'
	} | tee build/soak-table.md
	return $rc
}

cmd=${1:-}
shift || true
case "$cmd" in
deps) deps ;;
host) host ;;
images) images_cmd "$@" ;;
verify-images) verify_images "$@" ;;
lock) lock_images "$@" ;;
cross) cross ;;
test-quick) test_quick ;;
fuzz) fuzz ;;
test-vm) mkdir -p build && test_vm ;;
test) test_all ;;
bench) bench "$@" ;;
dist) dist "$@" ;;
dist-check) dist_check ;;
soak) soak ;;
*)
	echo "usage: build.sh deps|host|images|verify-images|lock|cross|test-quick|fuzz|test-vm|test|bench|dist|dist-check|soak" >&2
	exit 2
	;;
esac
