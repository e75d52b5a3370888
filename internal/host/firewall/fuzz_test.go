package firewall

import (
	"encoding/json"
	"testing"
)

// FuzzRuleset feeds arbitrary JSON rulesets (what the server sends) through
// validation and compilation: no panic, and an accepted ruleset stays
// within the table limits.
func FuzzRuleset(f *testing.F) {
	for _, s := range []string{
		`{"inputPolicy":"drop","established":true,"rules":[{"name":"ssh","direction":"in","action":"accept","protocol":"tcp","destinationPorts":["22","8000-8080"],"sources":["10.0.0.0/8","2001:db8::/32"]}]}`,
		`{"rules":[{"name":"m","direction":"in","action":"drop","sourceMAC":"02:00:00:00:00:01","interface":"veth*"}]}`,
		`{"rules":[{"name":"x","direction":"out","action":"reject","protocol":"icmpv6","destinations":["::1"],"state":["new","invalid"],"log":true}]}`,
		`{"rules":[{"name":"bad","direction":"in","action":"drop","sources":["10.0.0.1/8"],"destinationPorts":["0-99999"]}]}`,
		`{"outputPolicy":"reject"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var rs Ruleset
		if json.Unmarshal(data, &rs) != nil {
			return
		}
		rules, err := parse(rs)
		if err != nil {
			return
		}
		n := 0
		for _, c := range compile(rs, rules) {
			n += len(c.rules)
		}
		if n > MaxTableRules+4*2 {
			t.Fatalf("%d nftables rules", n)
		}
	})
}
