package digest

import (
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Known answers from RFC 7616 3.9.1 and RFC 2617 3.5.
func TestPublishedVectors(t *testing.T) {
	rfc7616 := map[string]string{
		"username": "Mufasa", "realm": "http-auth@example.org", "uri": "/dir/index.html",
		"nonce": "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", "nc": "00000001",
		"cnonce": "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ", "qop": "auth",
	}
	rfc2617 := map[string]string{
		"username": "Mufasa", "realm": "testrealm@host.com", "uri": "/dir/index.html",
		"nonce": "dcd98b7102dd2f0e8b11d0f600bfb0c093", "nc": "00000001", "cnonce": "0a4f113b", "qop": "auth",
	}
	tests := []struct {
		name, alg, password string
		params              map[string]string
		want                string
	}{
		{"RFC 7616 MD5", MD5, "Circle of Life", rfc7616, "8ca523f5e9506fed4657c9700eebdbec"},
		{"RFC 7616 SHA-256", SHA256, "Circle of Life", rfc7616, "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"},
		{"RFC 2617 MD5", MD5, "Circle Of Life", rfc2617, "6629fae49393a05397450978507c4ef1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, newHash, _ := algorithm(tt.alg)
			ha1 := HA1(tt.alg, tt.params["username"], tt.params["realm"], tt.password)
			if got := response(newHash, ha1, false, "GET", tt.params); got != tt.want {
				t.Fatalf("response = %s, want %s", got, tt.want)
			}
		})
	}

	// The RFC's own header, verified by a server of that realm: the digest is
	// right but the nonce is not one we issued, so the answer is "stale"
	// (RFC 7616 3.3: stale only when the digest is valid), never OK.
	a := New("http-auth@example.org", []byte("secret"), nil)
	hdr := `Digest username="Mufasa", realm="http-auth@example.org", uri="/dir/index.html", algorithm=SHA-256, ` +
		`nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", nc=00000001, cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ", ` +
		`qop=auth, response="753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"`
	lookup := func(pw string) func(alg, user string) (string, bool) {
		return func(alg, user string) (string, bool) {
			return HA1(alg, user, "http-auth@example.org", pw), user == "Mufasa"
		}
	}
	if res, _ := a.Verify("GET", hdr, lookup("Circle of Life")); res.Reason != Stale {
		t.Fatalf("RFC header with the right password: %v, want stale", res.Reason)
	}
	// With a wrong password it proves nothing: not stale (the digest is
	// wrong), not a failed login (the nonce is not ours).
	if res, _ := a.Verify("GET", hdr, lookup("circle of life")); res.Reason != UnknownNonce {
		t.Fatalf("RFC header with a wrong password: %v, want unknown_nonce", res.Reason)
	}
}

func TestHA1(t *testing.T) {
	if got, want := HA1("md5", "Mufasa", "testrealm@host.com", "Circle Of Life"), "939e7578ed9e3c518a452acee763bce9"; got != want {
		t.Fatalf("HA1 MD5 = %s, want %s (RFC 2617 3.5)", got, want)
	}
	if HA1("SHA-256-sess", "u", "r", "p") != HA1("SHA-256", "u", "r", "p") {
		t.Fatal("-sess must share its base's HA1")
	}
	if HA1("SHA-512", "u", "r", "p") != "" {
		t.Fatal("unsupported algorithm must give empty HA1")
	}
}

// phone answers challenges the way a SIP phone would, computing digests on
// its own (not with the package's response function).
type phone struct {
	user, password, realm string
	alg                   string // for the table's "good" answers; MD5 when empty
	nc                    uint32
}

func (p *phone) answer(t *testing.T, challenge, method, uri string) string {
	t.Helper()
	c, err := parseCredentials(challenge)
	if err != nil {
		t.Fatalf("phone cannot parse challenge %q: %v", challenge, err)
	}
	p.nc++
	return p.authorize(c.params["algorithm"], c.params["nonce"], method, uri, p.nc, true)
}

