#!/usr/bin/env bash
# The test command from the README. Packages whose tests run a protoactor
# remote beside an etcd client in one process run without -race: protoactor-go
# has data races of its own (ARCHITECTURE.md: it swaps grpc's global logger,
# reads its member list unlocked); everything else runs with it. The bench
# smoke test drives a separate node process: racing the harness checks
# nothing of the server and slows the load it offers.
set -euo pipefail
cd "$(dirname "$0")"
norace=(./cluster/membership/... ./cmd/switchboard/e2e/... ./bench)
pkgs=$(go list ./... | grep -v -e /cluster/membership -e /cmd/switchboard/e2e -e '/bench$')
go vet ./...
go test -race -count=1 -timeout 10m $pkgs
go test -count=1 -timeout 10m "${norace[@]}"
