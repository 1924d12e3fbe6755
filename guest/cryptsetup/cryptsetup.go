// Package cryptsetup drives the real cryptsetup binary: argument building, feeding the secret on
// stdin, mapping exit codes and messages to typed control errors, and reading keyslot KDF costs
// from luksDump.
package cryptsetup

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"

	"github.com/luksmount/luksmount/guest/command"
	"github.com/luksmount/luksmount/pkg/control"
	"github.com/luksmount/luksmount/pkg/luksheader"
)

// MapperName is the dm-crypt mapping the agent opens; the plaintext device is /dev/mapper/MapperName.
const MapperName = "luksmount"

// MapperPath is the plaintext device of the open mapping.
const MapperPath = "/dev/mapper/" + MapperName

// Env is added to every cryptsetup run: there is no udev in the guest to wait for.
var Env = []string{"DM_DISABLE_UDEV=1"}

// OpenArgs builds `cryptsetup open`; the secret is read from stdin to EOF (--key-file=-), so no
// newline is added or stripped.
func OpenArgs(dev string, readOnly bool) []string {
	return OpenArgsFor(dev, OpenOptions{ReadOnly: readOnly})
}

// CloseArgs builds `cryptsetup close`.
func CloseArgs() []string { return []string{"close", MapperName} }

// DumpArgs builds `cryptsetup luksDump`.
func DumpArgs(dev string) []string { return []string{"luksDump", dev} }

// FormatArgs builds `cryptsetup luksFormat` from a validated request.
func FormatArgs(dev string, req control.FormatRequest) ([]string, error) {
	typ := req.Type
	if typ != "luks1" && typ != "luks2" {
		return nil, control.Errorf(control.CodeInvalidArgument, "unknown LUKS type %q: use luks2 or luks1", req.Type)
	}
	args := []string{"luksFormat", "--type", typ, "--batch-mode", "--key-file=-"}
	switch req.PBKDF {
	case "":
	case "argon2id", "argon2i":
		if typ == "luks1" {
			return nil, control.Errorf(control.CodeInvalidArgument, "LUKS1 only supports pbkdf2, not %s", req.PBKDF)
		}
		args = append(args, "--pbkdf", req.PBKDF)
	case "pbkdf2":
		args = append(args, "--pbkdf", req.PBKDF)
	default:
		return nil, control.Errorf(control.CodeInvalidArgument, "unknown PBKDF %q: use argon2id, argon2i or pbkdf2", req.PBKDF)
	}
	if req.PBKDFMemoryKiB < 0 || req.IterTimeMS < 0 || req.PBKDFForceIterations < 0 {
		return nil, control.Errorf(control.CodeInvalidArgument, "KDF settings must not be negative")
	}
	if req.PBKDFMemoryKiB > 0 {
		if typ == "luks1" || req.PBKDF == "pbkdf2" {
			return nil, control.Errorf(control.CodeInvalidArgument, "a memory cost only applies to argon2")
		}
		args = append(args, "--pbkdf-memory", strconv.Itoa(req.PBKDFMemoryKiB))
	}
	if req.IterTimeMS > 0 {
		args = append(args, "--iter-time", strconv.Itoa(req.IterTimeMS))
	}
	if req.PBKDFForceIterations > 0 {
		args = append(args, "--pbkdf-force-iterations", strconv.Itoa(req.PBKDFForceIterations))
	}
	if req.Cipher != "" {
		if err := luksheader.CheckCipher(req.Cipher); err != nil {
			return nil, control.Errorf(control.CodeInvalidArgument, "cannot use cipher %q: luksmount's guest supports aes, serpent, twofish, camellia, cast5, cast6 and blowfish in xts, cbc, ecb or lrw modes (for example serpent-xts-plain64)", req.Cipher)
		}
		args = append(args, "--cipher", req.Cipher)
	}
	if req.KeySizeBits < 0 || req.KeySizeBits%8 != 0 || req.KeySizeBits > 4096 {
		return nil, control.Errorf(control.CodeInvalidArgument, "key size %d bits must be a positive multiple of 8", req.KeySizeBits)
	}
	if req.KeySizeBits > 0 {
		args = append(args, "--key-size", strconv.Itoa(req.KeySizeBits))
	}
	if req.Hash != "" {
		if err := luksheader.CheckHash(req.Hash); err != nil {
			return nil, control.Errorf(control.CodeInvalidArgument, "cannot use hash %q: use sha256, sha512, sha1, ripemd160 or whirlpool", req.Hash)
		}
		args = append(args, "--hash", req.Hash)
	}
	if req.Label != "" && typ == "luks2" {
		if err := checkLabel(req.Label); err != nil {
			return nil, err
		}
		args = append(args, "--label", req.Label)
	}
	return append(args, dev), nil
}