func (p *phone) authorize(alg, nonce, method, uri string, nc uint32, qop bool) string {
	var newHash func() hash.Hash = md5.New
	if strings.HasPrefix(alg, "SHA-256") {
		newHash = sha256.New
	}
	h := func(s string) string {
		x := newHash()
		x.Write([]byte(s))
		return hex.EncodeToString(x.Sum(nil))
	}
	cnonce := "0a4f113b"
	ha1 := h(p.user + ":" + p.realm + ":" + p.password)
	if strings.HasSuffix(alg, "-sess") {
		ha1 = h(ha1 + ":" + nonce + ":" + cnonce)
	}
	ha2 := h(method + ":" + uri)
	ncs := fmt.Sprintf("%08x", nc)
	if !qop {
		return fmt.Sprintf(`Digest username=%q, realm=%q, nonce=%q, uri=%q, response="%s", algorithm=%s`,
			p.user, p.realm, nonce, uri, h(ha1+":"+nonce+":"+ha2), alg)
	}
	resp := h(ha1 + ":" + nonce + ":" + ncs + ":" + cnonce + ":auth:" + ha2)
	return fmt.Sprintf(`Digest username=%q, realm=%q, nonce=%q, uri=%q, response="%s", algorithm=%s, qop=auth, nc=%s, cnonce=%q`,
		p.user, p.realm, nonce, uri, resp, alg, ncs, cnonce)
}

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

const realm = "switchboard.local"

var users = map[string]string{"100": "s3cret", "ann": "pa55"}

func lookup(alg, user string) (string, bool) {
	pw, ok := users[user]
	if !ok {
		return "", false
	}
	return HA1(alg, user, realm, pw), true
}

func nonceOf(t testing.TB, challenge string) string {
	t.Helper()
	c, err := parseCredentials(challenge)
	if err != nil {
		t.Fatal(err)
	}
	return c.params["nonce"]
}

func TestChallenge(t *testing.T) {
	a := New(realm, []byte("k"), nil)
	ch := a.Challenge()
	if len(ch) != 2 || !strings.Contains(ch[0], "algorithm=SHA-256") || !strings.Contains(ch[1], "algorithm=MD5") {
		t.Fatalf("default challenge %q: want SHA-256 then MD5", ch)
	}
	for _, c := range ch {
		cr, err := parseCredentials(c)
		if err != nil {
			t.Fatalf("challenge %q does not parse: %v", c, err)
		}
		if cr.scheme != "Digest" || cr.params["realm"] != realm || cr.params["qop"] != "auth" || cr.params["stale"] != "" {
			t.Fatalf("challenge %q", c)
		}
	}
	if nonceOf(t, a.Challenge()[0]) == nonceOf(t, a.Challenge()[0]) {
		t.Fatal("two challenges share a nonce")
	}
	st := a.ChallengeStale("md5", "bogus", "SHA-256-sess")
	if len(st) != 2 || !strings.Contains(st[0], "algorithm=MD5,") || !strings.Contains(st[1], "algorithm=SHA-256-sess") || !strings.HasSuffix(st[1], "stale=true") {
		t.Fatalf("stale challenge %q", st)
	}
}

