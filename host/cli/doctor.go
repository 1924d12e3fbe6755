package cli

import (
	ucli "github.com/urfave/cli/v2"

	"github.com/luksmount/luksmount/host/doctor"
)

// doctorEnv is the machine doctor looks at; tests replace it with fixtures.
var doctorEnv = doctor.Local

func (e *env) doctorCommand() *ucli.Command {
	return &ucli.Command{
		Name:      "doctor",
		Usage:     "check that a mount can work here: QEMU, HVF/KVM, guest images, disk access, NFS, directories",
		UsageText: "luksmount doctor [--json]",
		Description: "Each check prints ok, warn or fail, with the fix for anything but ok. Exits 0 when a mount can\n" +
			"work here (warnings included), 9 when QEMU or the guest images are missing or unusable, 1 otherwise.\n" +
			"Needs neither root nor a disk.",
		Flags: []ucli.Flag{&ucli.BoolFlag{Name: "json", Usage: "print the report as JSON"}},
		Action: func(c *ucli.Context) error {
			r := doctor.Run(doctorEnv())
			if c.Bool("json") {
				if err := r.WriteJSON(e.stdout); err != nil {
					return err
				}
			} else {
				r.WriteText(e.stdout)
			}
			if r.OK {
				return nil
			}
			code := ExitFailure
			for _, ch := range r.Checks {
				if ch.Status == doctor.Fail && (ch.Name == "qemu" || ch.Name == "images" || ch.Name == "qemu-signed") {
					code = ExitVM
				}
			}
			return &silentError{code: code}
		},
	}
}
