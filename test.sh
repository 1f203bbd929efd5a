#!/usr/bin/env bash
# The test command from the README. Packages whose tests start several
# protoactor cluster members run without -race: protoactor-go has data races
# of its own (ARCHITECTURE.md); everything else runs with it.
set -euo pipefail
cd "$(dirname "$0")"
norace=(./cluster/membership/... ./cmd/switchboard/e2e/cluster2/...)
pkgs=$(go list ./... | grep -v -e /cluster/membership -e /cmd/switchboard/e2e/cluster2)
go vet ./...
go test -race -count=1 -timeout 10m $pkgs
go test -count=1 -timeout 10m "${norace[@]}"
