// Package caa answers the question a domain owner and a certificate
// authority both ask: may this CA issue a certificate for this name?
//
// It is split in two halves that can be used apart:
//
//   - Evaluate is a pure function: given the CAA record sets fetched on the
//     climb from a name toward the root (one Lookup per name), and a Request
//     (the CA's issuer domain, account URI, validation method, wildcard or
//     not), it returns a Decision with the reason, the relevant record set and
//     a verdict on every record. It follows RFC 8659 (CAA) and RFC 8657
//     (accounturi and validationmethods) under the ProfileRFC8659 profile, and
//     Let's Encrypt's Boulder under ProfileLetsEncrypt; where the two profiles
//     would decide differently, the Decision says so.
//   - Resolver fetches the climb over DNS (github.com/miekg/dns): CNAME and
//     DNAME followed within each lookup, NXDOMAIN as an empty set, SERVFAIL,
//     REFUSED and timeouts as failures (which mean "cannot decide"), TCP on
//     truncation, and the DNSSEC status of every answer, either from a
//     validating resolver's AD bit or, with trust anchors, validated here.
//
// Resolver.Check puts the two together for one name and Resolver.Batch for
// many; a Cache lets the names of a batch share their parents' lookups.
package caa