func TestVerify(t *testing.T) {
	const method, uri = "REGISTER", "sip:switchboard.local"
	start := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

	type step struct {
		at     time.Duration // clock offset from start
		header func(p *phone, nonce string) string
		want   Reason
	}
	good := func(p *phone, nonce string) string {
		p.nc++
		return p.authorize(p.algFor(), nonce, method, uri, p.nc, true)
	}
	tests := []struct {
		name  string
		user  string
		pw    string
		alg   string
		steps []step
	}{
		{name: "SHA-256 ok then next nc ok", user: "100", pw: "s3cret", alg: SHA256, steps: []step{{0, good, OK}, {time.Minute, good, OK}}},
		{name: "MD5 ok", user: "ann", pw: "pa55", alg: MD5, steps: []step{{0, good, OK}}},
		{name: "MD5-sess ok", user: "ann", pw: "pa55", alg: MD5Sess, steps: []step{{0, good, OK}}},
		{name: "SHA-256-sess ok", user: "ann", pw: "pa55", alg: SHA256Sess, steps: []step{{0, good, OK}}},
		{name: "wrong password", user: "100", pw: "nope", alg: SHA256, steps: []step{{0, good, WrongResponse}}},
		{name: "unknown user", user: "mallory", pw: "x", alg: MD5, steps: []step{{0, good, UnknownUser}}},
		{name: "replayed nc", user: "100", pw: "s3cret", alg: MD5, steps: []step{
			{0, good, OK},
			{time.Second, func(p *phone, nonce string) string { return p.authorize(MD5, nonce, method, uri, p.nc, true) }, Replayed},
		}},
		{name: "lower nc after higher", user: "100", pw: "s3cret", alg: MD5, steps: []step{
			{0, func(p *phone, nonce string) string { return p.authorize(MD5, nonce, method, uri, 5, true) }, OK},
			{0, func(p *phone, nonce string) string { return p.authorize(MD5, nonce, method, uri, 4, true) }, Replayed},
			{0, func(p *phone, nonce string) string { return p.authorize(MD5, nonce, method, uri, 6, true) }, OK},
		}},
		{name: "stale nonce", user: "100", pw: "s3cret", alg: SHA256, steps: []step{{NonceLifetime + time.Second, good, Stale}}},
		{name: "nonce just inside lifetime", user: "100", pw: "s3cret", alg: SHA256, steps: []step{{NonceLifetime, good, OK}}},
		// A wrong digest over an old nonce is neither stale (RFC 7616 3.3)
		// nor a failure to count against the peer: challenged afresh.
		{name: "stale nonce with wrong password is challenged again", user: "100", pw: "bad", alg: SHA256, steps: []step{{time.Hour, good, UnknownNonce}}},
		{name: "tampered nonce, digest over tampered nonce", user: "100", pw: "s3cret", alg: SHA256, steps: []step{
			{0, func(p *phone, nonce string) string { return p.authorize(SHA256, tamper(nonce), method, uri, 1, true) }, Stale},
		}},
		{name: "tampered nonce, digest over original nonce", user: "100", pw: "s3cret", alg: SHA256, steps: []step{
			{0, func(p *phone, nonce string) string {
				h := p.authorize(SHA256, nonce, method, uri, 1, true)
				return strings.Replace(h, nonce, tamper(nonce), 1)
			}, UnknownNonce},
		}},
		{name: "qop-less accepted once", user: "ann", pw: "pa55", alg: MD5, steps: []step{
			{0, func(p *phone, nonce string) string { return p.authorize(MD5, nonce, method, uri, 0, false) }, OK},
			{0, func(p *phone, nonce string) string { return p.authorize(MD5, nonce, method, uri, 0, false) }, Replayed},
			{0, func(p *phone, nonce string) string { return p.authorize(MD5, nonce, method, uri, 7, true) }, Replayed},
		}},
		{name: "wrong method", user: "100", pw: "s3cret", alg: MD5, steps: []step{
			{0, func(p *phone, nonce string) string { return p.authorize(MD5, nonce, "INVITE", uri, 1, true) }, WrongResponse},
		}},
		{name: "realm mismatch", user: "100", pw: "s3cret", alg: MD5, steps: []step{
			{0, func(p *phone, nonce string) string {
				return strings.Replace(good(p, nonce), `realm="`+realm, `realm="other`, 1)
			}, RealmMismatch},
		}},
		{name: "no credentials", user: "100", steps: []step{{0, func(*phone, string) string { return "" }, NoCredentials}}},
		{name: "other scheme (RFC 4475 regaut01)", user: "100", steps: []step{
			{0, func(*phone, string) string { return "NoOneKnowsThisScheme opaque-data=here" }, NoCredentials},
		}},
		{name: "garbage", user: "100", steps: []step{{0, func(*phone, string) string { return `Digest username="x` }, Malformed}}},
		{name: "missing response", user: "100", pw: "s3cret", alg: MD5, steps: []step{
			{0, func(p *phone, nonce string) string {
				return fmt.Sprintf(`Digest username="100", realm=%q, nonce=%q, uri="sip:x"`, realm, nonce)
			}, Malformed},
		}},
		{name: "bad nc", user: "100", pw: "s3cret", alg: MD5, steps: []step{
			{0, func(p *phone, nonce string) string { return strings.Replace(good(p, nonce), "nc=00000001", "nc=1", 1) }, Malformed},
		}},
		{name: "qop auth-int never offered", user: "100", pw: "s3cret", alg: MD5, steps: []step{
			{0, func(p *phone, nonce string) string {
				return strings.Replace(good(p, nonce), "qop=auth", "qop=auth-int", 1)
			}, Malformed},
		}},
		{name: "unsupported algorithm", user: "100", pw: "s3cret", alg: "SHA-512-256", steps: []step{{0, good, Malformed}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := &clock{t: start}
			a := New(realm, []byte("cluster-secret"), clk.now)
			nonce := nonceOf(t, a.Challenge()[0])
			p := &phone{user: tt.user, password: tt.pw, realm: realm, alg: tt.alg}
			for i, s := range tt.steps {
				clk.t = start.Add(s.at)
				res, err := a.Verify(method, s.header(p, nonce), lookup)
				if res.Reason != s.want {
					t.Fatalf("step %d: reason %v (err %v), want %v", i, res.Reason, err, s.want)
				}
				if (err == nil) != (s.want == OK) {
					t.Fatalf("step %d: err %v with reason %v", i, err, res.Reason)
				}
				if s.want == OK && (res.Username != tt.user || res.URI != uri) {
					t.Fatalf("step %d: result %+v", i, res)
				}
			}
		})
	}
}

