"""Prometheus metrics for one process, served at `GET /metrics`.

Cache and in-flight figures are read from their owners at scrape time, so counting them
costs nothing on the hot path.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from bot.cache import CacheCounters, Family

LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class _LiveFigures(Collector):
    def __init__(self, counters: CacheCounters, in_flight: Callable[[], int]) -> None:
        self.counters = counters
        self.in_flight = in_flight

    def collect(self) -> Iterator[Metric]:
        hits = CounterMetricFamily("mluv_cache_hits", "Cache hits", labels=["family"])
        misses = CounterMetricFamily("mluv_cache_misses", "Cache misses", labels=["family"])
        for family in Family:
            hits.add_metric([family.value], self.counters.hits[family])
            misses.add_metric([family.value], self.counters.misses[family])
        yield hits
        yield misses
        yield CounterMetricFamily(
            "mluv_redis_errors", "Redis calls that failed and fell back", value=self.counters.errors
        )
        yield GaugeMetricFamily(
            "mluv_updates_in_flight", "Updates being handled now", value=self.in_flight()
        )


class Metrics:
    def __init__(self, counters: CacheCounters, in_flight: Callable[[], int]) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(_LiveFigures(counters, in_flight))
        self.updates_unparseable = Counter(
            "mluv_updates_unparseable",
            "Updates skipped because this version cannot read them",
            registry=self.registry,
        )
        self.openai_calls = Counter(
            "mluv_openai_calls",
            "Calls to OpenAI by endpoint and outcome",
            ["endpoint", "outcome"],
            registry=self.registry,
        )
        self.openai_latency = Histogram(
            "mluv_openai_seconds",
            "OpenAI call latency by endpoint",
            ["endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.reminders = Counter(
            "mluv_reminders",
            "Daily reminders by outcome: sent, blocked (403), failed (taken over later)",
            ["outcome"],
            registry=self.registry,
        )
        self.handler_latency = Histogram(
            "mluv_handler_seconds",
            "Update handling latency by handler",
            ["handler"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )

    @asynccontextmanager
    async def openai(self, endpoint: str) -> AsyncIterator[None]:
        started = time.perf_counter()
        try:
            yield
        except Exception:
            self.openai_calls.labels(endpoint, "error").inc()
            raise
        else:
            self.openai_calls.labels(endpoint, "ok").inc()
        finally:
            self.openai_latency.labels(endpoint).observe(time.perf_counter() - started)

    def render(self) -> bytes:
        return generate_latest(self.registry)
