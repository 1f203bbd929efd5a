package node

import (
	"strings"
	"testing"
)

func TestParseDigestAlgorithms(t *testing.T) {
	for _, tc := range []struct {
		in, want, err string
	}{
		{in: "md5", want: "MD5"},
		{in: "sha256", want: "SHA-256"},
		{in: "SHA-256, md5", want: "SHA-256,MD5"},
		{in: "md5,sha256", want: "MD5,SHA-256"},
		{in: "", err: "at least one"},
		{in: "sha512", err: "unknown algorithm"},
		{in: "md5,MD5", err: "named twice"},
	} {
		got, err := ParseDigestAlgorithms(tc.in)
		switch {
		case tc.err != "":
			if err == nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), "--sip-digest") {
				t.Errorf("%q: error %v, want one naming --sip-digest and saying %q", tc.in, err, tc.err)
			}
		case err != nil || strings.Join(got, ",") != tc.want:
			t.Errorf("%q: %v, %v; want %s", tc.in, got, err, tc.want)
		}
	}
}
