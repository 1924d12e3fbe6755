package command

import (
	"context"
	"sort"
	"strings"
	"testing"
)

func TestLineWriterSplitsProgressRedraws(t *testing.T) {
	var got []string
	w := &lineWriter{fn: func(s string) { got = append(got, s) }}
	w.Write([]byte("Pass 1: Checking inodes\n\x01img: |==   |  2.8%   \r\x02\x01   \r"))
	w.Write([]byte("Writing inode tables:  0/25\b\b\b\b\b     \b\b\b\b\b1/25\b\b\b\b\bdone"))
	w.flush()
	want := "Pass 1: Checking inodes|\x01img: |==   |  2.8%|\x02\x01|Writing inode tables:  0/25|1/25|done"
	if strings.Join(got, "|") != want {
		t.Fatalf("lines %q", got)
	}
}

func TestExecStreamsOutput(t *testing.T) {
	var lines []string
	r, err := (&Exec{}).Run(context.Background(), Cmd{Name: "/bin/sh", Args: []string{"-c", "printf 'a\\rb\\n'; printf 'c\\n' >&2"},
		Output: func(s string) { lines = append(lines, s) }})
	if err != nil || r.ExitCode != 0 {
		t.Fatal(r, err)
	}
	sort.Strings(lines) // stdout and stderr are copied concurrently
	if strings.Join(lines, ",") != "a,b,c" || r.Stdout != "a\rb\n" || r.Stderr != "c\n" {
		t.Fatalf("lines %q, stdout %q, stderr %q", lines, r.Stdout, r.Stderr)
	}
}
