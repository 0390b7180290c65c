"""Keeps bench/throughput.py from rotting: a tiny run of the baseline echo bot."""

from __future__ import annotations

from bench.throughput import ptb_echo, run_case


async def test_bench_baseline_tiny() -> None:
    for concurrent in (False, True):
        result = await run_case("echo", ptb_echo(concurrent), users=3, per_user=3,
                                concurrent=concurrent)
        assert result.errors == 0 and len(result.latencies_ms) == 9
        assert result.rate > 0 and result.pct(0.5) > 0
