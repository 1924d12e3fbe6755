// Package diskutil reads macOS's view of disks from `diskutil list -plist`
// and `diskutil info -plist`, and finds the partitions that may hold a
// Linux or LUKS volume. Parsing is platform-neutral and tested with fixture
// plists; running diskutil is macOS-only.
package diskutil

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"howett.net/plist"
)

// Partition contents macOS reports for Linux partitions. macOS has no name
// for the LUKS GPT type, so it reports the raw GUID.
const (
	ContentLinuxFS     = "Linux Filesystem"                     // GPT 0FC63DAF-8483-4772-8E79-3D69D8477DE4
	ContentLinuxFSGUID = "0FC63DAF-8483-4772-8E79-3D69D8477DE4" // same, on macOS versions without the name
	ContentLUKSGUID    = "CA7D7CCB-63ED-4C53-861C-1742536059CC" // GPT LUKS
	ContentMBRLinux    = "Linux"                                // MBR 0x83
	ContentMBRLVM      = "Linux_LVM"                            // MBR 0x8E
	ContentMBRLUKS     = "0xE8"                                 // MBR LUKS
)

// List is `diskutil list -plist`.
type List struct {
	AllDisks              []string `plist:"AllDisks"`
	WholeDisks            []string `plist:"WholeDisks"`
	VolumesFromDisks      []string `plist:"VolumesFromDisks"`
	AllDisksAndPartitions []Disk   `plist:"AllDisksAndPartitions"`
}

// Disk is a whole disk (or synthesized APFS container) in a List.
type Disk struct {
	DeviceIdentifier   string      `plist:"DeviceIdentifier"`
	Content            string      `plist:"Content"`
	Size               int64       `plist:"Size"`
	OSInternal         bool        `plist:"OSInternal"`
	VolumeName         string      `plist:"VolumeName"`
	MountPoint         string      `plist:"MountPoint"`
	Partitions         []Partition `plist:"Partitions"`
	APFSVolumes        []Partition `plist:"APFSVolumes"`
	APFSPhysicalStores []struct {
		DeviceIdentifier string `plist:"DeviceIdentifier"`
	} `plist:"APFSPhysicalStores"`
}

// Partition is a partition or APFS volume in a List.
type Partition struct {
	DeviceIdentifier string `plist:"DeviceIdentifier"`
	Content          string `plist:"Content"`
	Size             int64  `plist:"Size"`
	DiskUUID         string `plist:"DiskUUID"`
	VolumeName       string `plist:"VolumeName"`
	VolumeUUID       string `plist:"VolumeUUID"`
	MountPoint       string `plist:"MountPoint"`
}

// Info is `diskutil info -plist <dev>`.
type Info struct {
	DeviceIdentifier               string `plist:"DeviceIdentifier"`
	DeviceNode                     string `plist:"DeviceNode"`
	Content                        string `plist:"Content"`
	Size                           int64  `plist:"Size"`
	TotalSize                      int64  `plist:"TotalSize"`
	DeviceBlockSize                int    `plist:"DeviceBlockSize"`
	VolumeName                     string `plist:"VolumeName"`
	VolumeUUID                     string `plist:"VolumeUUID"`
	DiskUUID                       string `plist:"DiskUUID"`
	MountPoint                     string `plist:"MountPoint"`
	WholeDisk                      bool   `plist:"WholeDisk"`
	ParentWholeDisk                string `plist:"ParentWholeDisk"`
	Internal                       bool   `plist:"Internal"`
	RemovableMedia                 bool   `plist:"RemovableMedia"`
	Removable                      bool   `plist:"Removable"`
	RemovableMediaOrExternalDevice bool   `plist:"RemovableMediaOrExternalDevice"`
	Ejectable                      bool   `plist:"Ejectable"`
	Writable                       bool   `plist:"Writable"`
	WritableMedia                  bool   `plist:"WritableMedia"`
	BusProtocol                    string `plist:"BusProtocol"`
	MediaName                      string `plist:"MediaName"`
	IORegistryEntryName            string `plist:"IORegistryEntryName"`
	SolidState                     bool   `plist:"SolidState"`
	VirtualOrPhysical              string `plist:"VirtualOrPhysical"`
	OSInternalMedia                bool   `plist:"OSInternalMedia"`
	FilesystemType                 string `plist:"FilesystemType"`
	FilesystemName                 string `plist:"FilesystemName"`
}

// ParseList decodes `diskutil list -plist` output.
func ParseList(b []byte) (*List, error) {
	var l List
	if _, err := plist.Unmarshal(b, &l); err != nil {
		return nil, fmt.Errorf("cannot parse diskutil list output: %w", err)
	}
	if len(l.AllDisksAndPartitions) == 0 && len(l.AllDisks) == 0 {
		return nil, errors.New("cannot parse diskutil list output: no disks in it")
	}
	return &l, nil
}

