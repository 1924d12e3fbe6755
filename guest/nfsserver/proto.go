package nfsserver

// Numbers of the protocols served (RFC 1813), named once.

const (
	progNFS   = 100003
	progMount = 100005
	maxIO     = 1 << 20 // rtmax/wtmax: what READ and WRITE truly accept
)

// NFSv3 procedures.
const (
	procNull = iota
	procGetattr
	procSetattr
	procLookup
	procAccess
	procReadlink
	procRead
	procWrite
	procCreate
	procMkdir
	procSymlink
	procMknod
	procRemove
	procRmdir
	procRename
	procLink
	procReaddir
	procReaddirplus
	procFsstat
	procFsinfo
	procPathconf
	procCommit
	nfsProcs // how many there are
)

// procNames are the procedures' names, for the summary logged at stop.
var procNames = [nfsProcs]string{"NULL", "GETATTR", "SETATTR", "LOOKUP", "ACCESS", "READLINK", "READ", "WRITE",
	"CREATE", "MKDIR", "SYMLINK", "MKNOD", "REMOVE", "RMDIR", "RENAME", "LINK", "READDIR", "READDIRPLUS",
	"FSSTAT", "FSINFO", "PATHCONF", "COMMIT"}

// MOUNT v3 procedures (RFC 1813 appendix I).
const (
	mountNull = iota
	mountMnt
	mountDump
	mountUmnt
	mountUmntall
	mountExport
)

// MOUNT v3 status.
const (
	mnt3OK       = 0
	mnt3ErrNoEnt = 2
)

// NFSv3 status codes.
const (
	nfsOK          = 0
	nfsErrPerm     = 1
	nfsErrNoEnt    = 2
	nfsErrIO       = 5
	nfsErrAcces    = 13
	nfsErrExist    = 17
	nfsErrXDev     = 18
	nfsErrNotDir   = 20
	nfsErrIsDir    = 21
	nfsErrInval    = 22
	nfsErrFBig     = 27
	nfsErrNoSpc    = 28
	nfsErrROFS     = 30
	nfsErrMLink    = 31
	nfsErrNameLong = 63
	nfsErrNotEmpty = 66
	nfsErrDQuot    = 69
	nfsErrStale    = 70
	nfsErrNotSync  = 10002
	nfsErrNotSupp  = 10004
	nfsErrTooSmall = 10005
	nfsErrBadType  = 10007
)

// stable_how of WRITE.
const (
	unstable = 0
	dataSync = 1
	fileSync = 2
)

// ftype3.
const (
	nf3Reg  = 1
	nf3Dir  = 2
	nf3Blk  = 3
	nf3Chr  = 4
	nf3Lnk  = 5
	nf3Sock = 6
	nf3FIFO = 7
)

// time_how of sattr3.
const (
	dontChange      = 0
	setToServer     = 1
	setToClientTime = 2
)

// createhow3 modes of CREATE.
const (
	createUnchecked = 0
	createGuarded   = 1
	createExclusive = 2
)
