package initramfs

import (
	"debug/elf"
	"fmt"
	"maps"
	"sort"
)

// Variant says what goes into one kind of guest image. The init binary is not part of it: it is
// given at build time (the agent, or a test runner).
type Variant struct {
	Name   string
	Output string // image file name under build/<arch>/
	// Kernel is the Debian kernel flavour; the metapackage is linux-image-<Kernel>-<arch>.
	Kernel string
	// Modules are loaded on every architecture, ArchModules on one; built-in (=y) ones are
	// skipped. Names use the module file's base name; '-' and '_' are equivalent.
	Modules     []string
	ArchModules map[string][]string
	// OnDemand are module sets shipped in the image but loaded only when the drive's stack asks
	// for them, keyed by the feature the agent asks for (a kernel crypto algorithm such as
	// "serpent", or a filesystem). A feature whose modules are all built in or loaded at boot
	// is still listed, with no paths, so the agent knows the kernel has it.
	OnDemand map[string][]string
	// Packages are the Debian packages to pin (with their Depends, minus Exclude).
	Packages []string
	Exclude  []string
	// Binaries are executables inside the packages, copied with their libraries and loader.
	// Each also gets a symlink at its /usr (or non-/usr) counterpart so PATH finds it either way.
	Binaries []string
	// Libs are sonames loaded with dlopen, which DT_NEEDED does not reveal.
	Libs []string
	// Files are other files copied verbatim from the packages (configuration); "{triplet}" in a
	// path becomes the arch's multiarch triplet (x86_64-linux-gnu).
	Files []string
	// Symlinks maps a path in the image to a link target.
	Symlinks map[string]string
}

// notNeeded are Depends that only matter for installing packages on a full system
// (maintainer scripts, documentation, data), never to run the binaries we copy.
var notNeeded = []string{
	"adduser", "cdebconf", "debconf", "dpkg", "init-system-helpers", "install-info", "libaudit-common",
	"libpam-modules", "libpam-modules-bin", "libpam-runtime", "libsemanage-common", "lsb-base",
	"mailcap", "media-types", "mime-support", "passwd", "perl", "perl-base", "python3",
	"readline-common", "sensible-utils", "sysvinit-utils", "tar", "ucf", "usr-is-merged", "usrmerge",
	"util-linux-extra",
}

// virtioModules are the virtio transports and devices every image uses: PCI for q35/virt,
// MMIO for microvm.
var virtioModules = []string{
	"virtio_pci", "virtio_mmio", "virtio_blk", "virtio_net", "virtio_console", "virtio-rng",
}

// cryptoOnDemand are the kernel crypto algorithms a LUKS header may name (cipher, chain mode,
// ESSIV hash), by the name cryptsetup gives the kernel. IV generators (plain, plain64, benbi,
// null, essiv's wrapper aside) live in dm-crypt itself. Hashes used only for PBKDF2 and the AF
// splitter are computed by cryptsetup in user space and need no module.
var cryptoOnDemand = map[string][]string{
	"aes": {"aes_generic"}, "serpent": {"serpent_generic"}, "twofish": {"twofish_generic"},
	"camellia": {"camellia_generic"}, "cast5": {"cast5_generic"}, "cast6": {"cast6_generic"},
	"blowfish": {"blowfish_generic"},
	"xts":      {"xts"}, "cbc": {"cbc"}, "ecb": {"ecb"}, "lrw": {"lrw"}, "essiv": {"essiv"},
	"sha1": {"sha1_generic"}, "sha256": {"sha256_generic"}, "sha512": {"sha512_generic"},
	"rmd160": {"rmd160"}, "wp512": {"wp512"},
}

// onDemand joins on-demand module tables (crypto, filesystems, stacks) into one.
func onDemand(tables ...map[string][]string) map[string][]string {
	out := map[string][]string{}
	for _, t := range tables {
		maps.Copy(out, t)
	}
	return out
}

