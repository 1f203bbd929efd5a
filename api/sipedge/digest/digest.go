// Package digest is the server side of HTTP digest authentication as SIP
// uses it (RFC 3261 22, RFC 2617, RFC 7616): challenges, verification of
// Authorization / Proxy-Authorization values, and replay protection.
//
// Nonces are stateless: a timestamp, random salt and an HMAC under a secret
// shared by the cluster, so any node holding the secret accepts a nonce
// another node issued. Replay tracking (the highest nonce-count seen per
// nonce) is in memory and per node: a request captured on the wire can be
// replayed at most once to each other node, and only within NonceLifetime.
package digest

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"strings"
	"sync"
	"time"
)

// NonceLifetime is how long a nonce is accepted; afterwards the answer is a
// new challenge with stale=true.
const NonceLifetime = 5 * time.Minute

// Algorithm names as they appear in challenges (RFC 7616 3.3).
const (
	MD5        = "MD5"
	MD5Sess    = "MD5-sess"
	SHA256     = "SHA-256"
	SHA256Sess = "SHA-256-sess"
)

// maxTracked bounds the replay table. Each entry is ~100 bytes, so this is
// ~13 MB at worst: 131072 first uses of distinct nonces within
// NonceLifetime, about 440 new authentications per second sustained.
const maxTracked = 1 << 17

// nonce layout: 8 bytes unix seconds, 8 bytes salt, 16 bytes HMAC-SHA256.
const (
	tsLen    = 8
	saltLen  = 8
	macLen   = 16
	nonceLen = tsLen + saltLen + macLen
)

var nonceEnc = base64.RawURLEncoding // token characters only: no quoting trouble

// Reason is the verdict of Verify.
type Reason int

// The Reasons, each with its Answer (a challenge is 401 for REGISTER, 407
// for other requests):
const (
	// OK: authenticated as Result.Username.
	OK Reason = iota
	// NoCredentials: no header, or a scheme other than Digest (RFC 4475
	// 3.3.7): challenge.
	NoCredentials
	// Malformed: the Digest value does not parse or lacks a required
	// parameter or names an algorithm/qop we never offered: 400.
	Malformed
	// UnknownUser: 403, exactly like WrongResponse so that probing cannot
	// tell users apart (INTERFACE section 2).
	UnknownUser
	// WrongResponse: wrong password: 403.
	WrongResponse
	// Stale: the response is right but the nonce expired or was issued under
	// another secret (a node restart): challenge with stale=true, so the
	// phone retries without asking its user (RFC 7616 3.3).
	Stale
	// Replayed: the response is right but its nonce-count was already seen
	// (or a qop-less nonce was used twice). We challenge again with
	// stale=true rather than 403: UDP may reorder two requests of one phone
	// (nc 3 before nc 2), and a fresh nonce costs an eavesdropper everything
	// while the real phone just retries.
	Replayed
	// RealmMismatch: credentials for another realm: challenge.
	RealmMismatch
	// UnknownNonce: a wrong digest over a nonce that is not fresh or was
	// not issued to this peer: challenge (without stale). It is not a
	// failed login: a forger of the peer's address answers no challenge
	// the peer was sent, so only fresh nonces make failures count.
	UnknownNonce
)

var reasonNames = [...]string{"ok", "no_credentials", "malformed", "unknown_user", "wrong_response", "stale", "replayed", "realm_mismatch", "unknown_nonce"}

// String is a metric-label-friendly name.
func (r Reason) String() string {
	if int(r) < len(reasonNames) {
		return reasonNames[r]
	}
	return "reason_" + strconv.Itoa(int(r))
}

// Answer is what the server does with a request whose credentials got a
// Reason.
type Answer int

const (
	// Accept: the request goes on, from Result.Username.
	Accept Answer = iota
	// Challenge: a fresh challenge (401/407).
	Challenge
	// ChallengeStale: a fresh challenge with stale=true, which the client
	// answers again without asking its user.
	ChallengeStale
	// Refuse: 403, and a failed login to count against the source and the
	// user.
	Refuse
	// Reject: 400; credentials that do not parse are no login attempt.
	Reject
)

