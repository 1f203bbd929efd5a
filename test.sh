#!/usr/bin/env bash
# The test command from the README. Packages whose tests run a protoactor
# remote beside an etcd client in one process run without -race: protoactor-go
# has data races of its own (ARCHITECTURE.md: it swaps grpc's global logger,
# reads its member list unlocked); everything else runs with it.
set -euo pipefail
cd "$(dirname "$0")"
norace=(./cluster/membership/... ./cmd/switchboard/e2e/...)
pkgs=$(go list ./... | grep -v -e /cluster/membership -e /cmd/switchboard/e2e)
go vet ./...
go test -race -count=1 -timeout 10m $pkgs
go test -count=1 -timeout 10m "${norace[@]}"