func (p *phone) algFor() string {
	if p.alg == "" {
		return MD5
	}
	return p.alg
}

// tamper flips one character of a nonce, keeping it decodable.
func tamper(nonce string) string {
	b := []byte(nonce)
	if b[3] == 'A' {
		b[3] = 'B'
	} else {
		b[3] = 'A'
	}
	return string(b)
}

func TestNoncesWorkAcrossNodes(t *testing.T) {
	secret := []byte("shared by the cluster")
	a, b := New(realm, secret, nil), New(realm, secret, nil)
	other := New(realm, []byte("another cluster"), nil)
	p := &phone{user: "100", password: "s3cret", realm: realm}
	ch := a.Challenge()[0]
	if res, err := b.Verify("REGISTER", p.answer(t, ch, "REGISTER", "sip:x"), lookup); res.Reason != OK {
		t.Fatalf("node b rejected node a's nonce: %v", err)
	}
	if res, _ := other.Verify("REGISTER", p.answer(t, ch, "REGISTER", "sip:x"), lookup); res.Reason != Stale {
		t.Fatalf("foreign secret: %v, want stale", res.Reason)
	}
	// Another node's clock a little ahead of ours.
	ahead := New(realm, secret, func() time.Time { return time.Now().Add(time.Minute) })
	if res, err := a.Verify("REGISTER", p.answer(t, ahead.Challenge()[0], "REGISTER", "sip:x"), lookup); res.Reason != OK {
		t.Fatalf("nonce from a node one minute ahead: %v", err)
	}
}

func TestConcurrentReplay(t *testing.T) {
	a := New(realm, []byte("k"), nil)
	nonce := nonceOf(t, a.Challenge()[0])
	p := &phone{user: "100", password: "s3cret", realm: realm}
	const ncs, tries = 50, 8
	var ok atomic.Int32
	var wg sync.WaitGroup
	for nc := uint32(1); nc <= ncs; nc++ {
		hdr := p.authorize(MD5, nonce, "INVITE", "sip:200@x", nc, true)
		for range tries {
			wg.Go(func() {
				res, _ := a.Verify("INVITE", hdr, lookup)
				switch res.Reason {
				case OK:
					ok.Add(1)
				case Replayed:
				default:
					t.Errorf("nc %d: %v", nc, res.Reason)
				}
			})
		}
	}
	wg.Wait()
	// Each header is accepted at most once, and at least the first of them.
	if n := ok.Load(); n < 1 || n > ncs {
		t.Fatalf("%d accepted, want 1..%d", n, ncs)
	}
}

func TestReplayTableExpires(t *testing.T) {
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	a := New(realm, []byte("k"), clk.now)
	p := &phone{user: "100", password: "s3cret", realm: realm}
	for range 10 {
		if res, err := a.Verify("REGISTER", p.answer(t, a.Challenge()[0], "REGISTER", "sip:x"), lookup); res.Reason != OK {
			t.Fatal(err)
		}
	}
	if len(a.seen) != 10 {
		t.Fatalf("tracking %d nonces, want 10", len(a.seen))
	}
	clk.t = clk.t.Add(2 * NonceLifetime)
	if res, err := a.Verify("REGISTER", p.answer(t, a.Challenge()[0], "REGISTER", "sip:x"), lookup); res.Reason != OK {
		t.Fatal(err)
	}
	if len(a.seen) != 1 {
		t.Fatalf("after expiry tracking %d nonces, want 1", len(a.seen))
	}
}

