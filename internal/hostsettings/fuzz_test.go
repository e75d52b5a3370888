package hostsettings

import (
	"errors"
	"testing"
)

// FuzzParse: any document is either settings that resolve, format and
// parse again to the same settings, or an error wrapping ErrInvalid;
// never a panic.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"", "{}", "antimalware: {mode: block}", "firewall: {ruleset: {inputPolicy: drop, rules: [{name: a, direction: in, action: accept, protocol: tcp, destinationPorts: ['22', '8000-8080']}]}}",
		"integrity: {rules: [{name: x, paths: [/x], checks: [all, -mtime]}]}", "loginspect: {sources: [{name: auth, format: syslog, paths: [/var/log/auth.log]}], forward: {address: '127.0.0.1:514', protocol: tcp}}",
		"appcontrol: {enabled: true, learn: [dpkg]}", `{"pollInterval": "5s"}`, "antimalware: {exclusions: {magic: ['@257:7573746172']}}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Parse("fuzz", data)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error does not wrap ErrInvalid: %v", err)
			}
			return
		}
		out, err := Format(s)
		if err != nil {
			t.Fatal(err)
		}
		s2, err := Parse("again", out)
		if err != nil {
			t.Fatalf("formatted settings refused: %v\n%s", err, out)
		}
		if !Equal(s, s2) {
			t.Fatalf("round trip differs:\n%s", out)
		}
	})
}
