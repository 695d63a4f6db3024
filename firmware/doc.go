// Package firmware treats firmware like the software it is: one package
// format (LVFS cabinets with metainfo.xml, or a plain directory), a version
// model that knows the formats firmware vendors really use, a versions
// database of what every host runs, inventory from hosts and BMCs, and staged
// rollouts that halt on failure.
//
// Versions follow fwupd's formats (see Format) because generic semver gets
// real firmware strings wrong: "0x00010035" is a raw integer whose meaning
// depends on the vendor's layout, "2B2QEXE7" (an NVMe revision) has no order
// at all, and "7.10.30.00" is the same release as "7.10.30". Compare says so
// with an explicit ErrIncomparable instead of guessing.
//
// Sub-packages: cab reads and writes Microsoft cabinet files, redfish is a
// small DMTF Redfish client (UpdateService, FirmwareInventory, TaskService).
package firmware