// Variants are the images the builder knows, by name.
var Variants = map[string]Variant{
	"agent": {
		Name:   "agent",
		Output: "initramfs.cpio.lz4",
		Kernel: "cloud",
		Modules: append(append([]string{}, virtioModules...),
			"vsock", "vmw_vsock_virtio_transport",
			"dm-mod", "dm-crypt",
			"aes_generic", "cbc", "xts", "essiv", "sha256_generic", "sha512_generic",
			"af_alg", "algif_skcipher", "algif_hash",
			"ext4", "jbd2", "mbcache", "crc16", "crc32c_generic",
			"loop",
			// The ACPI (x86) or GPIO (arm64 virt) power button reaches PID 1 as an input event:
			// it is how `system_powerdown` asks the agent for a clean shutdown.
			"button", "evdev",
		),
		ArchModules: map[string][]string{
			"amd64": {"aesni-intel", "sha256-ssse3", "sha512-ssse3"},
			"arm64": {"aes-ce-cipher", "aes-ce-blk", "sha2-ce", "sha512-ce"},
		},
		OnDemand: onDemand(cryptoOnDemand, fsOnDemand, stackModules),
		Packages: append(append([]string{"cryptsetup-bin", "e2fsprogs", "util-linux", "libgcc-s1"}, fsPackages...), stackPackages...),
		Exclude:  append(append([]string{}, notNeeded...), stackExclude...),
		Binaries: append(append([]string{"/sbin/cryptsetup", "/sbin/blkid", "/sbin/e2fsck", "/sbin/mkfs.ext4", "/sbin/resize2fs"}, fsBinaries...), stackBinaries...),
		// glibc dlopens libgcc_s for pthread_exit/cancellation; argon2 threads abort without it.
		Libs: []string{"libgcc_s.so.1"},
		// OpenSSL 3 keeps whirlpool (an old LUKS1 hash) in its legacy provider, which
		// libcryptsetup loads when present; without it such a header "is not supported".
		Files: []string{"/etc/mke2fs.conf", "/usr/lib/{triplet}/ossl-modules/legacy.so"},
	},
	"nfsclient": {
		Name:   "nfsclient",
		Output: "initramfs-nfsclient.cpio.lz4",
		Kernel: "cloud",
		Modules: append(append([]string{}, virtioModules...),
			"nfs", "nfsv3", "sunrpc", "lockd", "grace",
		),
		Packages: []string{"busybox-static"},
		Exclude:  notNeeded,
		Binaries: []string{"/bin/busybox"},
		Symlinks: map[string]string{"/bin/sh": "busybox"},
	},
	"nfsd": {
		Name:   "nfsd",
		Output: "initramfs-nfsd.cpio.lz4",
		Kernel: "cloud",
		Modules: append(append([]string{}, virtioModules...),
			"nfsd", "sunrpc", "lockd", "grace", "dm-mod", "dm-crypt", "xts", "af_alg", "algif_skcipher", "algif_hash",
		),
		ArchModules: map[string][]string{
			"amd64": {"aesni-intel"},
			"arm64": {"aes-ce-cipher", "aes-ce-blk"},
		},
		Packages: []string{"nfs-kernel-server", "rpcbind", "busybox-static", "cryptsetup-bin", "e2fsprogs", "libgcc-s1"},
		Exclude:  notNeeded,
		Binaries: []string{
			"/usr/sbin/rpc.nfsd", "/usr/sbin/rpc.mountd", "/usr/sbin/exportfs", "/sbin/rpc.statd", "/sbin/rpcbind",
			"/bin/busybox", "/sbin/cryptsetup", "/sbin/mkfs.ext4",
		},
		Libs: []string{"libgcc_s.so.1"},
		// libtirpc reads /etc/netconfig; rpcbind and mountd look up services and protocols.
		Files:    []string{"/etc/mke2fs.conf", "/etc/netconfig", "/etc/services", "/etc/protocols"},
		Symlinks: map[string]string{"/bin/sh": "busybox"},
	},
}

// VariantNames lists the known variants, sorted.
func VariantNames() []string {
	var n []string
	for k := range Variants {
		n = append(n, k)
	}
	sort.Strings(n)
	return n
}

// Modules returns the module names variant v loads on arch.
func (v Variant) ModulesFor(arch string) []string {
	return append(append([]string{}, v.Modules...), v.ArchModules[arch]...)
}

// KernelMeta is the kernel metapackage for arch.
func (v Variant) KernelMeta(arch string) string { return "linux-image-" + v.Kernel + "-" + arch }

// archInfo is what the builder needs to know per Debian architecture.
type archInfo struct {
	machine elf.Machine
	triplet string
}

var arches = map[string]archInfo{
	"amd64": {elf.EM_X86_64, "x86_64-linux-gnu"},
	"arm64": {elf.EM_AARCH64, "aarch64-linux-gnu"},
}

// Arches lists the supported image architectures.
func Arches() []string { return []string{"amd64", "arm64"} }

func lookupArch(arch string) (archInfo, error) {
	a, ok := arches[arch]
	if !ok {
		return archInfo{}, fmt.Errorf("unsupported architecture %q (want amd64 or arm64)", arch)
	}
	return a, nil
}

// libDirs is ld.so's default search path for a Debian multiarch system.
func (a archInfo) libDirs() []string {
	return []string{"/lib/" + a.triplet, "/usr/lib/" + a.triplet, "/lib", "/usr/lib"}
}
