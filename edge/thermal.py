"""Board temperatures from the thermal zones Linux exposes, for a live run's /metrics.

Each ``/sys/class/thermal/thermal_zoneN`` has a ``type`` (on Jetson Orin: ``cpu-thermal``,
``gpu-thermal``, ``soc0-thermal``, ``tj-thermal`` and others) and a ``temp`` in
millidegrees Celsius. A zone whose sensor is switched off reads an error, or on Jetson a
value far below anything a board runs at (-256 °C): neither is a temperature, so neither is
given. As edge.power's rails, the reading is tested on a copy of that layout (no Jetson here).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

# below this a reading is a sensor that is off, not a cold car (automotive parts go to -40 °C)
LOWEST_C = -100.0


@dataclass(frozen=True)
class Zone:
    name: str
    temp: Path  # millidegrees Celsius

    def read_c(self) -> float | None:
        """Degrees Celsius now; None when the zone cannot be read or its sensor is off."""
        try:
            celsius = int(self.temp.read_text()) / 1e3
        except (OSError, ValueError):
            return None
        return celsius if celsius >= LOWEST_C else None


def find_zones(root: str | Path = "/") -> list[Zone]:
    """The thermal zones under ``root``/sys/class/thermal, in their numbers' order; a type
    that several zones share is told apart by the zone's number (``type#N``)."""
    found: list[tuple[int, str, Path]] = []
    for zone in Path(root, "sys/class/thermal").glob("thermal_zone*"):
        match = re.fullmatch(r"thermal_zone(\d+)", zone.name)
        temp = zone / "temp"
        if match is None or not temp.is_file():
            continue
        try:
            kind = (zone / "type").read_text().strip()
        except OSError:
            continue
        found.append((int(match.group(1)), kind or zone.name, temp))
    found.sort()
    kinds = [kind for _, kind, _ in found]
    return [
        Zone(name=kind if kinds.count(kind) == 1 else f"{kind}#{n}", temp=temp) for n, kind, temp in found
    ]
