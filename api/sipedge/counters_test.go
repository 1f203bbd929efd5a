package sipedge

import (
	"strconv"
	"testing"

	"github.com/emiago/sipgo/sip"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// series is every series of vec with its count.
func series(t *testing.T, vec *prometheus.CounterVec) map[string]float64 {
	t.Helper()
	ch := make(chan prometheus.Metric, 64)
	vec.Collect(ch)
	close(ch)
	out := map[string]float64{}
	for m := range ch {
		var d dto.Metric
		if err := m.Write(&d); err != nil {
			t.Fatal(err)
		}
		out[d.GetLabel()[0].GetValue()] = d.GetCounter().GetValue()
	}
	return out
}

func TestKindsCountAsWithLabelValues(t *testing.T) {
	vec := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kinds_test"}, []string{"kind"})
	k := &kinds{vec: vec}
	if got := series(t, vec); len(got) != 0 {
		t.Fatalf("series before anything was counted: %v", got)
	}
	k.code(180)
	k.code(180)
	k.code(200)
	k.code(99) // outside 100-699: looked up each time
	k.code(99)
	k.method(sip.INVITE)
	k.method(sip.INVITE)
	k.method("FOO")
	want := map[string]float64{"180": 2, "200": 1, "99": 2, "INVITE": 2, "FOO": 1}
	got := series(t, vec)
	if len(got) != len(want) {
		t.Fatalf("series %v, want %v", got, want)
	}
	for label, n := range want {
		if got[label] != n {
			t.Errorf("%s counted %v times, want %v", label, got[label], n)
		}
	}
}

func BenchmarkKinds(b *testing.B) {
	vec := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kinds_bench"}, []string{"kind"})
	k := &kinds{vec: vec}
	b.Run("resolved", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			k.code(180)
			k.method(sip.BYE)
		}
	})
	b.Run("WithLabelValues", func(b *testing.B) {
		b.ReportAllocs()
		code := 180
		for b.Loop() {
			vec.WithLabelValues(strconv.Itoa(code)).Inc()
			vec.WithLabelValues(string(sip.BYE)).Inc()
		}
	})
}