func checkLabel(l string) error {
	if len(l) > 47 || strings.ContainsAny(l, "\x00\n") {
		return control.Errorf(control.CodeInvalidArgument, "label %q is too long or has control characters (LUKS2 allows 47 bytes)", l)
	}
	return nil
}

// Tool runs cryptsetup through a command.Runner.
type Tool struct {
	Run command.Runner
	// Memory, if set, is asked after an out-of-memory failure how much the keyslot needs and the
	// VM has (dev "" = only the VM's memory).
	Memory func(ctx context.Context, dev string) Memory
}

func (t *Tool) memory(ctx context.Context, r command.Result, dev string) Memory {
	if t.Memory == nil || !isOOM(r) {
		return Memory{}
	}
	return t.Memory(ctx, dev)
}

func isOOM(r command.Result) bool {
	low := strings.ToLower(r.Stderr)
	return r.ExitCode == exitNoMem || r.Signal == "killed" ||
		strings.Contains(low, "not enough available memory") || strings.Contains(low, "cannot allocate memory")
}

func (t *Tool) run(ctx context.Context, args []string, stdin []byte) (command.Result, error) {
	return t.Run.Run(ctx, command.Cmd{Name: "cryptsetup", Args: args, Env: Env, Stdin: stdin})
}

// Memory is what the OOM message reports.
type Memory struct {
	NeedKiB int64 // the keyslot KDF's memory cost (0 = unknown)
	HaveKiB int64 // the VM's MemTotal
}

// Open unlocks dev as MapperPath. secret is passed on stdin and stays the caller's to wipe.
// hasMagic says whether dev carries a LUKS magic: cryptsetup reports "not a valid LUKS device"
// both for plain data and for a damaged header.
func (t *Tool) Open(ctx context.Context, dev string, readOnly bool, secret []byte, hasMagic bool) error {
	return t.OpenWith(ctx, dev, OpenOptions{ReadOnly: readOnly}, secret, hasMagic)
}

// OpenWith is Open with every option.
func (t *Tool) OpenWith(ctx context.Context, dev string, o OpenOptions, secret []byte, hasMagic bool) error {
	if len(secret) == 0 {
		return control.Errorf(control.CodeInvalidArgument, "empty passphrase: nothing to unlock %s with", dev)
	}
	r, err := t.run(ctx, OpenArgsFor(dev, o), secret)
	if err != nil {
		return control.Errorf(control.CodeInternal, "cannot run cryptsetup: %v", err)
	}
	return Classify("unlock "+dev, r, hasMagic, t.memory(ctx, r, dev))
}

// Close closes the mapping.
func (t *Tool) Close(ctx context.Context) error {
	r, err := t.run(ctx, CloseArgs(), nil)
	if err != nil {
		return control.Errorf(control.CodeInternal, "cannot run cryptsetup: %v", err)
	}
	return Classify("close "+MapperName, r, true, Memory{})
}

// Format runs luksFormat on dev with secret as the first passphrase.
func (t *Tool) Format(ctx context.Context, dev string, req control.FormatRequest, secret []byte) error {
	args, err := FormatArgs(dev, req)
	if err != nil {
		return err
	}
	if len(secret) == 0 {
		return control.Errorf(control.CodeInvalidArgument, "empty passphrase: refusing to format %s", dev)
	}
	r, err := t.run(ctx, args, secret)
	if err != nil {
		return control.Errorf(control.CodeInternal, "cannot run cryptsetup: %v", err)
	}
	mem := t.memory(ctx, r, "")
	mem.NeedKiB = int64(req.PBKDFMemoryKiB)
	return Classify("format "+dev, r, true, mem)
}

// Dump reads dev's LUKS header through luksDump.
func (t *Tool) Dump(ctx context.Context, dev string, hasMagic bool) (*control.LUKSInfo, error) {
	r, err := t.run(ctx, DumpArgs(dev), nil)
	if err != nil {
		return nil, control.Errorf(control.CodeInternal, "cannot run cryptsetup: %v", err)
	}
	if err := Classify("read the LUKS header of "+dev, r, hasMagic, Memory{}); err != nil {
		return nil, err
	}
	return ParseDump(strings.NewReader(r.Stdout))
}

