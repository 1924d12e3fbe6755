# luksmount: `make` installs what the build needs, builds the guest images and bin/luksmount.
# `make test` runs everything CI runs. `make help` lists the targets.
SHELL := /bin/bash
GO ?= go
ARCHES ?= amd64 arm64
export CGO_ENABLED ?= 0

.DEFAULT_GOAL := all

.PHONY: all
all: deps images host ## install build dependencies, build guest images and bin/luksmount

.PHONY: help
help: ## list targets
	@grep -hE '^[a-z%/.-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | column -ts "$$(printf '\t')"

.PHONY: deps
deps: ## install the Debian packages the build and tests need (apt-get; idempotent)
	./build.sh deps

.PHONY: host
host: ## build bin/luksmount for this machine
	./build.sh host

# --- images (initramfs/): guest kernel + initramfs per arch ---
.PHONY: images
images: ## build build/<arch>/vmlinuz and initramfs for amd64 and arm64 from pinned Debian packages
	./build.sh images $(ARCHES)

.PHONY: verify-images
verify-images: ## build the images twice and check the sha256s match
	./build.sh verify-images $(ARCHES)

.PHONY: lock
lock: ## re-pin the guest image packages to the current Debian versions (rewrites initramfs/packages.lock)
	./build.sh lock
# --- end images ---

.PHONY: cross
cross: ## build every binary for darwin/arm64, darwin/amd64, linux/amd64, linux/arm64
	./build.sh cross

.PHONY: test-quick
test-quick: ## unit tests only: no VM, no root devices
	./build.sh test-quick

.PHONY: fuzz
fuzz: ## a short run of each fuzz target
	./build.sh fuzz

.PHONY: test-vm
test-vm: ## the VM tier: boots the guest images under QEMU
	./build.sh test-vm

.PHONY: test
test: deps images host ## everything CI runs: unit tests, cross builds, fuzz, VM tier
	./build.sh test

.PHONY: bench
bench: deps images host ## benchmark tables (bench/results/<date>.json)
	./build.sh bench

.PHONY: dist
dist: deps images ## release archives for macOS and Linux, SHA256SUMS and the Homebrew formula in dist/ (RELEASE_BASE_URL=...)
	./build.sh dist

.PHONY: soak
soak: deps images host ## long runs, not in make test: 100 crashes, 1 h fsx, 10 min of 8 writers, 50 stops (SOAK_SCALE=small: minutes)
	./build.sh soak

.PHONY: clean
clean: ## remove build outputs
	rm -rf build bin dist
