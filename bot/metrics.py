"""What an operator watches: Prometheus counters the runtime updates, and gauges read from the
database when /metrics is scraped."""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest


class Metrics:
    def __init__(self) -> None:
        # A registry of our own: tests and a second runtime in one process stay apart.
        self.registry = CollectorRegistry()
        self.updates = Counter(
            "coach_updates_total", "Updates handled, by kind", ["kind"], registry=self.registry
        )
        self.latency = Histogram(
            "coach_update_seconds",
            "Time from taking an update from the inbox to its handler's end",
            registry=self.registry,
        )
        self.errors = Counter(
            "coach_errors_total",
            "Faults caught, by where: a component that died (by its name), handling_failed,"
            " desk_failed, update (past its handler), unparseable, dispatch_round",
            ["where"],
            registry=self.registry,
        )
        self.nudges = Counter(
            "coach_nudges_total",
            "Nudges delivered, by outcome",
            ["outcome"],
            registry=self.registry,
        )
        self.queue = Gauge(
            "coach_queue",
            "Rows waiting in the database, by queue: nudges_pending (reminders, notices and"
            " digests), outbox (replies owed, waiting or being sent), in_flight (claimed"
            " messages of either), inbox_unhandled; and updates_handling now",
            ["queue"],
            registry=self.registry,
        )
        self.alive = Gauge(
            "coach_component_up",
            "1 while a component runs",
            ["component"],
            registry=self.registry,
        )

    def exposition(self, queues: Mapping[str, int], alive: Mapping[str, bool]) -> tuple[bytes, str]:
        for name, value in queues.items():
            self.queue.labels(name).set(value)
        for name, up in alive.items():
            self.alive.labels(name).set(1 if up else 0)
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
