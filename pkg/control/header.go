package control

// HeaderSerial is the virtio-blk serial of the disk that carries a detached LUKS header
// (`luksmount --header FILE`). The host adds that disk read-only and last, after the drive and
// its members, so it never shifts their names; the guest finds it by this serial and hides it
// from every disk listing.
const HeaderSerial = "luksmount-header"
