package sipphone

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"strings"
	"sync"

	"github.com/pion/srtp/v3"
)

// srtpPair is the phone's SDES state: our key for what we send, the peer's
// for what we receive.
type srtpPair struct {
	localKey []byte
	mu       sync.Mutex
	tx, rx   *srtp.Context
}

func newSRTPPair() *srtpPair {
	k := make([]byte, 30)
	_, _ = rand.Read(k)
	s := &srtpPair{localKey: k}
	s.tx, _ = srtp.CreateContext(k[:16], k[16:], srtp.ProtectionProfileAes128CmHmacSha1_80)
	return s
}

func (s *srtpPair) localKeyB64() string { return base64.StdEncoding.EncodeToString(s.localKey) }

// setRemote reads "a=crypto:<tag> AES_CM_128_HMAC_SHA1_80 inline:<key>[|...]".
func (s *srtpPair) setRemote(line string) error {
	f := strings.Fields(strings.TrimPrefix(line, "a=crypto:"))
	if len(f) < 3 || f[1] != "AES_CM_128_HMAC_SHA1_80" || !strings.HasPrefix(f[2], "inline:") {
		return fmt.Errorf("sipphone: unusable crypto line %q", line)
	}
	key, err := base64.StdEncoding.DecodeString(strings.SplitN(strings.TrimPrefix(f[2], "inline:"), "|", 2)[0])
	if err != nil || len(key) != 30 {
		return fmt.Errorf("sipphone: bad SRTP key in %q", line)
	}
	rx, err := srtp.CreateContext(key[:16], key[16:], srtp.ProtectionProfileAes128CmHmacSha1_80)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.rx = rx
	s.mu.Unlock()
	return nil
}

func (s *srtpPair) protect(dst, pkt []byte) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tx.EncryptRTP(dst, pkt, nil)
}

func (s *srtpPair) unprotect(dst, pkt []byte) ([]byte, error) {
	s.mu.Lock()
	rx := s.rx
	s.mu.Unlock()
	if rx == nil {
		return nil, fmt.Errorf("sipphone: no remote key yet")
	}
	return rx.DecryptRTP(dst, pkt, nil)
}
