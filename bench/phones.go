package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/switchboard/switchboard/bench/sipp"
	"github.com/switchboard/switchboard/cmd/switchboard/e2e/sipphone"
)

// phone registers a Go phone for user (auto-answering when answer is set);
// media, when valid, is the generator socket its SDP advertises.
func (n *node) phone(user string, answer bool, media netip.AddrPort) (*sipphone.Phone, error) {
	p, err := sipphone.New(sipphone.Config{User: user, Password: password, Domain: domain, Server: n.sip,
		AutoAnswerOn: answer, Backlog: 1 << 17, MediaAddr: media, Log: debugLog()})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if res, err := p.Register(ctx, 3600); err != nil || res.StatusCode != 200 {
		p.Close()
		return nil, fmt.Errorf("register %s: %v %v", user, res, err)
	}
	return p, nil
}

// carrier is the trunk's side: a phone on the trunk's trusted address.
func (n *node) carrier(media netip.AddrPort) (*sipphone.Phone, error) {
	return sipphone.New(sipphone.Config{User: "carrier", Domain: domain, Server: n.sip, IP: trunkIP, MediaAddr: media, Log: debugLog()})
}

// dial places one call and returns its setup time (INVITE to the first
// provisional response, as sipp's "setup" measures) or a failure reason.
func dial(ctx context.Context, p *sipphone.Phone, number string) (*sipphone.Call, time.Duration, string) {
	start := time.Now()
	var setup time.Duration
	var once sync.Once
	c, err := p.Dial(ctx, number, func(code int) {
		if code > 100 {
			once.Do(func() { setup = time.Since(start) })
		}
	})
	if err != nil {
		var rej *sipphone.ErrRejected
		if errors.As(err, &rej) {
			return nil, 0, strconv.Itoa(rej.Code)
		}
		if os.Getenv("BENCH_DEBUG") != "" {
			fmt.Fprintln(os.Stderr, "dial:", err)
		}
		return nil, 0, "timeout_or_transport"
	}
	once.Do(func() { setup = time.Since(start) })
	return c, setup, ""
}

// paced runs attempt rate times a second for d, each on its own goroutine,
// and gathers a rung: an attempt returns its latency, or a failure reason.
func paced(n *node, label string, rate float64, d time.Duration, attempt func() (time.Duration, string)) sipp.Step {
	st := sipp.Step{Rate: rate, Failed: map[string]int{}}
	var mu sync.Mutex
	var lat []time.Duration
	var wg sync.WaitGroup
	cpu0 := n.cpu()
	start := time.Now()
	total := int(rate * d.Seconds())
	for i := range total {
		if wait := time.Until(start.Add(time.Duration(float64(i) / rate * float64(time.Second)))); wait > 0 {
			time.Sleep(wait)
		}
		wg.Add(1)
		mu.Lock()
		st.Attempted++
		if i%int(max(rate, 1)) == 0 {
			progress("%s %.0f/s: %d offered, %d ok, %d failed", label, rate, st.Attempted, st.Succeeded, failures(st.Failed))
		}
		mu.Unlock()
		go func() {
			defer wg.Done()
			took, reason := attempt()
			mu.Lock()
			defer mu.Unlock()
			if reason != "" {
				st.Failed[reason]++
				return
			}
			st.Succeeded++
			lat = append(lat, took)
		}()
	}
	wg.Wait()
	st.Seconds = time.Since(start).Seconds()
	st.Achieved = float64(st.Succeeded) / d.Seconds()
	st.SetupP50ms, st.SetupP95ms, st.SetupP99ms = pct(lat, 0.5), pct(lat, 0.95), pct(lat, 0.99)
	st.TargetCPU = n.cpu() - cpu0
	if st.Succeeded > 0 {
		st.CPUPerCall = st.TargetCPU * 1000 / float64(st.Succeeded)
	}
	return st
}

// goRung offers calls from the trunk to number at rate for d with Go
// phones; each answered call is hung up at once, or with hold first held
// and resumed by the caller (two re-INVITEs: the callee hears music, then
// the caller again).
func goRung(n *node, caller *sipphone.Phone, number string, rate float64, d time.Duration, hold bool) sipp.Step {
	return paced(n, "calls", rate, d, func() (time.Duration, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c, setup, reason := dial(ctx, caller, number)
		if c == nil {
			return setup, reason
		}
		defer func() { _ = c.Hangup(ctx) }()
		if hold {
			if err := c.Hold(ctx, "sendonly"); err != nil {
				return 0, "hold"
			}
			if err := c.Resume(ctx); err != nil {
				return 0, "resume"
			}
		}
		return setup, ""
	})
}

// register offers REGISTERs with digest at rate per second for d.
func register(n *node, rate float64, d time.Duration) (sipp.Step, error) {
	p, err := sipphone.New(sipphone.Config{User: "callee", Password: password, Domain: domain, Server: n.sip})
	if err != nil {
		return sipp.Step{}, err
	}
	defer p.Close()
	return paced(n, "register", rate, d, func() (time.Duration, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		t0 := time.Now()
		res, err := p.Register(ctx, 3600)
		switch {
		case err != nil:
			return 0, "timeout_or_transport"
		case res.StatusCode != 200:
			return 0, strconv.Itoa(res.StatusCode)
		}
		return time.Since(t0), ""
	}), nil
}

// debugLog shows the phones' SIP stack warnings with BENCH_DEBUG set.
func debugLog() *slog.Logger {
	if os.Getenv("BENCH_DEBUG") == "" {
		return nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

func failures(m map[string]int) int {
	t := 0
	for _, v := range m {
		t += v
	}
	return t
}

// progress rewrites the terminal's progress line.
func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "\r\033[K"+format, args...)
}
