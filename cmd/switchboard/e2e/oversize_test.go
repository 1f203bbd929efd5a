package e2e

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/switchboard/switchboard/api/rest"
)

// A client posting far more than the body limit to a node reads the 413,
// not a reset, whatever it still has to send.
func TestRESTOversizedBodyAnswered(t *testing.T) {
	s := startNode(t, nil)
	big := `{"id":"x","name":"` + strings.Repeat("n", 8<<20) + `"}`
	for range 5 {
		req, _ := http.NewRequest("POST", s.base+"/v1/users", strings.NewReader(big))
		req.Header.Set("Authorization", "Bearer "+s.token)
		req.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%d bytes over a limit of %d: %v", len(big), rest.BodyLimit, err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != 413 {
			t.Fatalf("status %d, want 413", res.StatusCode)
		}
	}
}