// Answer is how the server answers a request whose credentials got r. A
// replayed nonce-count is challenged again (stale), not refused: UDP
// reorders a phone's requests. A Reason this switch does not know is
// refused.
func (r Reason) Answer() Answer {
	switch r {
	case OK:
		return Accept
	case NoCredentials, RealmMismatch, UnknownNonce:
		return Challenge
	case Stale, Replayed:
		return ChallengeStale
	case Malformed:
		return Reject
	default:
		return Refuse
	}
}

// Result of Verify.
type Result struct {
	Reason Reason
	// Username is the digest username (set whenever the header parsed).
	Username string
	// Algorithm as the client named it (empty means MD5).
	Algorithm string
	// URI is the digest-uri; the caller may compare it with the Request-URI
	// (RFC 2617 3.2.2.5). Proxies between phone and us may rewrite the
	// Request-URI, so this package does not.
	URI string
}

// Authenticator issues and verifies digest challenges for one realm. It is
// safe for concurrent use.
type Authenticator struct {
	realm  string
	secret []byte
	now    func() time.Time

	mu   sync.Mutex
	seen map[string]use // nonce -> how it was used
	// sweepAt is when the next full expiry sweep of seen is due.
	sweepAt time.Time
}

type use struct {
	nc      uint32 // highest nonce-count accepted; 0 for a qop-less use
	expires time.Time
}

// New returns an Authenticator for realm. secret must be the same on every
// node that should accept the others' nonces; now is the clock (nil means
// time.Now).
func New(realm string, secret []byte, now func() time.Time) *Authenticator {
	if now == nil {
		now = time.Now
	}
	return &Authenticator{
		realm:  realm,
		secret: append([]byte(nil), secret...),
		now:    now,
		seen:   map[string]use{},
	}
}

// Challenge returns WWW-Authenticate / Proxy-Authenticate values, one per
// algorithm, all with qop="auth" and one fresh nonce. Without algs it offers
// SHA-256 then MD5 (RFC 7616 3.7: most preferred first). Unsupported names
// are skipped.
func (a *Authenticator) Challenge(algs ...string) []string {
	return a.ChallengeFor("", false, algs...)
}

// ChallengeStale is Challenge with stale=true, for Reason Stale and
// Replayed.
func (a *Authenticator) ChallengeStale(algs ...string) []string {
	return a.ChallengeFor("", true, algs...)
}

// ChallengeFor is Challenge (stale: ChallengeStale) with a nonce bound to
// peer (the client's address): only VerifyFrom with the same peer accepts
// it. A client that forges another's address never receives that address's
// challenges, so it cannot send answers that count against it.
func (a *Authenticator) ChallengeFor(peer string, stale bool, algs ...string) []string {
	if len(algs) == 0 {
		algs = []string{SHA256, MD5}
	}
	nonce := a.newNonce(peer)
	out := make([]string, 0, len(algs))
	for _, alg := range algs {
		name, _, ok := algorithm(alg)
		if !ok {
			continue
		}
		v := "Digest realm=" + quote(a.realm) + ", nonce=" + quote(nonce) + ", algorithm=" + name + `, qop="auth"`
		if stale {
			v += ", stale=true"
		}
		out = append(out, v)
	}
	return out
}

func (a *Authenticator) newNonce(peer string) string {
	var b [nonceLen]byte
	binary.BigEndian.PutUint64(b[:tsLen], uint64(a.now().Unix()))
	// crypto/rand.Read never fails (it aborts the program instead).
	_, _ = rand.Read(b[tsLen : tsLen+saltLen])
	copy(b[tsLen+saltLen:], a.mac(b[:tsLen+saltLen], peer))
	return nonceEnc.EncodeToString(b[:])
}

// mac binds the nonce to the secret, the realm and the peer it was issued to.
func (a *Authenticator) mac(tsSalt []byte, peer string) []byte {
	m := hmac.New(sha256.New, a.secret)
	m.Write(tsSalt)
	m.Write([]byte(a.realm))
	m.Write([]byte{0})
	m.Write([]byte(peer))
	return m.Sum(nil)[:macLen]
}

// nonceState tells whether a nonce is ours and still fresh.
type nonceState int

const (
	nonceFresh nonceState = iota
	nonceExpired
	nonceForeign // not issued under this secret/realm, or mangled
)

