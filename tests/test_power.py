"""Board power from hwmon power monitors, read from a copy of the sysfs layout the kernel's
ina3221 driver publishes on Jetson modules (no Jetson here), and its place in edge bench."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from edge.power import PowerSampler, find_rails, power_line
from edge.report import write_report
from edge.schemas import check_document
from tests.test_bench import short_bench


def fake_sysfs(root: Path) -> Path:
    """An Orin NX-like board: one INA3221 (input, CPU/GPU/CV and SoC rails, a channel not
    connected, the sum channel), a monitor that reports power itself, and a thermal zone."""
    ina = root / "sys/class/hwmon/hwmon1"
    ina.mkdir(parents=True)
    files = {
        "name": "ina3221",
        "in1_label": "VDD_IN",
        "in1_input": "5000",
        "curr1_input": "1200",
        "in2_label": "VDD_CPU_GPU_CV",
        "in2_input": "5000",
        "curr2_input": "400",
        "in3_label": "NC",
        "in3_input": "0",
        "curr3_input": "0",
        "in7_label": "sum of shunt voltages",
        "in7_input": "88",
    }
    for name, text in files.items():
        (ina / name).write_text(text + "\n")
    other = root / "sys/class/hwmon/hwmon2"
    other.mkdir()
    for name, text in {"name": "ina238", "in1_label": "VDD_SOC", "power1_input": "1500000"}.items():
        (other / name).write_text(text + "\n")
    thermal = root / "sys/class/hwmon/hwmon0"
    thermal.mkdir()
    (thermal / "name").write_text("cpu_thermal\n")
    (thermal / "temp1_input").write_text("45000\n")
    return ina


def test_rails_are_found_and_read_in_watts(tmp_path: Path) -> None:
    fake_sysfs(tmp_path)
    rails = find_rails(tmp_path)
    assert [r.name for r in rails] == ["VDD_IN", "VDD_CPU_GPU_CV", "VDD_SOC"]
    assert [r.read_w() for r in rails] == [pytest.approx(6.0), pytest.approx(2.0), pytest.approx(1.5)]
    assert find_rails(tmp_path / "elsewhere") == []  # not a Jetson: nothing, quietly


def test_sampler_averages_over_the_run_and_gives_energy_per_frame(tmp_path: Path) -> None:
    ina = fake_sysfs(tmp_path)
    sampler = PowerSampler(find_rails(tmp_path), interval_s=0.01)

    def vdd_in_max() -> float:
        deadline = time.monotonic() + 30
        while not (rail := sampler.summary(frames=1, seconds=1.0)["rails"].get("VDD_IN")):
            assert time.monotonic() < deadline
            time.sleep(0.01)
        return float(rail["max_w"])

    sampler.start()
    vdd_in_max()  # read at 6 W at least once
    (ina / "curr1_input").write_text("2000\n")  # the module draws more: 10 W
    deadline = time.monotonic() + 30
    while vdd_in_max() < 9.9:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    sampler.stop()
    summary = sampler.summary(frames=20, seconds=2.0)
    vdd_in = summary["rails"]["VDD_IN"]
    assert vdd_in["max_w"] == pytest.approx(10.0) and 6.0 < vdd_in["mean_w"] < 10.0
    assert summary["input_rail"] == "VDD_IN"
    assert summary["energy_per_frame_mj"] == pytest.approx(vdd_in["mean_w"] * 2.0 / 20 * 1e3)
    line = power_line(summary)
    assert line.startswith(
        f"Board power: {summary['energy_per_frame_mj']:.1f} mJ per frame (VDD_IN); VDD_IN "
    )


def test_bench_reports_board_power_where_the_board_has_monitors(tiny_engines: Path, tmp_path: Path) -> None:
    fake_sysfs(tmp_path / "board")

    def bench(power_root: Path) -> dict:
        return short_bench(tiny_engines, power_root=power_root)

    data = bench(tmp_path / "board")
    (r,) = data["results"]
    power = r["power"]
    assert power["input_rail"] == "VDD_IN" and power["rails"]["VDD_IN"]["mean_w"] == pytest.approx(6.0)
    assert power["energy_per_frame_mj"] == pytest.approx(6.0 * r["seconds"] / r["frames"] * 1e3)
    assert check_document("bench", json.dumps(data)) is None  # edge schema bench: the rails' fields
    report = write_report(data, tmp_path / "rep")
    assert (
        "Board power: " in report["markdown"].read_text()
        and "mJ per frame (VDD_IN)" in report["html"].read_text()
    )
    assert "power" not in bench(tmp_path / "no-monitors")["results"][0]
