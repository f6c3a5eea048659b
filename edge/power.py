"""Board power while a benchmark runs, from the power monitors Linux exposes as hwmon.

Jetson modules carry INA3221 monitors (Orin NX / Nano: ``VDD_IN``, the module's input, and
its CPU/GPU and SoC rails; AGX Orin: ``VIN_SYS_5V0`` and others), which the kernel's
ina3221 driver publishes under ``/sys/class/hwmon/hwmonN/`` as ``inK_label``, ``inK_input``
(bus voltage, mV) and ``currK_input`` (mA); monitors that compute power themselves
(ina226, ina238, ...) add ``powerK_input`` (µW). The kernel's hwmon ABI is what is read
here; no Jetson was at hand where this was written, so the reading is tested on a copy
of that layout.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge.util.proc import sysfs_text

# the rail that feeds the whole module, by the names NVIDIA's carrier boards give it
INPUT_RAILS = ("VDD_IN", "VIN_SYS_5V0", "VIN")


@dataclass(frozen=True)
class Rail:
    name: str
    volt: Path | None  # mV
    curr: Path | None  # mA
    power: Path | None  # µW, where the monitor computes it

    def read_w(self) -> float | None:
        """Watts now; None when the monitor cannot be read (a rail switched off, a race)."""
        try:
            if self.power is not None:
                return int(self.power.read_text()) / 1e6
            if self.volt is not None and self.curr is not None:
                return int(self.volt.read_text()) * int(self.curr.read_text()) / 1e6
        except (OSError, ValueError):
            return None
        return None


def find_rails(root: str | Path = "/") -> list[Rail]:
    """The labelled rails of the INA power monitors under ``root``/sys/class/hwmon."""
    rails = []
    for dev in sorted(Path(root, "sys/class/hwmon").glob("hwmon*")):
        chip = sysfs_text(dev / "name")
        if chip is None or not chip.startswith("ina"):
            continue  # temperatures, fans, ...
        for label_file in sorted(dev.glob("in*_label")):
            match = re.fullmatch(r"in(\d+)_label", label_file.name)
            label = sysfs_text(label_file)
            if match is None or not label or label.upper() == "NC":  # NC: not connected
                continue
            n = match.group(1)
            volt, curr, power = (dev / f"{kind}{n}_input" for kind in ("in", "curr", "power"))
            rail = Rail(
                name=label,
                volt=volt if volt.is_file() else None,
                curr=curr if curr.is_file() else None,
                power=power if power.is_file() else None,
            )
            if rail.power is not None or (rail.volt is not None and rail.curr is not None):
                rails.append(rail)  # "sum of shunt voltages" and the like have no current
    return rails


class PowerSampler:
    """Reads every rail each ``interval_s`` on its own thread between ``start`` and ``stop``.

    A thread rather than reading per frame: the monitors update every few milliseconds
    whatever the frame rate, and a slow sysfs read must not land in a frame's latency.
    """

    def __init__(self, rails: list[Rail], *, interval_s: float = 0.1) -> None:
        self.rails = rails
        self.interval_s = interval_s
        self._samples: dict[str, list[float]] = {r.name: [] for r in rails}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="edge-power", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while True:
            for rail in self.rails:
                watts = rail.read_w()
                if watts is not None:
                    self._samples[rail.name].append(watts)
            if self._stop.wait(self.interval_s):
                return

    def summary(self, *, frames: int, seconds: float) -> dict[str, Any]:
        """Mean and max watts per rail, and the energy of a frame from the input rail's
        mean power over the measured time (what the whole module drew, not the engines alone)."""
        rails = {
            name: {"mean_w": sum(v) / len(v), "max_w": max(v), "samples": len(v)}
            for name, v in self._samples.items()
            if v
        }
        input_rail = next((name for name in INPUT_RAILS if name in rails), None)
        energy = None
        if input_rail is not None and frames > 0 and seconds > 0:
            energy = rails[input_rail]["mean_w"] * seconds / frames * 1e3
        return {"rails": rails, "input_rail": input_rail, "energy_per_frame_mj": energy}


def power_line(power: dict[str, Any]) -> str:
    """One line for a report: the input rail and energy per frame first, then each rail."""
    rails = power.get("rails") or {}
    parts = []
    if power.get("energy_per_frame_mj") is not None:
        parts.append(f"{power['energy_per_frame_mj']:.1f} mJ per frame ({power['input_rail']})")
    parts += [f"{name} {r['mean_w']:.2f} W mean, {r['max_w']:.2f} max" for name, r in rails.items()]
    return "Board power: " + ("; ".join(parts) if parts else "no readings") + "."
