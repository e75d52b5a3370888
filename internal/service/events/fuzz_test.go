package events

import (
	"errors"
	"net/url"
	"testing"
	"time"

	"mamori/internal/model"
	"mamori/internal/service"
	"mamori/internal/store"
)

// FuzzParseFilter: any query string parses to a filter or to an invalid
// input error, never a panic; a cursor that parses re-encodes to itself.
func FuzzParseFilter(f *testing.F) {
	for _, s := range []string{"", "severity=high&source=runtime", "cursor=" + EncodeCursor(&store.EventCursor{Time: time.Unix(1700000000, 5000), Seq: 42}),
		"since=2026-01-01T00:00:00Z&until=2026-01-02T00:00:00Z", "limit=5000", "cursor=%00", "q=%ff%fe", "action=BLOCK"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		flt, err := ParseFilter(q)
		if err != nil {
			if !errors.Is(err, service.ErrInvalid) {
				t.Fatalf("%q: error %v is not ErrInvalid", raw, err)
			}
			return
		}
		if flt.Limit < 0 || flt.Limit > 1000 {
			t.Fatalf("%q: limit %d", raw, flt.Limit)
		}
		if c := q.Get("cursor"); c != "" {
			if back := EncodeCursor(flt.After); back != c {
				t.Fatalf("cursor %q re-encodes to %q", c, back)
			}
		}
	})
}

func TestParseFilter(t *testing.T) {
	q := url.Values{"source": {"host"}, "severity": {"High"}, "module": {"antimalware"}, "cluster": {"prod"},
		"action": {"Quarantine"}, "since": {"2026-03-01T00:00:00Z"}, "q": {" eicar "}, "limit": {"5000"}}
	f, err := ParseFilter(q)
	if err != nil {
		t.Fatal(err)
	}
	if f.Source != "host" || f.MinSeverity == nil || *f.MinSeverity != model.SeverityHigh || f.Action != "quarantine" ||
		f.Query != "eicar" || f.Limit != 1000 || f.Since.IsZero() || f.Cluster != "prod" {
		t.Errorf("filter %+v", f)
	}
}
