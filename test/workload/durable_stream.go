//go:build linux || darwin

package workload

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// DurableRecord is one file the durable stream made durable: its final content's sha256 and
// permission bits, after a truncate and a chmod whose replies must mean on disk.
type DurableRecord struct {
	Path   string // relative to the tested root
	SHA256 string
	Mode   os.FileMode
}

// String is the record as one line: "path sha256hex mode-octal".
func (d DurableRecord) String() string {
	return fmt.Sprintf("%s %s %o", d.Path, d.SHA256, uint32(d.Mode))
}

// ParseDurableRecord reads a line written by DurableRecord.String.
func ParseDurableRecord(line string) (DurableRecord, error) {
	f := strings.Fields(line)
	if len(f) != 3 {
		return DurableRecord{}, fmt.Errorf("durable record %q: want \"path sha256 mode\"", line)
	}
	m, err := strconv.ParseUint(f[2], 8, 32)
	if err != nil {
		return DurableRecord{}, fmt.Errorf("durable record %q: bad mode: %w", line, err)
	}
	return DurableRecord{Path: f[0], SHA256: f[1], Mode: os.FileMode(m)}, nil
}

// durableModes are what the stream chmods its files to: each differs from the 0644 they are
// created with.
var durableModes = []os.FileMode{0o600, 0o640, 0o604, 0o660, 0o755}

// WriteDurable writes n files of size random bytes into root/dir one after another, reporting each
// as soon as it is durable; crash tests kill the server mid-stream and check every reported file.
// Each file is saved the safe way (write a temporary name, fsync, rename, fsync the directory),
// then truncated to a random shorter length and chmodded, without any further fsync: NFSv3 gives
// a client no way to commit attributes, so a SETATTR's reply must mean the change is on disk.
func WriteDurable(root, dir string, n, size int, seed int64, report func(DurableRecord)) error {
	full := filepath.Join(root, dir)
	if err := os.MkdirAll(full, 0o755); err != nil {
		return err
	}
	d, err := os.Open(full)
	if err != nil {
		return err
	}
	defer d.Close()
	rng := rand.New(rand.NewPCG(uint64(seed), uint64(seed)^0x5eed))
	buf := make([]byte, size)
	for i := 0; i < n; i++ {
		for j := range buf {
			buf[j] = byte(rng.Uint32())
		}
		name := fmt.Sprintf("d%05d.bin", i)
		p := filepath.Join(full, name)
		tmp := filepath.Join(full, "."+name+".tmp")
		if err := writeInChunks(tmp, buf); err != nil {
			return err
		}
		if err := os.Rename(tmp, p); err != nil {
			return err
		}
		if err := d.Sync(); err != nil {
			return err
		}
		keep := 1 + rng.IntN(size-1)
		if err := os.Truncate(p, int64(keep)); err != nil {
			return err
		}
		mode := durableModes[i%len(durableModes)]
		if err := os.Chmod(p, mode); err != nil {
			return err
		}
		sum := sha256.Sum256(buf[:keep])
		report(DurableRecord{Path: filepath.Join(dir, name), SHA256: hex.EncodeToString(sum[:]), Mode: mode})
	}
	return nil
}

// writeInChunks writes data in several 16 KiB writes, so the client has unstable data in flight
// when the server dies, and fsyncs it.
func writeInChunks(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	for off := 0; off < len(data); off += 16 << 10 {
		if _, err := f.Write(data[off:min(off+16<<10, len(data))]); err != nil {
			f.Close()
			return err
		}
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
