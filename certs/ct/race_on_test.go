//go:build race

package ct_test

// raceEnabled shrinks the end-to-end test under the race detector, which
// slows the monitor about tenfold: the race run checks the concurrency, the
// normal run checks the 100,000 entries.
const raceEnabled = true
