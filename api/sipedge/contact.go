package sipedge

import (
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/emiago/sipgo/sip"

	"github.com/switchboard/switchboard/api/sipedge/txn"
)

// contactFor is our Contact on the flow req arrived by: the local address
// the peer reached (a phone on another interface, or on loopback, must be
// able to send its ACK and BYE back to it) and that flow's transport.
func (e *Edge) contactFor(req *sip.Request) *sip.ContactHeader {
	// MessageData's, not Request's: the latter falls back to the
	// Request-URI when the layer did not say where the request arrived.
	return e.contactAt(req.Transport(), req.MessageData.Destination())
}

// contactTo is our Contact on a request we send to dest over transport:
// the local address the message leaves from.
func (e *Edge) contactTo(transport, dest string) *sip.ContactHeader {
	if local, ok := e.layer.Local(transport, dest); ok {
		return e.contactAt(transport, local.String())
	}
	return e.contactAt(transport, "")
}

// contactAt builds our Contact for a flow over transport whose local end
// is local ("ip:port"; the configured host and port when empty). The
// advertised address (a NAT's public one) replaces the host, not the port:
// the port is the one of the listener the flow belongs to. Over TCP the URI
// says so, or the peer would send its in-dialog requests over UDP (RFC 3261
// 18.1.1); over TLS it is a sips: URI.
func (e *Edge) contactAt(transport, local string) *sip.ContactHeader {
	host, port := e.cfg.Host, e.cfg.Port
	if ap, err := netip.ParseAddrPort(local); err == nil && !ap.Addr().IsUnspecified() {
		host, port = uriHost(ap.Addr()), int(ap.Port())
	}
	if e.cfg.Advertise.IsValid() {
		host = uriHost(e.cfg.Advertise)
	}
	uri := sip.Uri{Scheme: "sip", User: "switchboard", Host: host, Port: port}
	switch strings.ToUpper(transport) {
	case "TCP":
		uri.UriParams = sip.NewParams()
		uri.UriParams.Add("transport", "tcp")
	case "TLS":
		uri.Scheme = "sips"
	}
	return &sip.ContactHeader{Address: uri}
}

// uriHost writes an IP as a SIP URI's host: IPv6 in brackets (RFC 3261 25.1).
func uriHost(a netip.Addr) string {
	a = a.Unmap()
	if a.Is6() {
		return "[" + a.String() + "]"
	}
	return a.String()
}

// pinDestination looks up a UDP request's destination when it is a name (a
// carrier's host name), so that the request goes to one address and its
// Contact names the local address toward that address, as the layer's Via
// does. It blocks: the request is sent off the reader (txn.MayBlock). A
// name that does not resolve is left for the layer to refuse.
func (e *Edge) pinDestination(req *sip.Request) {
	if !strings.EqualFold(req.Transport(), "UDP") {
		return
	}
	host, port, err := net.SplitHostPort(req.Destination())
	if err != nil {
		return
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return
	}
	ip, err := txn.Resolve(host)
	if err != nil {
		return
	}
	dest := netip.AddrPortFrom(ip, uint16(p)).String()
	req.SetDestination(dest)
	req.ReplaceHeader(e.contactTo("UDP", dest))
}
