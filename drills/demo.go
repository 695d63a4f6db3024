package drills

import _ "embed"

// DemoConfig is the configuration `srekit serve --demo` stores: a small
// roster across timezones, in dry run, with a catalogue after the talk's
// findings (out-of-date software, IPv6, firewalls).
//
//go:embed demo.yaml
var DemoConfig string
