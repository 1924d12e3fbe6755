package vm

// PowerButton presses the VM's ACPI power button (QMP system_powerdown): the agent handles it like
// a shutdown request. Tests use it; Shutdown uses the same path when the agent does not answer.
func (v *VM) PowerButton() error { return v.qmp("system_powerdown") }
