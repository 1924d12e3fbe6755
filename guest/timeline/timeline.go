// Package timeline records what the agent did and when, in seconds since the guest kernel started
// (CLOCK_BOOTTIME), so the host can show the user where boot and unlock time went.
package timeline

import (
	"fmt"
	"sync"

	"github.com/luksmount/luksmount/pkg/control"
)

// Clock returns seconds since the kernel started.
type Clock func() float64

// Recorder keeps every step and log line and passes each to its sinks as it happens.
// A step's Time is when it started; Time+Duration is when it ended.
type Recorder struct {
	now Clock

	mu     sync.Mutex
	events []control.Event
	sinks  []func(control.Event)
}

// New returns a Recorder reading time from now (nil = CLOCK_BOOTTIME).
func New(now Clock) *Recorder {
	if now == nil {
		now = BootTime
	}
	return &Recorder{now: now}
}

// Now returns the current time on the recorder's clock.
func (r *Recorder) Now() float64 { return r.now() }

// AddSink makes every later event reach fn too (the console, the control server's Broadcast).
// fn must not block.
func (r *Recorder) AddSink(fn func(control.Event)) {
	r.mu.Lock()
	r.sinks = append(r.sinks, fn)
	r.mu.Unlock()
}

func (r *Recorder) emit(ev control.Event, keep bool) {
	r.mu.Lock()
	if keep {
		r.events = append(r.events, ev)
	}
	sinks := append([]func(control.Event){}, r.sinks...)
	r.mu.Unlock()
	for _, s := range sinks {
		s(ev)
	}
}

// Step records a finished step that started at start (a value from Now).
func (r *Recorder) Step(name string, start float64, format string, args ...any) control.Event {
	end := r.now()
	ev := control.Event{Kind: control.EventStep, Time: round(start), Step: name, Duration: round(end - start),
		Level: "info", Message: fmt.Sprintf(format, args...)}
	r.emit(ev, true)
	return ev
}

// StepAt records a step whose start and end were measured elsewhere (e.g. kernel boot).
func (r *Recorder) StepAt(name string, start, end float64, msg string) control.Event {
	ev := control.Event{Kind: control.EventStep, Time: round(start), Step: name, Duration: round(end - start),
		Level: "info", Message: msg}
	r.emit(ev, true)
	return ev
}

// Progress tells the host a long step is under way; it is not kept in the timeline.
func (r *Recorder) Progress(step, format string, args ...any) {
	r.emit(control.Event{Kind: control.EventProgress, Time: round(r.now()), Step: step, Level: "info",
		Message: fmt.Sprintf(format, args...)}, false)
}

// Logf records a log line at level (info, warn, error). Never pass secrets.
func (r *Recorder) Logf(level, format string, args ...any) {
	r.emit(control.Event{Kind: control.EventLog, Time: round(r.now()), Level: level,
		Message: fmt.Sprintf(format, args...)}, level != "debug")
}

// Events returns a copy of the recorded steps and log lines.
func (r *Recorder) Events() []control.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]control.Event(nil), r.events...)
}

// Steps returns only the recorded steps.
func (r *Recorder) Steps() []control.Event {
	var out []control.Event
	for _, ev := range r.Events() {
		if ev.Kind == control.EventStep {
			out = append(out, ev)
		}
	}
	return out
}

// Format renders ev as one console line: "[  2.310] modules: 24 loaded (0.352s)".
func Format(ev control.Event) string {
	switch ev.Kind {
	case control.EventStep:
		return fmt.Sprintf("[%8.3f] %s: %s (%.3fs)", ev.Time, ev.Step, ev.Message, ev.Duration)
	case control.EventProgress:
		return fmt.Sprintf("[%8.3f] %s: %s", ev.Time, ev.Step, ev.Message)
	default:
		if ev.Level != "" && ev.Level != "info" {
			return fmt.Sprintf("[%8.3f] %s: %s", ev.Time, ev.Level, ev.Message)
		}
		return fmt.Sprintf("[%8.3f] %s", ev.Time, ev.Message)
	}
}

// round keeps millisecond precision so JSON stays short.
func round(s float64) float64 {
	return float64(int64(s*1000+0.5)) / 1000
}
