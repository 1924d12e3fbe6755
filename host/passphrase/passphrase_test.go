package passphrase

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadLineSequence(t *testing.T) {
	in := strings.NewReader("first\nsecond\r\n\nlast")
	want := []string{"first", "second", "", "last"}
	for _, w := range want {
		got, err := ReadLine(in)
		if err != nil {
			t.Fatalf("ReadLine: %v", err)
		}
		if string(got) != w {
			t.Fatalf("got %q, want %q", got, w)
		}
	}
	if _, err := ReadLine(in); !errors.Is(err, ErrNoInput) {
		t.Fatalf("after the last line: got %v, want ErrNoInput", err)
	}
}

// oneByteReader fails the test if ReadLine asks for more than the line: the rest of stdin
// belongs to later retries.
type countingReader struct {
	r     io.Reader
	reads int
}

func (c *countingReader) Read(p []byte) (int, error) {
	c.reads++
	if len(p) != 1 {
		return 0, errors.New("read more than one byte")
	}
	return c.r.Read(p)
}

func TestReadLineConsumesOnlyOneLine(t *testing.T) {
	cr := &countingReader{r: strings.NewReader("abc\nrest")}
	if _, err := ReadLine(cr); err != nil {
		t.Fatal(err)
	}
	if cr.reads != 4 {
		t.Fatalf("read %d bytes, want 4", cr.reads)
	}
}

func TestReadLineTooLong(t *testing.T) {
	in := strings.NewReader(strings.Repeat("x", MaxLen+1) + "\n")
	if _, err := ReadLine(in); !errors.Is(err, ErrTooLong) {
		t.Fatalf("got %v, want ErrTooLong", err)
	}
	exact := strings.Repeat("y", MaxLen)
	got, err := ReadLine(strings.NewReader(exact + "\r\n"))
	if err != nil || string(got) != exact {
		t.Fatalf("MaxLen bytes: got %d bytes, %v", len(got), err)
	}
}

func TestAppendWipingZeroesOldArray(t *testing.T) {
	buf := make([]byte, 0, 2)
	buf = appendWiping(buf, 's')
	buf = appendWiping(buf, 'e')
	old := buf[:cap(buf)]
	buf = appendWiping(buf, 'c')
	if string(buf) != "sec" {
		t.Fatalf("got %q", buf)
	}
	if !bytes.Equal(old, []byte{0, 0}) {
		t.Fatalf("old backing array not wiped: %q", old)
	}
}

func TestWipe(t *testing.T) {
	b, err := ReadLine(strings.NewReader("hunter2\n"))
	if err != nil {
		t.Fatal(err)
	}
	full := b[:cap(b)]
	Wipe(full)
	for i, c := range full {
		if c != 0 {
			t.Fatalf("byte %d not zeroed", i)
		}
	}
}

func TestReaderPipeIsNotTerminal(t *testing.T) {
	r := New(strings.NewReader("one\ntwo\n"), io.Discard)
	if r.IsTerminal() {
		t.Fatal("a strings.Reader is not a terminal")
	}
	p, err := r.ReadNew("New passphrase: ", "Again: ")
	if err != nil || string(p) != "one" {
		t.Fatalf("ReadNew from a pipe: %q, %v", p, err)
	}
	p, err = r.Read("x")
	if err != nil || string(p) != "two" {
		t.Fatalf("second Read: %q, %v", p, err)
	}
	if _, err := r.Read("x"); !errors.Is(err, ErrNoInput) {
		t.Fatalf("got %v, want ErrNoInput", err)
	}
	if _, err := New(strings.NewReader("\n"), nil).ReadNew("a", "b"); !errors.Is(err, ErrEmpty) {
		t.Fatalf("empty new passphrase: got %v", err)
	}
}

// fakeTerminal makes a Reader whose In is an *os.File treated as a terminal, answering with lines.
func fakeTerminal(t *testing.T, answers ...string) (*Reader, *bytes.Buffer, *[][]byte) {
	t.Helper()
	f, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	var prompts bytes.Buffer
	var handed [][]byte
	r := New(f, &prompts)
	r.isTerminal = func(int) bool { return true }
	r.readPassword = func(int) ([]byte, error) {
		if len(answers) == 0 {
			return nil, io.EOF
		}
		b := []byte(answers[0])
		answers = answers[1:]
		handed = append(handed, b)
		return b, nil
	}
	return r, &prompts, &handed
}

func TestReadNewTerminal(t *testing.T) {
	r, prompts, handed := fakeTerminal(t, "s3cret", "s3cret")
	p, err := r.ReadNew("New passphrase: ", "Verify passphrase: ")
	if err != nil || string(p) != "s3cret" {
		t.Fatalf("got %q, %v", p, err)
	}
	if !strings.Contains(prompts.String(), "New passphrase: \nVerify passphrase: \n") {
		t.Fatalf("prompts: %q", prompts.String())
	}
	// The confirmation copy is wiped; the returned one belongs to the caller.
	if !bytes.Equal((*handed)[1], make([]byte, 6)) {
		t.Fatalf("confirmation buffer not wiped: %q", (*handed)[1])
	}
}

func TestReadNewTerminalMismatchWipesBoth(t *testing.T) {
	r, _, handed := fakeTerminal(t, "s3cret", "s3cre7")
	if _, err := r.ReadNew("a", "b"); !errors.Is(err, ErrMismatch) {
		t.Fatalf("got %v, want ErrMismatch", err)
	}
	for i, b := range *handed {
		if !bytes.Equal(b, make([]byte, len(b))) {
			t.Fatalf("buffer %d not wiped: %q", i, b)
		}
	}
}

func TestTerminalEOF(t *testing.T) {
	r, _, _ := fakeTerminal(t)
	if _, err := r.Read("x"); !errors.Is(err, ErrNoInput) {
		t.Fatalf("got %v", err)
	}
}

func TestReadKeyFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "key")
	if err := os.WriteFile(p, []byte{0, 1, 2, '\n'}, 0o600); err != nil {
		t.Fatal(err)
	}
	b, err := ReadKeyFile(p)
	if err != nil || !bytes.Equal(b, []byte{0, 1, 2, '\n'}) {
		t.Fatalf("got %v, %v", b, err)
	}
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, nil, 0o600)
	if _, err := ReadKeyFile(empty); err == nil {
		t.Fatal("empty key file accepted")
	}
	if _, err := ReadKeyFile(dir); err == nil {
		t.Fatal("directory accepted as key file")
	}
}
