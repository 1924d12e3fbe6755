// Package timelog writes a session's log: a readable timeline of host steps and guest events, each
// with its duration, for users to read with `luksmount log`.
//
// A line looks like
//
//	12:03:04.512   +2.31s  host   boot VM                   2.29s  qemu pid 4242, tcg, 512 MiB
//
// wall-clock time, time since the session began, who did it, the step, how long it took, details.
// Sessions are appended to one file per target, each starting with a "=== " header line.
package timelog

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/luksmount/luksmount/pkg/control"
)

// HeaderPrefix starts the first line of each session.
const HeaderPrefix = "=== "

// maxSize is when Open rotates the file to <name>.old before appending.
const maxSize = 1 << 20

// Source says who performed a step.
type Source string

// Sources.
const (
	Host  Source = "host"
	Guest Source = "guest"
)

// Log is a session timeline. Methods are safe for concurrent use; write errors are ignored (a
// full disk must not stop an unmount).
type Log struct {
	mu    sync.Mutex
	w     io.Writer
	c     io.Closer
	begin time.Time
	now   func() time.Time
	tee   io.Writer
}

// New writes the timeline to w.
func New(w io.Writer) *Log {
	return &Log{w: w, now: time.Now}
}

// Open appends to the log file at path (0600; its directory 0700), rotating it when large. If uid
// is >= 0 the file and directory are chowned to uid:gid (the invoking user under sudo).
func Open(path string, uid, gid int) (*Log, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("cannot create log directory %s: %w", dir, err)
	}
	if st, err := os.Stat(path); err == nil && st.Size() > maxSize {
		_ = os.Rename(path, path+".old")
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("cannot open log %s: %w", path, err)
	}
	if uid >= 0 {
		_ = os.Chown(dir, uid, gid)
		_ = f.Chown(uid, gid)
	}
	l := New(f)
	l.c = f
	return l, nil
}

// Tee also copies every line to w (--foreground streams the log to the terminal).
func (l *Log) Tee(w io.Writer) {
	l.mu.Lock()
	l.tee = w
	l.mu.Unlock()
}

// Close closes the underlying file, if Open made it.
func (l *Log) Close() error {
	if l.c == nil {
		return nil
	}
	return l.c.Close()
}

// Begin writes a session header and restarts the elapsed clock.
func (l *Log) Begin(format string, args ...any) {
	l.mu.Lock()
	l.begin = l.now()
	l.mu.Unlock()
	l.write(HeaderPrefix + l.begin.Format("2006-01-02 15:04:05 MST") + " " + oneLine(fmt.Sprintf(format, args...)))
}

// Since is the time elapsed since Begin.
func (l *Log) Since() time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.now().Sub(l.begin)
}

// Note records a line that is not a timed step.
func (l *Log) Note(src Source, format string, args ...any) {
	l.line(src, "", "", fmt.Sprintf(format, args...))
}

// Timer measures one host step; Done writes it.
type Timer struct {
	l     *Log
	step  string
	start time.Time
}

// Start begins timing a host step.
func (l *Log) Start(step string) *Timer {
	return &Timer{l: l, step: step, start: l.now()}
}

// Elapsed is how long the step has run.
func (t *Timer) Elapsed() time.Duration { return t.l.now().Sub(t.start) }

// Done records the step; a non-nil err is recorded as its failure. It returns err.
func (t *Timer) Done(err error, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	if err != nil {
		if msg != "" {
			msg += ": "
		}
		msg += "FAILED: " + err.Error()
	}
	t.l.line(Host, t.step, formatDuration(t.Elapsed()), msg)
	return err
}

// Guest records an agent event. Guest times are seconds since the guest kernel started; they are
// kept in the message so boot steps can be read against each other.
func (l *Log) Guest(ev control.Event) {
	var msg string
	switch {
	case ev.Level != "" && ev.Level != "info":
		msg = strings.ToUpper(ev.Level) + ": " + ev.Message
	default:
		msg = ev.Message
	}
	msg = strings.TrimSpace(fmt.Sprintf("[t=%.2fs] %s", ev.Time, msg))
	dur := ""
	if ev.Kind == control.EventStep {
		dur = formatDuration(time.Duration(ev.Duration * float64(time.Second)))
	}
	l.line(Guest, ev.Step, dur, msg)
}

func (l *Log) line(src Source, step, dur, msg string) {
	l.mu.Lock()
	now := l.now()
	if l.begin.IsZero() {
		l.begin = now
	}
	el := now.Sub(l.begin)
	l.mu.Unlock()
	l.write(FormatLine(now, el, src, step, dur, msg))
}

// FormatLine renders one timeline line.
func FormatLine(at time.Time, elapsed time.Duration, src Source, step, dur, msg string) string {
	s := fmt.Sprintf("%s %8s  %-5s  %-22s %7s  %s", at.Format("15:04:05.000"), "+"+formatDuration(elapsed),
		src, oneLine(step), dur, oneLine(msg))
	return strings.TrimRight(s, " ")
}

func (l *Log) write(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	io.WriteString(l.w, s+"\n")
	if l.tee != nil {
		io.WriteString(l.tee, s+"\n")
	}
}

// formatDuration rounds to what a person reads: 12ms, 1.52s, 2m03s.
func formatDuration(d time.Duration) string {
	switch {
	case d < 0:
		d = 0
		fallthrough
	case d < time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	case d < time.Minute:
		return fmt.Sprintf("%.2fs", d.Seconds())
	default:
		d = d.Round(time.Second)
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	}
}

// FormatDuration is the log's duration format, for progress lines on the terminal.
func FormatDuration(d time.Duration) string { return formatDuration(d) }

// oneLine keeps a log line a line: tool output with newlines is joined with " | ".
func oneLine(s string) string {
	s = strings.TrimSpace(s)
	if !strings.ContainsAny(s, "\r\n") {
		return s
	}
	parts := strings.FieldsFunc(s, func(r rune) bool { return r == '\n' || r == '\r' })
	return strings.Join(parts, " | ")
}

// LastSession returns the last session in a log: from its last header line to the end.
func LastSession(data []byte) []byte {
	i := bytes.LastIndex(data, []byte("\n"+HeaderPrefix))
	switch {
	case i >= 0:
		return data[i+1:]
	default:
		return data
	}
}

// Follow copies r to w as it grows, from offset, until stop returns true (checked after each
// quiet interval); then copies what is left and returns.
func Follow(r io.ReaderAt, offset int64, w io.Writer, interval time.Duration, stop func() bool) error {
	buf := make([]byte, 32<<10)
	bw := bufio.NewWriter(w)
	for {
		n, err := r.ReadAt(buf, offset)
		if n > 0 {
			offset += int64(n)
			bw.Write(buf[:n])
			continue
		}
		if err != nil && err != io.EOF {
			return err
		}
		if err := bw.Flush(); err != nil {
			return err
		}
		if stop() {
			// One last read: lines written just before stop.
			for {
				n, _ := r.ReadAt(buf, offset)
				if n <= 0 {
					return bw.Flush()
				}
				offset += int64(n)
				bw.Write(buf[:n])
			}
		}
		time.Sleep(interval)
	}
}
