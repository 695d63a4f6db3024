package firmware

import (
	"golang.org/x/sys/unix"
)

// EthtoolDrvinfo asks the kernel for an interface's driver and firmware
// version with the ETHTOOL_GDRVINFO ioctl (what `ethtool -i` prints).
func EthtoolDrvinfo(ifname string) (Drvinfo, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return Drvinfo{}, err
	}
	defer unix.Close(fd)
	info, err := unix.IoctlGetEthtoolDrvinfo(fd, ifname)
	if err != nil {
		return Drvinfo{}, err
	}
	return Drvinfo{
		Driver:   unix.ByteSliceToString(info.Driver[:]),
		Version:  unix.ByteSliceToString(info.Version[:]),
		Firmware: unix.ByteSliceToString(info.Fw_version[:]),
		BusInfo:  unix.ByteSliceToString(info.Bus_info[:]),
	}, nil
}
