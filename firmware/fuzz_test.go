package firmware

import (
	"strings"
	"testing"
)

func FuzzRolloutSpec(f *testing.F) {
	f.Add(`component: {vendor: Contoso, model: BMC, kind: bmc}
version: 1.46.0
domain: rack
soak: 30m
windows: [{days: [sat], start: "22:00", end: "04:00", tz: Europe/Berlin}]
install: {target: BMC}`)
	f.Add(`component: {vendor: a, model: b, kind: c}
version: "1"
phases: [{percent: 50}, {percent: 40}]
install: {method: command, command: [ssh], version_command: [ssh]}`)
	f.Add("version: [")
	f.Fuzz(func(t *testing.T, data string) {
		s, err := ParseRolloutSpec([]byte(data))
		if err != nil {
			return
		}
		prev := 0.0
		for _, p := range s.Phases {
			if p.Percent <= prev || p.Percent > 100 {
				t.Fatalf("accepted phases %+v", s.Phases)
			}
			prev = p.Percent
		}
		if prev != 100 {
			t.Fatalf("last phase %v, not 100", prev)
		}
		// A valid spec always plans without panicking.
		MakePlan(*s, candidates(30), FormatTriplet)
	})
}

func FuzzPackSpec(f *testing.F) {
	f.Add("id: x\npayload: a.bin\nguids: [g]\nrelease: {version: 1.2.3, date: 2024-01-02, issues: [CVE-2024-1234, 'dell:DSA-1']}\n")
	f.Add("id: x\npayload: a.bin\nguids: [g]\nversion_format: bcd\nrelease: {version: 12.34.56.78}\nrequires: [{kind: firmware, compare: regex, version: '^1'}]\n")
	f.Fuzz(func(t *testing.T, data string) {
		s, err := ParsePackSpec([]byte(data))
		if err != nil {
			return
		}
		c, err := s.Component("a.bin", []byte("payload"))
		if err != nil {
			return
		}
		if _, err := ParseMetainfo(MarshalMetainfo(c)); err != nil {
			t.Fatalf("pack wrote metainfo it cannot read: %v", err)
		}
	})
}

func FuzzKeys(f *testing.F) {
	f.Add("# trusted\nMCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE= # x\n")
	f.Add("11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=\n")
	f.Fuzz(func(t *testing.T, data string) {
		keys, err := ParseKeys(strings.NewReader(data))
		if err != nil {
			return
		}
		for _, k := range keys {
			if len(k) != 32 {
				t.Fatalf("key of %d bytes", len(k))
			}
		}
	})
}
