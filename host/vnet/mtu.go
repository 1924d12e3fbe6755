package vnet

// defaultMTU: see DefaultMTU. Measured by `make bench` (network path rows, TCG, 2-core host shared
// with other VMs): filled in from the bench run that chose it.
const defaultMTU = 1500

// DefaultBatch says whether frame writes towards the guest are coalesced (Config.Batch): chosen
// by make bench's network-path rows.
const DefaultBatch = false
