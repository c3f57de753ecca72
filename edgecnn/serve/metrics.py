"""The server's Prometheus metrics, in a registry of its own (not prometheus_client's global one).

Names follow Prometheus conventions (``_total`` counters, ``_seconds`` histograms). The endpoint
label is the route's path for known routes and ``other`` for anything else, so a client probing
random URLs cannot grow the number of series without bound.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from edgecnn.runtime.profile.sysinfo import THERMAL_ZONE, THROTTLE_BITS, read_thermal_state

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
CONFIDENCE_BUCKETS = tuple(round(0.1 * i, 1) for i in range(1, 11))


class ThermalCollector:
    """SoC temperature and the Pi firmware's throttling flags, read at each scrape (the profiler's
    readers). Series are left out where the machine has no thermal zone or no vcgencmd."""

    def __init__(self, temperature_path=THERMAL_ZONE):
        self.temperature_path = temperature_path

    def collect(self):
        state = read_thermal_state(self.temperature_path)
        if state.temperature_c is not None:
            yield GaugeMetricFamily("edgecnn_cpu_temperature_celsius", "SoC temperature", value=state.temperature_c)
        if state.throttled_raw is not None:
            family = GaugeMetricFamily("edgecnn_throttled", "Pi firmware throttling condition active now (1) or not",
                                       labels=["condition"])
            active = set(state.throttled_now)
            for name in THROTTLE_BITS.values():
                family.add_metric([name], 1.0 if name in active else 0.0)
            yield family


class DriftCollector:
    """``edgecnn_drift_psi{distribution}``, computed at each scrape; absent without a reference or
    while the live window is still too small."""

    def __init__(self, metrics):
        self.metrics = metrics

    def collect(self):
        scores = self.metrics.drift.scores() if self.metrics.drift is not None else None
        if scores is not None:
            family = GaugeMetricFamily("edgecnn_drift_psi", "Population stability index of live top-1 predictions "
                                       "against the --drift-reference summary", labels=["distribution"])
            for name, value in scores.items():
                family.add_metric([name], value)
            yield family


class ServeMetrics:
    def __init__(self, labels: list[str], routes, *, temperature_path=THERMAL_ZONE):
        self.registry = CollectorRegistry(auto_describe=True)
        self.registry.register(ThermalCollector(temperature_path))
        self.drift = None  # a drift.DriftMonitor when the server has a reference
        self.registry.register(DriftCollector(self))
        self.routes = frozenset(routes)
        r = self.registry
        self.requests = Counter("edgecnn_http_requests_total", "HTTP requests by endpoint and status code",
                                ["endpoint", "method", "status"], registry=r)
        self.latency = Histogram("edgecnn_http_request_duration_seconds", "HTTP request latency by endpoint and status",
                                 ["endpoint", "status"], buckets=LATENCY_BUCKETS, registry=r)
        self.in_flight = Gauge("edgecnn_http_requests_in_flight", "Classify requests being served now", registry=r)
        self.images = Counter("edgecnn_classified_images_total", "Images classified through /v1/classify", registry=r)
        self.predictions = Counter("edgecnn_predictions_total", "Top-1 predictions by class and origin",
                                   ["label", "origin"], registry=r)
        self.confidence = Histogram("edgecnn_prediction_confidence", "Top-1 score of each prediction",
                                    ["origin"], buckets=CONFIDENCE_BUCKETS, registry=r)
        self.inference = Histogram("edgecnn_inference_seconds", "Preprocess + invoke time of one image",
                                   buckets=LATENCY_BUCKETS, registry=r)
        self.frames = Counter("edgecnn_source_frames_total", "Frames classified from the attached --source",
                              registry=r)
        self.stages = Histogram("edgecnn_source_stage_seconds", "Time per loop stage of each --source frame",
                                ["stage"], buckets=LATENCY_BUCKETS, registry=r)
        self.fps = Gauge("edgecnn_source_fps", "Frames per second from the attached --source (last second)",
                         registry=r)
        for label in labels:  # every class shows up at 0, so rate() works from the first scrape
            for origin in ("request", "source"):
                self.predictions.labels(label=label, origin=origin)

    def endpoint(self, path: str) -> str:
        return path if path in self.routes else "other"

    def observe_request(self, path: str, method: str, status: int, seconds: float) -> None:
        endpoint = self.endpoint(path)
        self.requests.labels(endpoint=endpoint, method=method, status=str(status)).inc()
        self.latency.labels(endpoint=endpoint, status=str(status)).observe(seconds)

    def observe_prediction(self, label: str | None, score: float, origin: str) -> None:
        self.predictions.labels(label=label if label is not None else "", origin=origin).inc()
        self.confidence.labels(origin=origin).observe(score)
        if self.drift is not None:
            self.drift.add(label, score)

    def exposition(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
