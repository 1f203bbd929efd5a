#!/usr/bin/env bash
# Setup rate of one node with sipp at both ends: a sipp UAC enters through a
# trunk (trusted by source 127.0.0.3) and calls the number of a user whose
# contact is a sipp UAS registered with digest first (register.xml).
#
#   bench/sipp/cps.sh RATE CALLS [HOLD_MS]
#
# Prints calls attempted/succeeded/failed, setup latency p50/p99 (INVITE to
# 180, sipp's "setup" rtd) and the node's RSS. Everything is on loopback and
# every process it starts is stopped by pid on exit.
set -euo pipefail
rate=${1:-200}
calls=${2:-2000}
hold=${3:-0}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
work=$(mktemp -d)
sip_port=15060
http=127.0.0.1:18080
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ -n "${KEEP:-}" ]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

(cd "$root" && go build -o "$work/switchboard" ./cmd/switchboard)
t0=$(date +%s%N)
"$work/switchboard" --sip-addr 127.0.0.1:$sip_port --http-addr $http --media-ip 127.0.0.1 \
  --rtp-ports 40000-59999 --data-dir "$work/data" --etcd-listen 127.0.0.1:0 --node-id bench \
  --admin-token bench-token --log-level error ${PPROF:+--pprof-addr $PPROF} >"$work/node.log" 2>&1 &
node=$!
pids+=($node)
until curl -sf "http://$http/readyz" >/dev/null 2>&1; do
  kill -0 $node 2>/dev/null || { cat "$work/node.log"; exit 1; }
  sleep 0.05
done
echo "time to /readyz: $(( ($(date +%s%N) - t0) / 1000000 )) ms"

api() { curl -sf -H 'Authorization: Bearer bench-token' -H 'Content-Type: application/json' "$@" >/dev/null; }
api -d '{"id":"bob","name":"Bob","extension":"1002","numbers":["+14155550102"],"sip_password":"bob-secret"}' http://$http/v1/users
api -d '{"id":"sipp","address":"127.0.0.3:5999","inbound_cidrs":["127.0.0.3/32"]}' http://$http/v1/trunks

buf="-buff_size 4194304"
(cd "$work" && sipp -sf "$here/register.xml" -s bob -au bob -ap bob-secret -i 127.0.0.1 -p 5070 -m 1 \
  -nostdin -timeout 10s -timeout_error 127.0.0.1:$sip_port >/dev/null 2>&1) || { echo "register failed"; exit 1; }
(cd "$work" && exec sipp -sf "$here/uas.xml" -i 127.0.0.1 -p 5070 $buf -nostdin -default_behaviors all,-abortunexp \
  >/dev/null 2>&1) &
pids+=($!)
sleep 0.3

(cd "$work" && sipp -sf "$here/uac.xml" -s +14155550102 -i 127.0.0.3 -r "$rate" -m "$calls" -d "$hold" -l 100000 \
  $buf -nostdin -timeout $(( calls / rate + 60 ))s -trace_stat -stf stat.csv -trace_rtt -rtt_freq 1 \
  -default_behaviors all,-abortunexp 127.0.0.1:$sip_port >/dev/null 2>&1) || true

stat=$(ls "$work"/stat.csv 2>/dev/null || true)
last=$(tail -1 "$stat")
hdr=$(head -1 "$stat")
col() { echo "$hdr" | tr ';' '\n' | grep -n "^$1\$" | cut -d: -f1; }
succ=$(echo "$last" | cut -d';' -f"$(col 'SuccessfulCall(C)')")
fail=$(echo "$last" | cut -d';' -f"$(col 'FailedCall(C)')")
rtt=$(ls "$work"/*_rtt.csv | head -1)
pctl() { # pctl FILE P: the P-th percentile of a sorted column
  local n; n=$(wc -l <"$1"); [ "$n" -gt 0 ] || { echo n/a; return; }
  local i=$(( (n * $2 + 99) / 100 )); [ "$i" -ge 1 ] || i=1
  sed -n "${i}p" "$1"
}
awk -F';' 'NR>1 && $3=="setup" {print $2}' "$rtt" | sort -n >"$work/setup.txt"
lat="$(pctl "$work/setup.txt" 50) $(pctl "$work/setup.txt" 99)"
rss=$(awk '/VmRSS/ {print $2}' /proc/$node/status)
cpu=$(awk '{print $14+$15}' /proc/$node/stat)
[ -n "${SETTLE:-}" ] && sleep "$SETTLE"
if [ -n "${PPROF:-}" ]; then
  curl -s "http://$PPROF/debug/pprof/heap?gc=1" >"${HEAP_OUT:-/tmp/heap.pprof}"
  curl -s "http://$PPROF/debug/actors"
fi
if [ -n "${METRICS:-}" ]; then curl -s "http://$http/metrics" | grep -E '^switchboard_(calls_active|actors|media_workers|registrations|calls_total)|^go_goroutines|^go_memstats_heap_inuse'; fi
echo "rate=$rate/s calls=$calls succeeded=$succ failed=$fail setup_ms_p50_p99=($lat) node_rss_kb=$rss node_cpu_ticks=$cpu"
