package sdp

import (
	"bytes"
	"reflect"
	"testing"
)

const offer = "v=0\r\no=- 42 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n" +
	"m=audio 4000 RTP/SAVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=ptime:20\r\n" +
	"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz\r\na=sendonly\r\n"

func TestParse(t *testing.T) {
	s, err := Parse([]byte(offer))
	if err != nil {
		t.Fatal(err)
	}
	m := s.Audio()
	if m == nil || m.Port != 4000 || m.Proto != "RTP/SAVP" || m.Direction != "sendonly" || m.Ptime != 20 {
		t.Fatalf("media: %+v", m)
	}
	want := []Format{{PT: 0, Name: "PCMU", Rate: 8000}, {PT: 8, Name: "PCMA", Rate: 8000}, {PT: 101, Name: "telephone-event", Rate: 8000, Fmtp: "0-15"}}
	if !reflect.DeepEqual(m.Formats, want) {
		t.Fatalf("formats: %+v", m.Formats)
	}
	if len(m.Crypto) != 1 || len(m.Crypto[0].Key) != 30 {
		t.Fatalf("crypto: %+v", m.Crypto)
	}
	if a, ok := s.AudioAddr(); !ok || a.String() != "192.0.2.1:4000" {
		t.Fatalf("addr %v", a)
	}
}

func TestParseRefuses(t *testing.T) {
	for name, in := range map[string]string{
		"empty":       "",
		"no version":  "o=- 1 1 IN IP4 1.2.3.4\r\n",
		"bad port":    "v=0\r\nm=audio 99999 RTP/AVP 0\r\n",
		"bad pt":      "v=0\r\nm=audio 4000 RTP/AVP 300\r\n",
		"bad c=":      "v=0\r\nc=IN\r\n",
		"bad rtpmap":  "v=0\r\nm=audio 4000 RTP/AVP 96\r\na=rtpmap:96 opus\r\n",
		"garbage":     "hello",
		"bad version": "v=1\r\n",
	} {
		if _, err := Parse([]byte(in)); err == nil {
			t.Errorf("%s: parsed", name)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	s, err := Parse([]byte(offer))
	if err != nil {
		t.Fatal(err)
	}
	again, err := Parse(s.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(s, again) {
		t.Fatalf("round trip changed the session:\n%+v\n%+v", s, again)
	}
}

// FuzzParse: never panics, and what parses survives Marshal and Parse unchanged.
func FuzzParse(f *testing.F) {
	f.Add([]byte(offer))
	f.Add([]byte("v=0\nm=audio 0 RTP/AVP 0\n"))
	f.Add([]byte("v=0\r\nc=IN IP6 ::1\r\nm=video 5000 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := Parse(b)
		if err != nil {
			return
		}
		out := s.Marshal()
		s2, err := Parse(out)
		if err != nil {
			t.Fatalf("re-parse of %q: %v", out, err)
		}
		if out2 := s2.Marshal(); !bytes.Equal(out, out2) {
			t.Fatalf("not stable:\n%q\n%q", out, out2)
		}
	})
}
