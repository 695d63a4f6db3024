package caa_test

import (
	"fmt"

	"github.com/srekit/srekit/certs/caa"
)

// Evaluate needs no network: give it the record sets of the climb.
func ExampleEvaluate() {
	climb := []caa.Lookup{
		{Name: "www.example.com.", Rcode: "NXDOMAIN"},
		{Name: "example.com.", Rcode: "NOERROR", Records: []caa.Record{
			{Tag: "issue", Value: "letsencrypt.org; validationmethods=dns-01"},
			{Tag: "issuewild", Value: ";"},
		}},
	}
	for _, req := range []caa.Request{
		{Name: "www.example.com", Issuer: "letsencrypt.org", Method: "dns-01"},
		{Name: "www.example.com", Issuer: "letsencrypt.org", Method: "http-01"},
		{Name: "www.example.com", Issuer: "letsencrypt.org", Method: "dns-01", Wildcard: true},
	} {
		d := caa.Evaluate(req, climb)
		fmt.Printf("%s: %s\n", d.Verdict, d.Reason)
	}
	// Output:
	// allowed: an issue record at example.com. authorizes letsencrypt.org
	// forbidden: no issue record at example.com. authorizes letsencrypt.org with http-01
	// forbidden: no issuewild record at example.com. authorizes letsencrypt.org with dns-01
}

func ExampleRecordSpec() {
	recs, err := caa.RecordSpec{Issuers: []string{"letsencrypt.org"}, Methods: []string{"dns-01"}, NoWild: true}.Records()
	if err != nil {
		panic(err)
	}
	fmt.Print(caa.ZoneFile("example.com", recs))
	// Output:
	// example.com.	3600	IN	CAA	0 issue "letsencrypt.org; validationmethods=dns-01"
	// example.com.	3600	IN	CAA	0 issuewild ";"
}
