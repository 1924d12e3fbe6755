#!/usr/bin/env bash
# Regenerates the header-only LUKS/ext fixtures in this directory with the real
# cryptsetup and mke2fs (Debian: cryptsetup-bin, e2fsprogs). No root needed:
# luksFormat works on a plain file. Only the first 32 or 64 KiB of each image is
# kept: both LUKS2 header copies (default metadata size 16 KiB each), or the
# LUKS1 header, never the payload. The passphrase is the public test value
# "luksmount-test".
#
#   cd pkg/luksheader/testdata && ./gen.sh
set -euo pipefail
cd "$(dirname "$0")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

fmt() { # fmt NAME KEEP_BYTES cryptsetup-args...
	local name=$1 keep=$2
	shift 2
	truncate -s 20M "$tmp/$name.img"
	printf '%s' luksmount-test | cryptsetup luksFormat -q --key-file=- "$@" "$tmp/$name.img"
	head -c "$keep" "$tmp/$name.img" >"$name.bin"
}

fmt luks1-pbkdf2 4096 --uuid 11111111-1111-4111-8111-111111111111 --type luks1 --hash sha256 --pbkdf-force-iterations 1000
# LUKS1 key material starts at 4 KiB: keep the 592-byte header, zero the rest.
truncate -s 32768 luks1-pbkdf2.bin
fmt luks2-argon2id 32768 --uuid 22222222-2222-4222-8222-222222222222 --type luks2 --pbkdf argon2id --pbkdf-memory 32768 --pbkdf-force-iterations 4 --pbkdf-parallel 2
fmt luks2-argon2i 32768 --uuid 33333333-3333-4333-8333-333333333333 --type luks2 --pbkdf argon2i --pbkdf-memory 65536 --pbkdf-force-iterations 5 --pbkdf-parallel 1
fmt luks2-pbkdf2 32768 --uuid 44444444-4444-4444-8444-444444444444 --type luks2 --pbkdf pbkdf2 --hash sha512 --pbkdf-force-iterations 1000
fmt luks2-label 32768 --uuid 55555555-5555-4555-8555-555555555555 --type luks2 --pbkdf argon2id --pbkdf-memory 32768 --pbkdf-force-iterations 4 --pbkdf-parallel 1 --label mylabel --subsystem mysubsystem
# 32 KiB metadata: the secondary header sits at 32 KiB, the second offset a reader probes.
fmt luks2-meta32k 65536 --type luks2 --pbkdf argon2id --pbkdf-memory 32768 --pbkdf-force-iterations 4 --pbkdf-parallel 1 --luks2-metadata-size 32768 --luks2-keyslots-size 1M

# Two keyslots (the argon2id fixture above needs >= 2 CPUs for cpus=2).
# Two keyslots with different memory costs: MaxKDFMemoryKiB must pick the larger.
truncate -s 20M "$tmp/two.img"
printf '%s' luksmount-test | cryptsetup luksFormat -q --key-file=- --type luks2 --pbkdf argon2id --pbkdf-memory 32768 --pbkdf-force-iterations 4 --pbkdf-parallel 1 "$tmp/two.img"
printf '%s' luksmount-test >"$tmp/old.key"
printf '%s' second-test-key | cryptsetup luksAddKey -q --key-file="$tmp/old.key" --pbkdf argon2i --pbkdf-memory 131072 --pbkdf-force-iterations 4 --pbkdf-parallel 2 "$tmp/two.img" -
head -c 32768 "$tmp/two.img" >luks2-twoslots.bin

truncate -s 4M "$tmp/ext4.img"
mke2fs -q -t ext4 -L myext4 -U 6f1c5d3a-2b7e-4c1a-9d0e-1234567890ab "$tmp/ext4.img"
head -c 4096 "$tmp/ext4.img" >ext4.bin
truncate -s 4M "$tmp/ext2.img"
mke2fs -q -t ext2 -L old "$tmp/ext2.img"
head -c 4096 "$tmp/ext2.img" >ext2.bin

# Detached headers (luksFormat --header): the data starts at offset 0 of another device.
truncate -s 20M "$tmp/data.img"
printf '%s' luksmount-test | cryptsetup luksFormat -q --key-file=- --uuid 66666666-6666-4666-8666-666666666666 --type luks2 --pbkdf argon2id --pbkdf-memory 32768 --pbkdf-force-iterations 4 --pbkdf-parallel 1 --header "$tmp/h2.img" "$tmp/data.img"
head -c 32768 "$tmp/h2.img" >luks2-detached.bin
printf '%s' luksmount-test | cryptsetup luksFormat -q --key-file=- --uuid 77777777-7777-4777-8777-777777777777 --type luks1 --pbkdf-force-iterations 1000 --header "$tmp/h1.img" "$tmp/data.img"
head -c 4096 "$tmp/h1.img" >luks1-detached.bin
truncate -s 32768 luks1-detached.bin
