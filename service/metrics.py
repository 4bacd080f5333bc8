"""Prometheus metrics, one registry per app so tests can run several apps in one process."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 120.0)


class Metrics:
    """Every metric the service exports."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "recordings_http_requests",
            "HTTP requests answered",
            ["method", "route", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "recordings_http_request_duration_seconds",
            "Time to the end of the response",
            ["method", "route"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.bytes_streamed = Counter(
            "recordings_media_bytes_streamed", "Audio body bytes sent", ["format"], registry=r
        )
        self.bytes_spliced = Counter(
            "recordings_media_bytes_spliced",
            "Of the audio body bytes sent, those sent with splice(2) from storage's socket to the"
            " client's",
            ["format"],
            registry=r,
        )
        self.transcodes = Counter(
            "recordings_transcodes", "ffmpeg MP3 runs", ["outcome"], registry=r
        )
        self.transcode_seconds = Histogram(
            "recordings_transcode_duration_seconds",
            "ffmpeg MP3 run time",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.ffmpeg_failures = Counter(
            "recordings_ffmpeg_failures", "ffmpeg runs that made no usable output", registry=r
        )
        self.mp3_cache = Counter(
            "recordings_mp3_cache_requests", "MP3 requests by cache result", ["result"], registry=r
        )
        self.stream_refusals = Counter(
            "recordings_media_stream_refusals",
            "Media streams refused to one address, by reason (over_share: 429, stalled: 503)",
            ["reason"],
            registry=r,
        )
        self.queue_depth = Gauge(
            "recordings_mp3_queue_depth", "MP3 jobs queued or running", registry=r
        )
        self.peaks_queue_depth = Gauge(
            "recordings_peaks_queue_depth", "Peaks jobs queued or running", registry=r
        )
        self.peaks_runs = Counter(
            "recordings_peaks_runs", "ffmpeg runs decoding peaks", ["outcome"], registry=r
        )
        self.peaks_seconds = Histogram(
            "recordings_peaks_duration_seconds",
            "ffmpeg peaks run time (decode and reduction)",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.transcodes_inflight = Gauge(
            "recordings_transcodes_inflight", "MP3s being made or awaited here", registry=r
        )
        # Status callbacks, counted where they are delivered (the worker).
        self.callbacks = Counter(
            "recordings_callbacks",
            "Status callback attempts by outcome (delivered, retried, failed, refused, expired)",
            ["outcome"],
            registry=r,
        )
        self.callback_attempt_seconds = Histogram(
            "recordings_callback_attempt_duration_seconds",
            "Time of one status callback attempt, up to the receiver's answer",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.callback_delivery_delay = Histogram(
            "recordings_callback_delivery_delay_seconds",
            "From the recording's commit to its callback's delivery",
            buckets=(*_LATENCY_BUCKETS, 600.0, 3600.0, 21600.0, 86400.0),
            registry=r,
        )

        # Retention passes, counted where they run (the worker, or `recordings retention`).
        self.retention_deleted = Counter(
            "recordings_retention_deleted",
            "Recordings deleted by retention passes",
            registry=r,
        )
        self.retention_pass_seconds = Histogram(
            "recordings_retention_pass_duration_seconds",
            "Time of one retention pass",
            buckets=(*_LATENCY_BUCKETS, 600.0, 3600.0),
            registry=r,
        )

    def record_peaks(self, seconds: float, ok: bool) -> None:
        """Called by the peaks maker after each ffmpeg run."""
        self.peaks_runs.labels("ok" if ok else "failed").inc()
        self.peaks_seconds.observe(seconds)
        if not ok:
            self.ffmpeg_failures.inc()

    def record_transcode(self, seconds: float, ok: bool) -> None:
        """Called by the transcoder after each ffmpeg run."""
        self.transcodes.labels("ok" if ok else "failed").inc()
        self.transcode_seconds.observe(seconds)
        if not ok:
            self.ffmpeg_failures.inc()


def serve_metrics(registry: CollectorRegistry, host: str, port: int, token: str | None) -> None:
    """Serve ``registry`` on ``host:port`` from a thread of its own (a process with no HTTP
    server of its own: the worker), behind ``Authorization: Bearer <token>`` when one is set."""
    import hmac
    import threading
    from wsgiref.simple_server import make_server

    from prometheus_client import make_wsgi_app
    from prometheus_client.exposition import ThreadingWSGIServer, _SilentHandler

    exporter = make_wsgi_app(registry)

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        if token:
            scheme, _, presented = environ.get("HTTP_AUTHORIZATION", "").partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(
                presented.strip().encode(), token.encode()
            ):
                start_response(
                    "401 Unauthorized",
                    [("WWW-Authenticate", 'Bearer realm="Recordings metrics"')],
                )
                return [b"A valid metrics token is required\n"]
        return exporter(environ, start_response)

    server = make_server(host, port, app, ThreadingWSGIServer, handler_class=_SilentHandler)
    threading.Thread(target=server.serve_forever, daemon=True, name="metrics").start()