func (a *Authenticator) checkNonce(nonce, peer string, now time.Time) (nonceState, time.Time) {
	if nonceEnc.EncodedLen(nonceLen) != len(nonce) {
		return nonceForeign, time.Time{}
	}
	b, err := nonceEnc.DecodeString(nonce)
	if err != nil || len(b) != nonceLen {
		return nonceForeign, time.Time{}
	}
	if !hmac.Equal(b[tsLen+saltLen:], a.mac(b[:tsLen+saltLen], peer)) {
		return nonceForeign, time.Time{}
	}
	issued := time.Unix(int64(binary.BigEndian.Uint64(b[:tsLen])), 0)
	expires := issued.Add(NonceLifetime)
	// A nonce from the future is another node's clock running ahead; accept
	// up to one lifetime of skew rather than loop the phone on challenges.
	if now.After(expires) || issued.After(now.Add(NonceLifetime)) {
		return nonceExpired, expires
	}
	return nonceFresh, expires
}

// Verify checks an Authorization (or Proxy-Authorization) value sent with a
// request of the given method. lookupHA1 is called with the base algorithm
// (MD5 or SHA-256, also for the -sess variants) and the digest username and
// returns hex H(username:realm:password) for that algorithm.
//
// The returned error is nil exactly when Result.Reason is OK; otherwise it
// says why, for logs.
func (a *Authenticator) Verify(method string, authHeader string, lookupHA1 func(alg, username string) (ha1 string, ok bool)) (Result, error) {
	return a.VerifyFrom("", method, authHeader, lookupHA1)
}

// VerifyFrom is Verify for a nonce issued by ChallengeFor(peer). The nonce
// is checked before the credentials: an answer to a challenge this peer was
// never sent is Stale (challenged again), never UnknownUser or
// WrongResponse, so that only a client that receives at peer's address can
// make failures count against it.
func (a *Authenticator) VerifyFrom(peer, method string, authHeader string, lookupHA1 func(alg, username string) (ha1 string, ok bool)) (Result, error) {
	if trimLWS(authHeader) == "" {
		return Result{Reason: NoCredentials}, errors.New("digest: no credentials")
	}
	c, err := parseCredentials(authHeader)
	if err != nil {
		return Result{Reason: Malformed}, fmt.Errorf("digest: parse credentials: %w", err)
	}
	if !strings.EqualFold(c.scheme, "Digest") {
		return Result{Reason: NoCredentials}, fmt.Errorf("digest: unsupported auth scheme %q", c.scheme)
	}
	p := c.params
	res := Result{Username: p["username"], Algorithm: p["algorithm"], URI: p["uri"]}
	fail := func(r Reason, format string, args ...any) (Result, error) {
		res.Reason = r
		return res, fmt.Errorf("digest: user %q: "+format, append([]any{res.Username}, args...)...)
	}
	for _, k := range []string{"username", "realm", "nonce", "uri", "response"} {
		if _, ok := p[k]; !ok {
			return fail(Malformed, "missing %s", k)
		}
	}
	if p["realm"] != a.realm {
		return fail(RealmMismatch, "realm %q, want %q", p["realm"], a.realm)
	}
	if p["userhash"] == "true" {
		return fail(Malformed, "userhash was not offered")
	}
	alg := p["algorithm"]
	if alg == "" {
		alg = MD5 // RFC 2617 3.2.2: absent means MD5
	}
	algName, newHash, ok := algorithm(alg)
	if !ok {
		return fail(Malformed, "unsupported algorithm %q", alg)
	}
	qop, hasQop := p["qop"]
	var nc uint32
	if hasQop {
		if qop != "auth" {
			return fail(Malformed, "unsupported qop %q", qop)
		}
		n, err := parseNC(p["nc"])
		if err != nil {
			return fail(Malformed, "nc: %w", err)
		}
		nc = n
		if p["cnonce"] == "" {
			return fail(Malformed, "missing cnonce")
		}
	}
	sess := strings.HasSuffix(algName, "-sess")
	if sess && p["cnonce"] == "" {
		return fail(Malformed, "%s without cnonce", algName)
	}

	base := strings.TrimSuffix(algName, "-sess")
	ha1, known := lookupHA1(base, res.Username)
	if !known {
		// Same work as for a real user, so timing does not tell them apart.
		ha1 = strings.Repeat("0", newHash().Size()*2)
	}
	want := response(newHash, ha1, sess, method, p)
	got := strings.ToLower(p["response"])
	match := subtle.ConstantTimeCompare([]byte(want), []byte(got)) == 1
	now := a.now()
	state, expires := a.checkNonce(p["nonce"], peer, now)
	if state != nonceFresh {
		// Stale only with a valid digest (RFC 7616 3.3); a wrong one over
		// a nonce this peer was not sent, or an old one, proves nothing
		// about the peer and is challenged afresh.
		why := "nonce expired"
		if state == nonceForeign {
			why = "nonce not issued to this peer under this secret"
		}
		if known && match {
			return fail(Stale, "%s", why)
		}
		return fail(UnknownNonce, "%s, and a wrong digest", why)
	}
	switch {
	case !known:
		return fail(UnknownUser, "unknown user")
	case !match:
		return fail(WrongResponse, "wrong response")
	}

	if err := a.record(p["nonce"], hasQop, nc, expires, now); err != nil {
		return fail(Replayed, "nc %08x: %w", nc, err)
	}
	res.Reason = OK
	return res, nil
}