// Exit codes documented in cryptsetup(8).
const (
	exitWrongParams = 1
	exitNoPerm      = 2 // wrong passphrase
	exitNoMem       = 3
	exitWrongDevice = 4
	exitBusy        = 5
)

// Classify turns a cryptsetup result into nil or a typed error for the host. what names the action
// ("unlock /dev/vda").
func Classify(what string, r command.Result, hasMagic bool, mem Memory) error {
	if r.ExitCode == 0 && r.Signal == "" {
		return nil
	}
	msg := lastLine(r.Stderr)
	detail := strings.TrimSpace(r.Stderr)
	low := strings.ToLower(r.Stderr)
	e := func(code control.Code, format string, args ...any) error {
		ce := control.Errorf(code, format, args...)
		ce.Detail = detail
		return ce
	}
	switch {
	case strings.Contains(low, "no key available with this passphrase") || r.ExitCode == exitNoPerm:
		return e(control.CodeWrongPassphrase, "cannot %s: no key slot opened with this passphrase; check it and try again", what)
	case isOOM(r):
		return e(control.CodeOutOfMemory, "cannot %s: %s", what, memoryAdvice(mem))
	case strings.Contains(low, "input/output error") || strings.Contains(low, "i/o error"):
		return e(control.CodeIOError, "cannot %s: the disk returned I/O errors (%s); copy its data off with ddrescue", what, msg)
	case unsupportedAlgorithm(r.Stderr) != "":
		// The guest lacks it; the header is fine. Never send the user to luksHeaderRestore.
		return e(control.CodeUnsupportedCrypto, "cannot %s: this drive uses %s, which luksmount's guest cannot open yet; nothing was changed", what, unsupportedAlgorithm(r.Stderr))
	case strings.Contains(low, "is not a valid luks device") || strings.Contains(low, "checksum error") ||
		strings.Contains(low, "requirements"):
		if !hasMagic {
			return e(control.CodeNotEncrypted, "cannot %s: it is not a LUKS device (no LUKS header); mount it without unlocking", what)
		}
		return e(control.CodeCorruptHeader, "cannot %s: its LUKS header is damaged (%s); restore a header backup with `cryptsetup luksHeaderRestore`", what, msg)
	case strings.Contains(low, "already exists") || strings.Contains(low, "in use") || strings.Contains(low, "busy") ||
		r.ExitCode == exitBusy:
		return e(control.CodeDeviceBusy, "cannot %s: the device or mapping is busy (%s)", what, msg)
	case strings.Contains(low, "doesn't exist or access denied") || strings.Contains(low, "does not exist") ||
		r.ExitCode == exitWrongDevice:
		return e(control.CodeNotFound, "cannot %s: no such device (%s)", what, msg)
	case r.Signal != "":
		return e(control.CodeInternal, "cannot %s: cryptsetup was killed by %s", what, r.Signal)
	default:
		return e(control.CodeInternal, "cannot %s: cryptsetup exited with %d: %s", what, r.ExitCode, msg)
	}
}

// cryptsetup's messages for what its crypto backend or the kernel lacks (lib/setup.c,
// lib/luks1/keymanage.c, lib/utils_crypt.c in cryptsetup 2.6).
var unsupportedRes = []*regexp.Regexp{
	regexp.MustCompile(`(?i)check that kernel supports (\S+) cipher`),
	regexp.MustCompile(`(?i)requested luks hash (\S+) is not supported`),
	regexp.MustCompile(`(?i)requested (?:hash|cipher) (\S+) is not supported`),
	regexp.MustCompile(`(?i)(unsupported luks version \d+)`),
	regexp.MustCompile(`(?i)(?:pbkdf|kdf) (\S+) (?:is )?not (?:supported|available)`),
}

// unsupportedAlgorithm names the algorithm stderr says is missing ("twofish-xts-plain64",
// "the hash whirlpool"), or "".
func unsupportedAlgorithm(stderr string) string {
	for i, re := range unsupportedRes {
		if m := re.FindStringSubmatch(stderr); m != nil {
			name := strings.TrimSuffix(m[1], ".")
			switch i {
			case 0:
				return "the cipher " + name
			case 1:
				return "the hash " + name
			}
			return name
		}
	}
	return ""
}

