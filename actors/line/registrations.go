package line

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/switchboard/switchboard/cluster/store"
)

// Pages of AllRegistrations: the default and the most a caller may ask for.
const (
	defaultPage = 100
	maxPage     = 500
)

// Registration is one stored binding and the user it belongs to.
type Registration struct {
	User string
	Binding
}

// regPrefix is where every line's bindings are kept, one key each under
// <regPrefix><user>/<hash of the contact>.
var regPrefix = store.Key("registrations") + "/"

// Registrations lists user's bindings as etcd holds them, whichever node's
// grain wrote them, the longest-lived first. One whose lease etcd has not
// ended yet but whose expiry is past at now is left out, as the grain does.
func Registrations(ctx context.Context, st store.Store, user string, now time.Time) ([]Binding, error) {
	if user == "" || strings.Contains(user, "/") {
		return nil, fmt.Errorf("line: registrations of %q: not a user id", user)
	}
	kvs, err := st.List(ctx, regPrefix+user+"/", "", 0)
	if err != nil {
		return nil, fmt.Errorf("line %s: list registrations: %w", user, err)
	}
	l := New(user)
	for _, kv := range kvs {
		if b, ok := decodeStored(kv.Value); ok {
			l.Bindings[b.Contact] = b
		}
	}
	return l.Contacts(now), nil
}

// AllRegistrations pages every user's bindings in key order (by user, then
// by a hash of the contact), starting after the cursor after (a next this
// returned; "" for the first page). next is "" at the end. A page may hold
// fewer than limit bindings: those past their expiry at now are left out.
func AllRegistrations(ctx context.Context, st store.Store, after string, limit int, now time.Time) ([]Registration, string, error) {
	if limit <= 0 || limit > maxPage {
		limit = defaultPage
	}
	from := ""
	if after != "" {
		from = regPrefix + after
	}
	kvs, err := st.List(ctx, regPrefix, from, limit+1)
	if err != nil {
		return nil, "", fmt.Errorf("line: list registrations after %q: %w", after, err)
	}
	next := ""
	if len(kvs) > limit {
		kvs = kvs[:limit]
		next = strings.TrimPrefix(kvs[limit-1].Key, regPrefix)
	}
	out := make([]Registration, 0, len(kvs))
	for _, kv := range kvs {
		user, _, ok := strings.Cut(strings.TrimPrefix(kv.Key, regPrefix), "/")
		b, readable := decodeStored(kv.Value)
		if !ok || !readable || !now.Before(b.Expires) {
			continue
		}
		out = append(out, Registration{User: user, Binding: b})
	}
	return out, next, nil
}

// decodeStored reads a stored binding; one that does not parse is skipped
// by every reader alike (the grain never routes to it).
func decodeStored(v []byte) (Binding, bool) {
	var s stored
	if json.Unmarshal(v, &s) != nil {
		return Binding{}, false
	}
	return Binding(s), true
}
