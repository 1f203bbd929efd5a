package node

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"sort"
	"strings"

	"github.com/asynkron/protoactor-go/actor"
)

// servePprof exposes the Go profiler for load tests (--pprof-addr), and
// /debug/actors: how many processes the actor registry holds, by kind.
func servePprof(addr string, sys *actor.ActorSystem, log *slog.Logger) {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("/debug/actors", func(w http.ResponseWriter, _ *http.Request) {
		counts := map[string]int{}
		for _, m := range sys.ProcessRegistry.LocalPIDs.LocalPIDs {
			for _, id := range m.Keys() {
				kind, _, _ := strings.Cut(id, "$")
				if i := strings.Index(kind, "/"); i >= 0 {
					kind = kind[:i] + "/*"
				}
				counts[kind]++
			}
		}
		keys := make([]string, 0, len(counts))
		for k := range counts {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(w, "%s %d\n", k, counts[k])
		}
	})
	if err := http.ListenAndServe(addr, mux); err != nil {
		log.Error("pprof: serve stopped", "err", err)
	}
}
