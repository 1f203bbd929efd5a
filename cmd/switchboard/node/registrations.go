package node

import (
	"context"
	"strings"
	"time"

	"github.com/switchboard/switchboard/actors/line"
	"github.com/switchboard/switchboard/api/rest"
	"github.com/switchboard/switchboard/cluster/store"
)

// registrations implements rest.Registrations from the bindings the line
// grains keep in etcd: any node reads every node's, and no grain is woken.
type registrations struct {
	st  store.Store
	now func() time.Time
}

func (r registrations) Of(ctx context.Context, user string) ([]rest.Registration, error) {
	bs, err := line.Registrations(ctx, r.st, user, r.now())
	if err != nil {
		return nil, err
	}
	out := make([]rest.Registration, len(bs))
	for i, b := range bs {
		out[i] = restRegistration(b)
	}
	return out, nil
}

func (r registrations) All(ctx context.Context, after string, limit int) ([]rest.UserRegistration, string, error) {
	rs, next, err := line.AllRegistrations(ctx, r.st, after, limit, r.now())
	if err != nil {
		return nil, "", err
	}
	out := make([]rest.UserRegistration, len(rs))
	for i, reg := range rs {
		out[i] = rest.UserRegistration{UserID: reg.User, Registration: restRegistration(reg.Binding)}
	}
	return out, next, nil
}

// restRegistration shows a binding in whole seconds of UTC (expiries are
// granted in seconds) and its transport in lower case, as SIP URIs write it.
func restRegistration(b line.Binding) rest.Registration {
	return rest.Registration{Contact: b.Contact, Source: b.Source, Transport: strings.ToLower(b.Transport), UserAgent: b.UserAgent,
		ExpiresAt: b.Expires.UTC().Truncate(time.Second), Node: b.NodeID}
}
