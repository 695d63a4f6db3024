//go:build !linux

package firmware

import "errors"

// EthtoolDrvinfo is only available on Linux.
func EthtoolDrvinfo(ifname string) (Drvinfo, error) {
	return Drvinfo{}, errors.New("ethtool driver info needs Linux")
}
