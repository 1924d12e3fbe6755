//go:build linux

// Command luksmount-stackfix is PID 1 of the fixture VM: it boots on the agent image's kernel and
// tools (the agent's /init replaced by this), loads every module the image ships, runs the spec's
// commands (lvm, mdadm, cryptsetup, mkfs) on the VM's disks, reports each on the console and
// powers off. Tests build their LVM, RAID and LUKS fixtures with it: the tools the guest uses.
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"

	"github.com/luksmount/luksmount/guest/command"
	"github.com/luksmount/luksmount/guest/initsys"
	"github.com/luksmount/luksmount/test/stackfix"
)

func say(v any) {
	b, _ := json.Marshal(v)
	fmt.Fprintf(os.Stderr, "%s%s\n", stackfix.LinePrefix, b)
}

func main() {
	defer func() {
		initsys.Sync()
		initsys.PowerOff()
	}()
	os.Setenv("PATH", command.Path) // exec.Command looks binaries up in our own PATH
	if err := initsys.MountBase(); err != nil {
		say(stackfix.Result{Err: err.Error()})
	}
	for _, d := range []string{"/run/cryptsetup", "/run/lock", "/run/lvm", "/etc/lvm"} {
		os.MkdirAll(d, 0o755)
	}
	load(initsys.ModulesFile, false)
	load(initsys.OnDemandFile, true)
	b, err := os.ReadFile(stackfix.SpecPath)
	var spec stackfix.Spec
	if err == nil {
		err = json.Unmarshal(b, &spec)
	}
	if err != nil {
		say(stackfix.Result{Err: fmt.Sprintf("spec: %v", err)})
		return
	}
	for i, st := range spec.Steps {
		cmd := exec.Command(st.Args[0], st.Args[1:]...)
		cmd.Env = append([]string{"PATH=" + command.Path}, stackfix.Env...)
		cmd.Stdin = strings.NewReader(st.Stdin)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		r := stackfix.Result{Step: i, Args: st.Args, Output: out.String()}
		if err != nil {
			r.Err = err.Error()
		}
		say(r)
		if err != nil && !st.MayFail {
			return
		}
	}
	initsys.Sync()
	say(stackfix.Result{Step: -1, Done: true})
}

// load loads the modules listed in a modules file, or every module of an on-demand table.
func load(path string, ondemand bool) {
	f, err := os.Open(path)
	if err != nil {
		return
	}
	defer f.Close()
	var paths []string
	if ondemand {
		t, err := initsys.ParseOnDemand(f)
		if err != nil {
			return
		}
		seen := map[string]bool{}
		for _, ps := range t {
			for _, p := range ps {
				if !seen[p] {
					seen[p] = true
					paths = append(paths, p)
				}
			}
		}
	} else if paths, err = initsys.ParseModules(f); err != nil {
		return
	}
	initsys.LoadModules(paths)
}