func memoryAdvice(m Memory) string {
	switch {
	case m.NeedKiB > 0 && m.HaveKiB > 0:
		return fmt.Sprintf("the key slot's KDF needs %s of memory but the VM has %s; give the VM at least %d MiB of memory",
			mib(m.NeedKiB), mib(m.HaveKiB), (m.NeedKiB+m.NeedKiB/2)/1024+128)
	case m.HaveKiB > 0:
		return fmt.Sprintf("not enough memory for the key derivation (the VM has %s); start the VM with more memory", mib(m.HaveKiB))
	default:
		return "not enough memory for the key derivation; start the VM with more memory"
	}
}

func mib(kib int64) string { return fmt.Sprintf("%d MiB", kib/1024) }

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if l := strings.TrimSpace(lines[i]); l != "" {
			return strings.TrimSuffix(l, ".")
		}
	}
	return "no message"
}

// ParseDump reads `cryptsetup luksDump` text output (LUKS1 and LUKS2).
func ParseDump(r io.Reader) (*control.LUKSInfo, error) {
	info := &control.LUKSInfo{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	section := ""
	var slotKDF string
	var slotMem int64
	endSlot := func() {
		if slotKDF != "" && (info.KDF == "" || slotMem > info.MaxMemoryKiB) {
			info.KDF, info.MaxMemoryKiB = slotKDF, slotMem
		}
		slotKDF, slotMem = "", 0
	}
	for sc.Scan() {
		line := sc.Text()
		trim := strings.TrimSpace(line)
		key, val, hasColon := strings.Cut(trim, ":")
		val = strings.TrimSpace(val)
		switch {
		case key == "Version" && section == "":
			v, err := strconv.Atoi(val)
			if err != nil {
				return nil, control.Errorf(control.CodeCorruptHeader, "luksDump reports version %q", val)
			}
			info.Version = v
		case !strings.HasPrefix(line, " ") && !strings.HasPrefix(line, "\t") && hasColon && val == "" && !strings.HasPrefix(trim, "Key Slot"):
			endSlot()
			section = key // LUKS2 "Keyslots", "Tokens", "Digests", "Data segments"
		case strings.HasPrefix(trim, "Key Slot ") && strings.HasSuffix(trim, "ENABLED"): // LUKS1
			endSlot()
			info.Keyslots++
			slotKDF = "pbkdf2"
		case section == "Keyslots" && isSlotHeader(line):
			endSlot()
			info.Keyslots++
			slotKDF = "pbkdf2" // overwritten by the PBKDF line
		case section == "Keyslots" && key == "PBKDF":
			slotKDF = val
		case section == "Keyslots" && key == "Memory":
			n, _ := strconv.ParseInt(val, 10, 64)
			slotMem = n
		}
	}
	endSlot()
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("cannot read luksDump output: %w", err)
	}
	if info.Version != 1 && info.Version != 2 {
		return nil, control.Errorf(control.CodeCorruptHeader, "luksDump output has no LUKS version")
	}
	return info, nil
}

// isSlotHeader matches LUKS2 "  0: luks2".
func isSlotHeader(line string) bool {
	if !strings.HasPrefix(line, "  ") || strings.HasPrefix(line, "   ") {
		return false
	}
	n, _, ok := strings.Cut(strings.TrimSpace(line), ":")
	if !ok {
		return false
	}
	_, err := strconv.Atoi(n)
	return err == nil
}

var (
	luksMagic = []byte{'L', 'U', 'K', 'S', 0xba, 0xbe}
	luks2Alt  = []byte{'S', 'K', 'U', 'L', 0xba, 0xbe}
)

// HasMagic reports whether r starts with a LUKS magic, or has a LUKS2 secondary header at one of
// its standard offsets (the primary may be the damaged part).
func HasMagic(r io.ReaderAt) bool {
	buf := make([]byte, 6)
	if n, _ := r.ReadAt(buf, 0); n == 6 && bytes.Equal(buf, luksMagic) {
		return true
	}
	for off := int64(16 << 10); off <= 4<<20; off *= 2 {
		if n, _ := r.ReadAt(buf, off); n == 6 && bytes.Equal(buf, luks2Alt) {
			return true
		}
	}
	return false
}
