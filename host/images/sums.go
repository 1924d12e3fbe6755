package images

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// VerifySums checks that dir's SHA256SUMS lists the kernel and the initramfs and that both
// match it. The error names the file that does not.
func VerifySums(dir string) error {
	data, err := os.ReadFile(filepath.Join(dir, SumsName))
	if err != nil {
		return fmt.Errorf("guest images in %s have no %s (%v)", dir, SumsName, err)
	}
	want, err := ParseSums(data)
	if err != nil {
		return fmt.Errorf("%s: %w", filepath.Join(dir, SumsName), err)
	}
	for _, n := range []string{KernelName, InitrdName} {
		w, ok := want[n]
		if !ok {
			return fmt.Errorf("%s does not list %s", filepath.Join(dir, SumsName), n)
		}
		got, err := fileSum(filepath.Join(dir, n))
		if err != nil {
			return fmt.Errorf("cannot read guest image %s: %v", filepath.Join(dir, n), err)
		}
		if got != w {
			return fmt.Errorf("guest image %s is damaged: sha256 %s, %s says %s", filepath.Join(dir, n), got[:12], SumsName, w[:12])
		}
	}
	return nil
}

// ParseSums reads sha256sum output ("<hex>  <name>" per line, '*' for binary mode allowed).
func ParseSums(data []byte) (map[string]string, error) {
	out := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		sum, name, ok := strings.Cut(line, " ")
		name = strings.TrimPrefix(strings.TrimLeft(name, " "), "*")
		if b, err := hex.DecodeString(sum); !ok || err != nil || len(b) != sha256.Size || name == "" {
			return nil, fmt.Errorf("line %d is not \"<sha256>  <file>\"", n)
		}
		out[name] = strings.ToLower(sum)
	}
	return out, sc.Err()
}

func fileSum(name string) (string, error) {
	f, err := os.Open(name)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
