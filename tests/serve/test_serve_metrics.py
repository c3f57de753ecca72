"""The thermal series: present with the reading a thermal zone gives, absent where there is none."""

from prometheus_client.parser import text_string_to_metric_families

from edgecnn.serve.metrics import ServeMetrics


def families(metrics: ServeMetrics) -> dict:
    body, _ = metrics.exposition()
    return {f.name: f for f in text_string_to_metric_families(body.decode())}


def test_temperature_comes_from_the_thermal_zone(tmp_path):
    zone = tmp_path / "temp"
    zone.write_text("61234\n")  # millidegrees, as sysfs writes it
    metrics = ServeMetrics(["a"], ["/x"], temperature_path=zone)
    assert families(metrics)["edgecnn_cpu_temperature_celsius"].samples[0].value == 61.2
    zone.write_text("48000\n")  # read at each scrape, not once
    assert families(metrics)["edgecnn_cpu_temperature_celsius"].samples[0].value == 48.0


def test_no_thermal_zone_no_temperature_series(tmp_path):
    found = families(ServeMetrics(["a"], ["/x"], temperature_path=tmp_path / "absent"))
    assert "edgecnn_cpu_temperature_celsius" not in found
    assert "edgecnn_http_requests" in found  # the rest is still there
