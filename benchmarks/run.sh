#!/usr/bin/env bash
# Runs the benchmarks side by side (no middleware, in-process, remote OPA over
# loopback, OPA's raw evaluation), compares them with benchstat, prints the
# ratio tables and draws benchmarks/latency.svg.
#
#   bash benchmarks/run.sh            # 6 interleaved rounds of 1s per benchmark
#   COUNT=10 BENCHTIME=2s bash benchmarks/run.sh
#
# benchmarks/ is a module of its own (its requirements stay out of the
# library's go.mod): everything here runs inside it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

COUNT="${COUNT:-6}"
BENCHTIME="${BENCHTIME:-1s}"
GOPROXY="$(go env GOPROXY | sed 's/,direct//')"
export GOPROXY
export PATH="$(go env GOPATH)/bin:$PATH"

command -v opa >/dev/null || go install github.com/open-policy-agent/opa@v1.22.3
command -v benchstat >/dev/null || go install golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da

out=results
mkdir -p "$out"
go test -c -o "$out/benchmarks.test" .
# The rounds are interleaved (every benchmark once per round) rather than
# -count N in a row, so that a change in the machine's load hits every mode
# alike: the comparisons are made within rounds.
{
	echo "# $(date -u +%Y-%m-%dT%H:%MZ) $(go version) $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | xargs), load $(cut -d' ' -f1-3 /proc/loadavg)"
	for round in $(seq "$COUNT"); do
		("./$out/benchmarks.test" -test.run '^$' -test.bench "${BENCH:-.}" -test.benchmem -test.benchtime "$BENCHTIME")
	done
} | tee "$out/bench.txt"

echo
echo "=== benchstat, modes side by side"
benchstat -col /mode "$out/bench.txt" | tee "$out/benchstat.txt"

echo
echo "=== ratios"
go run ./report -chart latency.svg < "$out/bench.txt" | tee "$out/ratios.md"
echo
echo "chart: benchmarks/latency.svg; raw results: $out/"
