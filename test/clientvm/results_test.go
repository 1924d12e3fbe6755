package clientvm

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

func TestLogResults(t *testing.T) {
	rep := &Report{Results: []json.RawMessage{
		json.RawMessage(`{"name":"files","ok":true,"duration_ms":1500,"details":["100 files","sha ok"]}`),
		json.RawMessage(`{"name":"fsx","ok":false,"duration_ms":20,"error":"mismatch at 4096"}`),
		json.RawMessage(`{"name":"xattr","ok":true,"skipped":true,"duration_ms":0}`),
		json.RawMessage(`not json`),
	}}
	var lines []string
	res := rep.LogResults(func(f string, a ...any) { lines = append(lines, fmt.Sprintf(f, a...)) })
	want := []string{
		"files                      1.50s  ok 100 files; sha ok",
		"fsx                        0.02s  FAILED: mismatch at 4096 ",
		"xattr                      0.00s  SKIPPED ",
	}
	if len(lines) != 4 || len(res) != 4 {
		t.Fatalf("lines %q, results %+v", lines, res)
	}
	for i, w := range want {
		if lines[i] != w {
			t.Errorf("line %d = %q; want %q", i, lines[i], w)
		}
	}
	if res[3].Name != "?" || res[3].OK || !strings.HasPrefix(lines[3], "?") || !strings.Contains(lines[3], "FAILED: bad result line") {
		t.Errorf("undecodable line: %+v, %q", res[3], lines[3])
	}
	if !res[2].Skipped || res[1].OK || !res[0].OK {
		t.Errorf("results %+v", res)
	}
}
