"""Prometheus metrics, served over HTTP when `metrics_port` is set.

A registry of our own (not the library's global one) so nothing else leaks
in and tests can read the values directly. Fed by the daemon's loop from
each round's Progress; the HTTP server is prometheus_client's own thread.
"""

from __future__ import annotations

import collections
import multiprocessing
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from .pipeline import Pipeline, Progress

_SECONDS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


class Metrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.files = Counter(
            "streamcount_files", "Files put in the ledger, by status", ["status"], registry=r
        )
        self.vanished = Counter(
            "streamcount_files_vanished", "Files deleted before they were read", registry=r
        )
        self.bytes = Counter("streamcount_bytes", "Bytes read from files in the ledger", registry=r)
        self.tokens = Counter("streamcount_tokens", "Tokens added to the totals", registry=r)
        self.task_seconds = Histogram(
            "streamcount_batch_seconds",
            "From sending a batch (or chunk) to a worker to having its counts back",
            buckets=_SECONDS, registry=r,
        )  # fmt: skip
        self.merge_seconds = Histogram(
            "streamcount_merge_seconds", "One merge transaction", buckets=_SECONDS, registry=r
        )
        self.backlog = Gauge(
            "streamcount_backlog", "Files and chunks waiting for a worker", registry=r
        )
        self.in_flight = Gauge("streamcount_in_flight", "Tasks sent to workers", registry=r)
        self.workers = Gauge("streamcount_workers_alive", "Worker processes alive", registry=r)
        self.writer_failing = Gauge(
            "streamcount_writer_failing", "1 while the database cannot take merges", registry=r
        )
        self.bytes_in_flight = Gauge(
            "streamcount_bytes_in_flight", "File bytes sent to a Dask cluster, not back yet",
            registry=r,
        )  # fmt: skip
        for status in ("counted", "skipped", "failed"):
            self.files.labels(status)  # exported as 0 before the first file
        self._server: Any = None

    def serve(self, address: str, port: int) -> None:
        self._server, _ = start_http_server(port, addr=address, registry=self.registry)

    def record(self, progress: Progress) -> None:
        # Summed first: a labelled counter's inc takes a lock, and a merge can hold
        # tens of thousands of rows.
        for status, n in collections.Counter(row.status for row in progress.rows).items():
            self.files.labels(status).inc(n)
        self.bytes.inc(sum(row.size for row in progress.rows))
        self.tokens.inc(sum(row.tokens for row in progress.rows))
        self.vanished.inc(len(progress.vanished))
        for seconds in progress.task_seconds:
            self.task_seconds.observe(seconds)
        if progress.rows:
            self.merge_seconds.observe(progress.seconds)

    def sample(self, pipeline: Pipeline) -> None:
        self.backlog.set(pipeline.backlog)
        self.in_flight.set(pipeline.inflight)
        self.workers.set(len(multiprocessing.active_children()))
        self.writer_failing.set(int(pipeline.writer_failing))
        self.bytes_in_flight.set(int(pipeline.executor_status().get("bytes_in_flight", 0)))

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
