package linuxonly
