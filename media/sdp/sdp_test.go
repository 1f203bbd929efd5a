package sdp

import (
	"bytes"
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

// A typical desk-phone offer: LF line ends, static and dynamic PTs, SRTP.
const phoneOffer = `v=0
o=alice 2890844526 2890844526 IN IP4 192.0.2.10
s=-
c=IN IP4 192.0.2.10
t=0 0
m=audio 49170 RTP/SAVP 0 8 101
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-16
a=ptime:20
a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^20 UNENCRYPTED_SRTP
a=rtcp:49171
a=sendonly
`

func TestParsePhoneOffer(t *testing.T) {
	s, err := Parse([]byte(phoneOffer))
	if err != nil {
		t.Fatal(err)
	}
	if s.Origin != (Origin{Username: "alice", SessID: 2890844526, SessVersion: 2890844526, IP: "192.0.2.10"}) {
		t.Errorf("origin %+v", s.Origin)
	}
	if s.Name != "-" || s.ConnIP != "192.0.2.10" || len(s.Media) != 1 {
		t.Fatalf("session %+v", s)
	}
	m := s.Media[0]
	want := []Format{{PT: 0, Name: "PCMU", Rate: 8000}, {PT: 8, Name: "PCMA", Rate: 8000}, {PT: 101, Name: "telephone-event", Rate: 8000, Fmtp: "0-16"}}
	if !reflect.DeepEqual(m.Formats, want) {
		t.Errorf("formats %+v", m.Formats)
	}
	if m.Direction != "sendonly" || m.Ptime != 20 || m.Proto != "RTP/SAVP" || m.Port != 49170 {
		t.Errorf("media %+v", m)
	}
	if len(m.Crypto) != 1 || m.Crypto[0].Tag != 1 || m.Crypto[0].Suite != "AES_CM_128_HMAC_SHA1_80" ||
		len(m.Crypto[0].Key) != 30 || m.Crypto[0].Params != "UNENCRYPTED_SRTP" {
		t.Errorf("crypto %+v", m.Crypto)
	}
	if !reflect.DeepEqual(m.Attrs, []string{"rtcp:49171"}) {
		t.Errorf("attrs %q", m.Attrs)
	}
	a, ok := s.AudioAddr()
	if !ok || a != netip.MustParseAddrPort("192.0.2.10:49170") {
		t.Errorf("audio addr %v %v", a, ok)
	}
}

func TestParseCRLFAndLFAgree(t *testing.T) {
	lf, err1 := Parse([]byte(phoneOffer))
	crlf, err2 := Parse([]byte(strings.ReplaceAll(phoneOffer, "\n", "\r\n")))
	if err1 != nil || err2 != nil || !reflect.DeepEqual(lf, crlf) {
		t.Fatalf("LF and CRLF differ: %v %v", err1, err2)
	}
}

func TestParseCases(t *testing.T) {
	head := "v=0\no=- 1 2 IN IP4 10.0.0.1\ns=x\n"
	cases := []struct {
		name, body string
		err        string // substring; empty means it parses
		check      func(*testing.T, *Session)
	}{
		{name: "media c overrides session", body: head + "c=IN IP4 10.0.0.1\nt=0 0\nm=audio 4000 RTP/AVP 8\nc=IN IP4 10.0.0.2\n",
			check: func(t *testing.T, s *Session) {
				if a, _ := s.AudioAddr(); a.String() != "10.0.0.2:4000" {
					t.Errorf("addr %v", a)
				}
			}},
		{name: "session direction inherited", body: head + "c=IN IP4 10.0.0.1\na=inactive\nm=audio 4000 RTP/AVP 0\n",
			check: func(t *testing.T, s *Session) {
				if s.Media[0].Direction != "inactive" {
					t.Errorf("direction %q", s.Media[0].Direction)
				}
			}},
		{name: "default sendrecv", body: head + "m=audio 4000 RTP/AVP 0\n",
			check: func(t *testing.T, s *Session) {
				if s.Media[0].Direction != "sendrecv" {
					t.Errorf("direction %q", s.Media[0].Direction)
				}
			}},
		{name: "static PTs known", body: head + "m=audio 4000 RTP/AVP 9 18 13\n",
			check: func(t *testing.T, s *Session) {
				f := s.Media[0].Formats
				if f[0].Name != "G722" || f[1].Name != "G729" || f[2].Name != "CN" || f[2].IsAudio() {
					t.Errorf("formats %+v", f)
				}
			}},
		{name: "dynamic PT without rtpmap is unusable", body: head + "m=audio 4000 RTP/AVP 97\n",
			check: func(t *testing.T, s *Session) {
				if s.Media[0].Formats[0].IsAudio() {
					t.Error("unnamed PT counted as audio")
				}
			}},
		{name: "rejected stream and non-RTP kept", body: head + "c=IN IP4 10.0.0.1\nm=video 0 RTP/AVP 96\nm=application 9 TCP/MSRP *\nm=audio 4002 RTP/AVP 0\n",
			check: func(t *testing.T, s *Session) {
				if s.Audio() != s.Media[2] || !reflect.DeepEqual(s.Media[1].OtherFormats, []string{"*"}) {
					t.Errorf("media %+v", s.Media)
				}
			}},
		{name: "ipv6", body: head + "c=IN IP6 2001:db8::1\nm=audio 4000 RTP/AVP 0\n",
			check: func(t *testing.T, s *Session) {
				if a, _ := s.AudioAddr(); a.String() != "[2001:db8::1]:4000" {
					t.Errorf("addr %v", a)
				}
			}},
		{name: "host name is not an address", body: head + "c=IN IP4 pbx.example.com\nm=audio 4000 RTP/AVP 0\n",
			check: func(t *testing.T, s *Session) {
				if _, ok := s.AudioAddr(); ok {
					t.Error("host name resolved")
				}
			}},
		{name: "crypto with MKI kept raw", body: head + "m=audio 4000 RTP/SAVP 0\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^20|1:4\n",
			check: func(t *testing.T, s *Session) {
				if len(s.Media[0].Crypto) != 0 || len(s.Media[0].Attrs) != 1 {
					t.Errorf("crypto %+v attrs %q", s.Media[0].Crypto, s.Media[0].Attrs)
				}
			}},
		{name: "empty", body: "", err: "empty"},
		{name: "only garbage", body: "hello", err: "type=value"},
		{name: "bad version", body: "v=1\r\n", err: "v=0"},
		{name: "no v first", body: "o=- 1 2 IN IP4 1.2.3.4\nv=0\n", err: "v=0"},
		{name: "no origin", body: "v=0\ns=x\n", err: "no o="},
		{name: "bad origin", body: "v=0\no=- x 2 IN IP4 1.2.3.4\n", err: "o="},
		{name: "garbage line", body: head + "hello\n", err: "type=value"},
		{name: "bad c", body: head + "c=IN IP4\n", err: "c="},
		{name: "c family mismatch", body: head + "c=IN IP4 2001:db8::1\n", err: "not IP4"},
		{name: "port range", body: head + "m=audio 70000 RTP/AVP 0\n", err: "port"},
		{name: "no formats", body: head + "m=audio 4000 RTP/AVP\n", err: "format"},
		{name: "PT range", body: head + "m=audio 4000 RTP/AVP 128\n", err: "payload type"},
		{name: "PT twice", body: head + "m=audio 4000 RTP/AVP 0 0\n", err: "twice"},
		{name: "bad rtpmap", body: head + "m=audio 4000 RTP/AVP 96\na=rtpmap:96 opus\n", err: "rtpmap"},
		{name: "bad rtpmap rate", body: head + "m=audio 4000 RTP/AVP 96\na=rtpmap:96 opus/x\n", err: "rate"},
		{name: "bad crypto key", body: head + "m=audio 4000 RTP/SAVP 0\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:!!!\n", err: "base64"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, err := Parse([]byte(c.body))
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) || !errors.Is(err, ErrSyntax) {
					t.Fatalf("err %v, want %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			c.check(t, s)
		})
	}
}

func TestMarshalRoundTrip(t *testing.T) {
	s, err := Parse([]byte(phoneOffer))
	if err != nil {
		t.Fatal(err)
	}
	out := s.Marshal()
	if !bytes.HasPrefix(out, []byte("v=0\r\no=alice 2890844526 2890844526 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\nm=audio 49170 RTP/SAVP 0 8 101\r\n")) {
		t.Errorf("marshal order:\n%s", out)
	}
	for _, l := range strings.Split(strings.TrimSuffix(string(out), "\r\n"), "\r\n") {
		if len(l) < 2 || l[1] != '=' {
			t.Errorf("bad line %q", l)
		}
	}
	again, err := Parse(out)
	if err != nil || !reflect.DeepEqual(s, again) {
		t.Fatalf("round trip differs: %v\n%s", err, out)
	}
}

func TestMarshalBuilt(t *testing.T) {
	s := &Session{Origin: Origin{SessID: 7, SessVersion: 8}, ConnIP: "2001:db8::5", Media: []*Media{{
		Type: "audio", Port: 5004, Proto: "RTP/AVP", Direction: "recvonly",
		Formats: []Format{{PT: 0, Name: "PCMU", Rate: 8000}, {PT: 96, Name: "opus", Rate: 48000, Channels: 2, Fmtp: "useinbandfec=1"}},
	}}}
	got := string(s.Marshal())
	want := "v=0\r\no=- 7 8 IN IP6 2001:db8::5\r\ns= \r\nc=IN IP6 2001:db8::5\r\nt=0 0\r\n" +
		"m=audio 5004 RTP/AVP 0 96\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:96 opus/48000/2\r\na=fmtp:96 useinbandfec=1\r\na=recvonly\r\n"
	if got != want {
		t.Fatalf("got\n%q\nwant\n%q", got, want)
	}
}
