"""Board temperatures from thermal zones, read from a copy of the sysfs layout Linux
publishes (Jetson Orin's zone names; no Jetson here)."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.thermal import find_zones


def fake_thermal(root: Path) -> Path:
    """Orin-like zones: CPU and GPU, one whose sensor is off (-256 °C, as Orin's CV zones read
    when their engines are powered down), one that cannot be read, two of one type, and a
    cooling device that is no zone."""
    base = root / "sys/class/thermal"
    zones = {
        0: ("cpu-thermal", "45500"),
        1: ("gpu-thermal", "47000"),
        2: ("cv0-thermal", "-256000"),
        3: ("soc0-thermal", "not a number"),
        10: ("tboard-thermal", "39000"),
        11: ("tboard-thermal", "-12500"),  # a cold morning is a temperature
    }
    for n, (kind, temp) in zones.items():
        zone = base / f"thermal_zone{n}"
        zone.mkdir(parents=True)
        (zone / "type").write_text(kind + "\n")
        (zone / "temp").write_text(temp + "\n")
    (base / "thermal_zone12").mkdir()  # no temp file: skipped
    (base / "cooling_device0").mkdir()
    (base / "cooling_device0" / "type").write_text("pwm-fan\n")
    return base


def test_zones_are_found_in_their_numbers_order_and_read_in_celsius(tmp_path: Path) -> None:
    fake_thermal(tmp_path)
    zones = find_zones(tmp_path)
    assert [z.name for z in zones] == [
        "cpu-thermal",
        "gpu-thermal",
        "cv0-thermal",
        "soc0-thermal",
        "tboard-thermal#10",
        "tboard-thermal#11",
    ]
    assert [z.read_c() for z in zones] == [pytest.approx(45.5), 47.0, None, None, 39.0, -12.5]
    assert find_zones(tmp_path / "elsewhere") == []  # no thermal zones: nothing, quietly
