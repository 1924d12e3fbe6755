package command

import (
	"strings"
	"sync"
)

// lineWriter hands complete lines to fn; stdout and stderr share one, so it locks.
type lineWriter struct {
	mu  sync.Mutex
	fn  func(string)
	buf []byte
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, c := range p {
		if c == '\n' || c == '\r' || c == '\b' {
			w.emit()
			continue
		}
		if len(w.buf) < 4096 {
			w.buf = append(w.buf, c)
		}
	}
	return len(p), nil
}

func (w *lineWriter) emit() {
	if s := strings.TrimSpace(string(w.buf)); s != "" {
		w.fn(s)
	}
	w.buf = w.buf[:0]
}

func (w *lineWriter) flush() {
	w.mu.Lock()
	w.emit()
	w.mu.Unlock()
}
