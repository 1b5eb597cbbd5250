"""Prometheus metrics of one server process (`GET /metrics`).

Owns the metric definitions (names and help are the documentation: docs/operations.md lists
them) and the collector that reads live calls' counters at scrape time, so the audio path never
touches a metric: frames are counted by each call's session and summed only when scraped.
Each app has its own registry, so several apps can live in one process (tests).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from callbridge.core.live_config import is_live_model

if TYPE_CHECKING:
    from callbridge.core.session import SessionStats

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LATENCY_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.75, 1.0, 1.25, 1.5, 2.0, 3.0, 5.0, 10.0)
FAST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.0, 5.0)
FRAME_STATS = {  # SessionStats field → (metric, help)
    "frames_in": ("callbridge_frames_in_total", "Twilio media frames received"),
    "chunks_out": ("callbridge_chunks_out_total", "Agent audio chunks sent to Twilio"),
    "malformed_twilio": ("callbridge_frames_malformed_total",
                         "Twilio frames dropped as malformed"),
    "malformed_realtime": ("callbridge_upstream_events_malformed_total",
                           "Realtime events dropped as malformed"),
    "late_deltas_dropped": ("callbridge_late_deltas_dropped_total",
                            "Audio deltas of interrupted replies dropped"),
    "stale_marks": ("callbridge_stale_marks_total", "Mark echoes of audio discarded by clear"),
    "truncate_errors": ("callbridge_truncate_errors_total", "Truncates the upstream rejected"),
    "barge_ins": ("callbridge_barge_ins_total", "Times the caller talked over the agent"),
}


class Metrics:
    """Every metric of the process, on a registry of its own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.calls_total = Counter("callbridge_calls_total",
                                   "Calls ended, by outcome and model API", ["outcome", "api"],
                                   registry=r)
        self.calls_refused = Counter("callbridge_calls_refused_total",
                                     "Calls answered with the overflow TwiML, by reason",
                                     ["reason"], registry=r)
        self.turn_latency = Histogram(
            "callbridge_turn_latency_seconds",
            "Caller-perceived turn latency: end of the caller's speech (VAD, media time) to the "
            "first agent audio confirmed played by Twilio", ["api"], buckets=LATENCY_BUCKETS,
            registry=r)
        self.model_latency = Histogram(
            "callbridge_model_latency_seconds",
            "The model's share: the caller's speech stopped to the first audio delta", ["api"],
            buckets=LATENCY_BUCKETS, registry=r)
        self.barge_in_reaction = Histogram(
            "callbridge_barge_in_reaction_seconds",
            "Caller speech start (media time) to Twilio clear sent", buckets=FAST_BUCKETS,
            registry=r)
        self.upstream_connect = Histogram(
            "callbridge_upstream_connect_seconds", "Model WebSocket handshake time", ["api"],
            buckets=FAST_BUCKETS, registry=r)
        self.upstream_reconnects = Counter("callbridge_upstream_reconnects_total",
                                           "Model sockets lost or refused and retried",
                                           ["api"], registry=r)
        self.fallbacks = Counter("callbridge_fallbacks_total",
                                 "Calls that ended in the apology (reconnect budget spent)",
                                 ["api"], registry=r)
        self.tool_latency = Histogram("callbridge_tool_seconds", "Tool run time", ["tool"],
                                      buckets=FAST_BUCKETS, registry=r)
        self.tool_errors = Counter("callbridge_tool_errors_total", "Tool runs that failed",
                                   ["tool"], registry=r)
        self.tokens = Counter("callbridge_tokens_total",
                              "Model tokens, by kind and model API (GPT-Live: its backend's)",
                              ["kind", "api"], registry=r)
        self.active_seconds = Counter("callbridge_model_active_seconds_total",
                                      "GPT-Live session seconds billed (per active minute)",
                                      ["api"], registry=r)
        self.cost = Counter("callbridge_estimated_cost_usd_total",
                            "Estimated model cost in USD, by model API", ["api"], registry=r)
        self.loop_lag = Histogram("callbridge_event_loop_lag_seconds",
                                  "How late the event loop wakes a timer", buckets=FAST_BUCKETS,
                                  registry=r)
        self.active_calls = Gauge("callbridge_active_calls", "Calls in progress on this instance",
                                  registry=r)
        self.draining = Gauge("callbridge_draining", "1 while the instance drains for shutdown",
                              registry=r)
        self.writer_queue = Gauge("callbridge_record_queue_depth",
                                  "Records waiting for the database writer", registry=r)
        self.records_dropped = Gauge("callbridge_records_dropped",
                                     "Records dropped because the writer queue was full",
                                     registry=r)
        self.records_rejected = Gauge("callbridge_records_rejected",
                                      "Records the database refused as bad data, dropped alone",
                                      registry=r)
        self._finished = dict.fromkeys(FRAME_STATS, 0)
        self._live: Callable[[], Iterable[SessionStats]] = list

    def watch(self, live_stats: Callable[[], Iterable[SessionStats]]) -> None:
        """Read live calls' counters from `live_stats` at scrape time."""
        self._live = live_stats
        self.registry.register(_FrameCollector(self))

    def call_finished(self, stats: SessionStats) -> None:
        for field in FRAME_STATS:
            self._finished[field] += getattr(stats, field)

    def frame_totals(self) -> dict[str, int]:
        totals = dict(self._finished)
        for stats in self._live():
            for field in FRAME_STATS:
                totals[field] += getattr(stats, field)
        return totals

    def render(self) -> bytes:
        return bytes(generate_latest(self.registry))


class _FrameCollector(Collector):
    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Metric]:
        totals = self._metrics.frame_totals()
        for field, (name, help_text) in FRAME_STATS.items():
            family = CounterMetricFamily(name.removesuffix("_total"), help_text)
            family.add_metric([], totals[field])
            yield family


def api_of(model: str) -> str:
    """The `api` label of a model: `live` for GPT-Live, `realtime` for the Realtime API."""
    return "live" if is_live_model(model) else "realtime"


def outcome(end_reason: str | None) -> str:
    """A small, fixed set of outcome labels from a call's end reason."""
    reason = (end_reason or "").lower()
    for needle, label in (("caller hung up", "caller_hung_up"), ("agent ended", "agent_ended"),
                          ("transferred", "transferred"), ("voicemail", "voicemail"),
                          ("answered by", "machine"), ("silent", "idle_caller"),
                          ("maximum call length", "time_limit"), ("cost cap", "cost_cap"),
                          ("upstream", "upstream_failed"), ("draining", "drained"),
                          ("never connected", "no_media_stream")):
        if needle in reason:
            return label
    return "other"