// ParseInfo decodes `diskutil info -plist` output.
func ParseInfo(b []byte) (*Info, error) {
	var i Info
	if _, err := plist.Unmarshal(b, &i); err != nil {
		return nil, fmt.Errorf("cannot parse diskutil info output: %w", err)
	}
	if i.DeviceIdentifier == "" {
		return nil, errors.New("cannot parse diskutil info output: no DeviceIdentifier")
	}
	return &i, nil
}

// IsLinuxContent reports whether a partition Content value is a Linux,
// LVM or LUKS partition type.
func IsLinuxContent(content string) bool {
	switch strings.ToUpper(content) {
	case strings.ToUpper(ContentLinuxFS), ContentLinuxFSGUID, ContentLUKSGUID,
		strings.ToUpper(ContentMBRLinux), "0X83", strings.ToUpper(ContentMBRLVM), "0X8E", "0XE8":
		return true
	}
	return false
}

// Candidate is a device luksmount may be able to open.
type Candidate struct {
	DeviceIdentifier string // "disk4s2"
	WholeDisk        string // "disk4"
	Content          string
	Size             int64
	MountPoint       string
	// Whole is true for an unpartitioned whole disk (LUKS straight on the disk).
	Whole bool
	// Hinted: macOS's type says Linux/LUKS, or it is a disk macOS cannot read. Other candidates
	// are listed only if their header turns out to be LUKS or ext.
	Hinted bool
}

// Candidates returns every partition that may hide a LUKS or ext volume, plus whole disks
// without a partition map, in diskutil's order: not only Linux/LUKS types, since LUKS is often
// made on whatever partition a tool created ("Microsoft Basic Data", a GPT Linux LVM partition
// macOS shows as a bare GUID, FAT/NTFS types; anylinuxfs probes these too). It skips OS-internal
// disks, APFS containers, and partitions of Apple's own formats (see IsAppleContent). Whether a
// candidate really is LUKS or ext is for the caller to decide by reading its header; Hinted
// says macOS's type alone already suggests it.
func (l *List) Candidates() []Candidate {
	var out []Candidate
	for _, d := range l.AllDisksAndPartitions {
		if d.OSInternal || len(d.APFSVolumes) > 0 || len(d.APFSPhysicalStores) > 0 {
			continue
		}
		if len(d.Partitions) == 0 && d.Content == "" {
			out = append(out, Candidate{DeviceIdentifier: d.DeviceIdentifier, WholeDisk: d.DeviceIdentifier,
				Size: d.Size, MountPoint: d.MountPoint, Whole: true, Hinted: true})
			continue
		}
		for _, p := range d.Partitions {
			if IsAppleContent(p.Content) {
				continue
			}
			out = append(out, Candidate{DeviceIdentifier: p.DeviceIdentifier, WholeDisk: d.DeviceIdentifier,
				Content: p.Content, Size: p.Size, MountPoint: p.MountPoint, Hinted: IsLinuxContent(p.Content)})
		}
	}
	return out
}

// IsAppleContent reports a partition type that holds one of Apple's formats (APFS, HFS,
// CoreStorage, boot helpers) or the EFI system partition firmware reads as FAT: never LUKS.
func IsAppleContent(content string) bool {
	c := strings.ToUpper(content)
	return strings.HasPrefix(c, "APPLE_") || c == "EFI" ||
		c == "7C3457EF-0000-11AA-AA11-00306543ECAC" || // APFS, by GUID
		c == "48465300-0000-11AA-AA11-00306543ECAC" || // HFS+, by GUID
		c == "C12A7328-F81F-11D2-BA4B-00A0C93EC93B" // EFI system, by GUID
}

// Runner runs a command and returns its standard output.
type Runner interface {
	Output(ctx context.Context, name string, args ...string) ([]byte, error)
}

// Tool runs diskutil through a Runner.
type Tool struct {
	Path   string // /usr/sbin/diskutil
	Runner Runner
}

// List runs `diskutil list -plist`.
func (t *Tool) List(ctx context.Context) (*List, error) {
	out, err := t.Runner.Output(ctx, t.Path, "list", "-plist")
	if err != nil {
		return nil, fmt.Errorf("cannot list disks: %w", err)
	}
	return ParseList(out)
}

// Info runs `diskutil info -plist dev`.
func (t *Tool) Info(ctx context.Context, dev string) (*Info, error) {
	out, err := t.Runner.Output(ctx, t.Path, "info", "-plist", dev)
	if err != nil {
		return nil, fmt.Errorf("cannot get disk info for %s: %w", dev, err)
	}
	return ParseInfo(out)
}

// UnmountDisk runs `diskutil unmountDisk dev`: every volume of the disk is
// unmounted, the disk stays attached.
func (t *Tool) UnmountDisk(ctx context.Context, dev string) error {
	if _, err := t.Runner.Output(ctx, t.Path, "unmountDisk", dev); err != nil {
		return fmt.Errorf("cannot unmount the volumes of %s (close the apps using them, or run `diskutil unmountDisk force %s`): %w", dev, dev, err)
	}
	return nil
}