var (
	errReused    = errors.New("nonce-count not above the last one seen, or a qop-less nonce used again")
	errTableFull = errors.New("replay table full of live nonces")
)

// record notes a use of nonce: for qop=auth it needs a nonce-count above
// every earlier one, without qop a first use at all.
func (a *Authenticator) record(nonce string, qop bool, nc uint32, expires, now time.Time) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if prev, ok := a.seen[nonce]; ok {
		// A qop-less use stores nc 0, so it also blocks any later use.
		if !qop || prev.nc == 0 || nc <= prev.nc {
			return errReused
		}
		a.seen[nonce] = use{nc: nc, expires: prev.expires}
		return nil
	}
	if len(a.seen) >= maxTracked || !now.Before(a.sweepAt) {
		a.sweep(now)
	}
	if len(a.seen) >= maxTracked {
		// Refusing (the phone gets a fresh challenge) is safer than
		// forgetting a live nonce and re-opening it to replay.
		return errTableFull
	}
	if !qop {
		nc = 0
	}
	a.seen[nonce] = use{nc: nc, expires: expires}
	return nil
}

func (a *Authenticator) sweep(now time.Time) {
	for k, u := range a.seen {
		if now.After(u.expires) {
			delete(a.seen, k)
		}
	}
	a.sweepAt = now.Add(NonceLifetime / 2)
}

func parseNC(s string) (uint32, error) {
	if len(s) != 8 {
		return 0, fmt.Errorf("%q is not 8 hex digits", s)
	}
	n, err := strconv.ParseUint(s, 16, 32)
	if err != nil {
		return 0, fmt.Errorf("%q is not 8 hex digits", s)
	}
	if n == 0 {
		return 0, errors.New("nonce-count 0")
	}
	return uint32(n), nil
}

// algorithm maps a (case-insensitive) algorithm name to its canonical
// spelling and hash.
func algorithm(name string) (string, func() hash.Hash, bool) {
	switch strings.ToUpper(name) {
	case "MD5":
		return MD5, md5.New, true
	case "MD5-SESS":
		return MD5Sess, md5.New, true
	case "SHA-256":
		return SHA256, sha256.New, true
	case "SHA-256-SESS":
		return SHA256Sess, sha256.New, true
	}
	return "", nil, false
}

// response computes the request-digest of RFC 7616 3.4.1 (qop=auth) or
// RFC 2069 (no qop).
func response(newHash func() hash.Hash, ha1 string, sess bool, method string, p map[string]string) string {
	h := func(parts ...string) string {
		x := newHash()
		for i, s := range parts {
			if i > 0 {
				x.Write([]byte{':'})
			}
			x.Write([]byte(s))
		}
		return hex.EncodeToString(x.Sum(nil))
	}
	ha1 = strings.ToLower(ha1)
	if sess {
		ha1 = h(ha1, p["nonce"], p["cnonce"])
	}
	ha2 := h(method, p["uri"])
	if qop, ok := p["qop"]; ok {
		return h(ha1, p["nonce"], p["nc"], p["cnonce"], qop, ha2)
	}
	return h(ha1, p["nonce"], ha2)
}

// HA1 returns hex H(username:realm:password) for alg (MD5 or SHA-256; the
// -sess variants share their base's HA1). It returns "" for any other
// algorithm.
func HA1(alg, username, realm, password string) string {
	_, newHash, ok := algorithm(alg)
	if !ok {
		return ""
	}
	x := newHash()
	x.Write([]byte(username + ":" + realm + ":" + password))
	return hex.EncodeToString(x.Sum(nil))
}
