package console

import (
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"
)

// pager is the pagination footer of a list.
type pager struct {
	Page, Pages, Total, From, To int
	PrevURL, NextURL             string
}

// pageParams reads "page" (1-based) and "per" from q, bounded.
func pageParams(q url.Values) (page, per int) {
	page = intParam(q.Get("page"), 1, 1, maxPageNumber)
	per = intParam(q.Get("per"), defaultPerPage, 1, maxPerPage)
	return page, per
}

func intParam(s string, def, min, max int) int {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		return def
	}
	if n < min {
		return min
	}
	if n > max {
		return max
	}
	return n
}

// textParam reads a search string: trimmed, valid UTF-8, at most maxQueryLen bytes.
func textParam(s string) string {
	s = strings.TrimSpace(strings.ToValidUTF8(s, ""))
	if len(s) > maxQueryLen {
		s = s[:maxQueryLen]
		for !utf8.ValidString(s) {
			s = s[:len(s)-1]
		}
	}
	return s
}

// newPager builds the footer for a page of per rows out of total; base is
// the list's URL (path and query), whose "page" parameter is replaced.
func newPager(base *url.URL, page, per, total int) *pager {
	p := &pager{Page: page, Total: total}
	p.Pages = (total + per - 1) / per
	if p.Pages < 1 {
		p.Pages = 1
	}
	if total > 0 {
		p.From = (page-1)*per + 1
		p.To = min(page*per, total)
		if p.From > total {
			p.From, p.To = 0, 0
		}
	}
	if page > 1 {
		p.PrevURL = withParam(base, "page", strconv.Itoa(min(page-1, p.Pages)))
	}
	if page < p.Pages {
		p.NextURL = withParam(base, "page", strconv.Itoa(page+1))
	}
	return p
}

// withParam returns u's path and query with key set to value ("" deletes it).
func withParam(u *url.URL, key, value string) string {
	q := u.Query()
	if value == "" {
		q.Del(key)
	} else {
		q.Set(key, value)
	}
	out := url.URL{Path: u.Path, RawQuery: q.Encode()}
	return out.String()
}

// paginate returns the window [page-1)*per, page*per) of n items.
func paginate(n, page, per int) (lo, hi int) {
	lo = (page - 1) * per
	if lo > n {
		lo = n
	}
	hi = min(lo+per, n)
	return lo, hi
}
