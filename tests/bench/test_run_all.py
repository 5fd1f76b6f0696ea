"""run_all flags a figure worse than the last recorded run beyond its noise, and records runs."""

import json

from bench import run_all
from bench.common import Figure, regressed


def figure(value, unit="ms", target="", **extra) -> dict:
    return {**Figure("fanout", "p99", value, unit, target).__dict__, **extra}


def test_a_latency_beyond_its_noise_is_worse_and_within_it_is_not():
    assert regressed(figure(130.0, target="≤ 100 ms"), {"value": 100.0})
    assert not regressed(figure(120.0, target="≤ 100 ms"), {"value": 100.0})
    assert not regressed(figure(50.0, target="≤ 100 ms"), {"value": 100.0})


def test_a_throughput_is_worse_when_it_falls():
    assert regressed(figure(700.0, unit="req/s"), {"value": 1000.0})
    assert not regressed(figure(1300.0, unit="req/s"), {"value": 1000.0})


def test_a_count_that_should_be_zero_is_worse_as_soon_as_it_is_not():
    assert regressed(figure(1, unit="", target="0"), {"value": 0})


def test_figures_without_a_direction_or_a_number_are_not_compared():
    assert regressed(figure("yes", unit=""), {"value": "no"}) is None
    assert regressed(figure(3.0, unit="×"), {"value": 5.0}) is None
    assert regressed(figure(3.0), None) is None


def test_a_recorded_run_is_what_the_next_run_is_compared_with(tmp_path, monkeypatch):
    monkeypatch.setattr(run_all, "LAST", tmp_path / "bench-last.json")
    runs = [{"benchmark": "fanout", "summary": [figure(100.0, target="≤ 150 ms")]}]
    run_all.record("full", runs, {"loadavg": [0.1, 0.1, 0.1]})
    other = [{"benchmark": "sweep", "summary": [{**figure(0.5, unit="s"), "benchmark": "sweep"}]}]
    run_all.record("full", other, {})

    last = run_all.last_recorded("full")

    # It should keep the fan-out figure when only the sweep ran again.
    assert sorted(last) == ["fanout: p99", "sweep: p99"]
    assert run_all.comparison(figure(140.0, target="≤ 150 ms"), last) == ("100 ms", "WORSE")
    assert run_all.comparison(figure(110.0, target="≤ 150 ms"), last) == ("100 ms", "")
    assert json.loads((tmp_path / "bench-last.json").read_text())["full"]["recorded_at"]
