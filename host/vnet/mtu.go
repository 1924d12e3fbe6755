package vnet

// defaultMTU: see DefaultMTU. Chosen by make bench's network-path rows (2026-12-01, TCG, 2-core
// host shared with other VMs; one TCP stream through the 127.0.0.1 forward, MB/s):
//
//	vnet MTU   host->guest  guest->host
//	1500       23           21
//	9000       34           21
//	65520      40           21
//	(QEMU user net: 16-18 / 8-9 at any guest MTU: slirp keeps 1500)
//
// guest->host is bound by the TCG guest's own TCP stack at every MTU; host->guest (NFS WRITE
// data) gains 1.7x from fewer, larger frames, as does gvproxy's per-frame cost on the host
// (BenchmarkStream). The Mac client never sees this MTU: it talks TCP to 127.0.0.1.
const defaultMTU = MaxMTU

// DefaultBatch says whether frame writes towards the guest are coalesced (Config.Batch). Off: the
// same rows showed no gain (1500: 18/19, 9000: 30/23, 65520: 34/16 MB/s batched), since under TCG
// the guest, not the host's syscalls, sets the pace. Two later runs at 65520 (2026-12-01) split:
// batched 88/50 vs unbatched 58/28 with no other VM running, 39/22 vs 64/20 beside one; one row
// swings 2x between runs, so neither shows a gain beyond that.
const DefaultBatch = false
