//go:build !linux

// Command duo needs Linux (epoll); elsewhere the mesh bench uses
// bench/mesh/load in front of nginx (LAT_BACKEND=nginx).
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "duo: Linux only (epoll); use LAT_BACKEND=nginx")
	os.Exit(2)
}
