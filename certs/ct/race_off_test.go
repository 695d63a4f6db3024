//go:build !race

package ct_test

const raceEnabled = false