func TestReasonString(t *testing.T) {
	if Replayed.String() != "replayed" || Reason(99).String() != "reason_99" {
		t.Fatal(Replayed.String(), Reason(99).String())
	}
}

// Each Reason's answer: only a wrong password over a nonce this peer was
// sent counts as a failed login; a replay or an expired nonce with the
// right password is re-challenged stale, so the phone retries unasked.
func TestReasonAnswer(t *testing.T) {
	want := map[Reason]Answer{
		OK:            Accept,
		NoCredentials: Challenge,
		Malformed:     Reject,
		UnknownUser:   Refuse,
		WrongResponse: Refuse,
		Stale:         ChallengeStale,
		Replayed:      ChallengeStale,
		RealmMismatch: Challenge,
		UnknownNonce:  Challenge,
		Reason(99):    Refuse, // one this package does not know yet
	}
	for r := range Reason(len(reasonNames)) {
		if _, ok := want[r]; !ok {
			t.Errorf("reason %v has no row", r)
		}
	}
	for r, a := range want {
		if got := r.Answer(); got != a {
			t.Errorf("%v: answer %d, want %d", r, got, a)
		}
	}
}

func FuzzVerify(f *testing.F) {
	a := New(realm, []byte("k"), nil)
	p := &phone{user: "100", password: "s3cret", realm: realm}
	f.Add("REGISTER", p.authorize(MD5, nonceOf(f, a.Challenge()[0]), "REGISTER", "sip:x", 1, true))
	f.Add("INVITE", `Digest username="", realm="switchboard.local", nonce="", uri="", response="", algorithm=md5-SESS, qop=auth, nc=ffffffff, cnonce=""`)
	f.Fuzz(func(t *testing.T, method, header string) {
		res, err := a.Verify(method, header, lookup)
		if (err == nil) != (res.Reason == OK) {
			t.Fatalf("reason %v with err %v", res.Reason, err)
		}
	})
}

func TestReplayTableFull(t *testing.T) {
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	a := New(realm, []byte("k"), clk.now)
	live := clk.t.Add(NonceLifetime)
	for i := range maxTracked {
		a.seen[fmt.Sprint(i)] = use{nc: 1, expires: live}
	}
	p := &phone{user: "100", password: "s3cret", realm: realm}
	res, err := a.Verify("REGISTER", p.answer(t, a.Challenge()[0], "REGISTER", "sip:x"), lookup)
	if res.Reason != Replayed || !errors.Is(err, errTableFull) {
		t.Fatalf("full table: %v %v, want replayed (table full)", res.Reason, err)
	}
	clk.t = live.Add(time.Second)
	if res, err := a.Verify("REGISTER", p.answer(t, a.Challenge()[0], "REGISTER", "sip:x"), lookup); res.Reason != OK {
		t.Fatalf("after the old nonces expired: %v", err)
	}
}

// A nonce issued to one peer is not fresh from another: the right password
// answered from elsewhere is stale (the phone retries), a wrong one is no
// failure of the peer it claims to be (a forger of that address never sees
// its challenges).
func TestVerifyBindsThePeer(t *testing.T) {
	const method = "REGISTER"
	a := New(realm, []byte("cluster-secret"), nil)
	nonce := nonceOf(t, a.ChallengeFor("192.0.2.10", false, MD5)[0])
	good := &phone{user: "100", password: "s3cret", realm: realm, alg: MD5}
	bad := &phone{user: "100", password: "guess", realm: realm, alg: MD5}
	for _, tc := range []struct {
		name string
		p    *phone
		peer string
		nc   uint32
		want Reason
	}{
		{"right password, other peer", good, "198.51.100.1", 1, Stale},
		{"wrong password, other peer", bad, "198.51.100.1", 1, UnknownNonce},
		{"wrong password, unbound check", bad, "", 1, UnknownNonce},
		{"wrong password, the peer", bad, "192.0.2.10", 1, WrongResponse},
		{"right password, the peer", good, "192.0.2.10", 2, OK},
	} {
		res, _ := a.VerifyFrom(tc.peer, method, tc.p.authorize(MD5, nonce, method, "sip:x", tc.nc, true), lookup)
		if res.Reason != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, res.Reason, tc.want)
		}
	}
}
