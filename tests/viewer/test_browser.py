"""The viewer page in a real headless Chromium (Debian's, driven by Playwright) against a
real `edge run` on a video file: frames must change and the charts must redraw."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.viewer.helpers import CHROMIUM, CHROMIUM_ARGS, NO_CHROMIUM, EdgeRun

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=NO_CHROMIUM),
]


@contextlib.contextmanager
def viewer_page(url: str, *, width: int, height: int) -> Iterator[tuple[Any, list[str]]]:
    """The viewer at ``url`` in a headless Chromium: the page, and the errors it has logged."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="needs playwright (the dev extra)")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
            page.goto(url)
            yield page, errors
        finally:
            browser.close()


def test_page_shows_changing_frames_and_live_charts(tiny_engines: Path, tmp_path: Path) -> None:
    run = EdgeRun.looping_video(tmp_path, tiny_engines, deadline_ms=400)
    try:
        with viewer_page(run.url, width=1400, height=900) as (page, errors):
            # predicates are functions, not strings: the page's CSP forbids eval, as it should
            page.wait_for_function(
                "() => edgeViewer.frames.panoptic >= 3 && edgeViewer.frames.depth >= 3", timeout=60_000
            )
            assert page.is_hidden("#around-panel"), "a run of one camera: nothing fused to draw"
            first = page.get_attribute("#view-panoptic", "data-seq")
            chart_before = page.evaluate("document.getElementById('chart-latency').toDataURL()")
            updates_before = page.evaluate("edgeViewer.statsUpdates")
            page.wait_for_function(
                "([seq, updates]) => Number(document.getElementById('view-panoptic').dataset.seq) > seq"
                " && edgeViewer.statsUpdates >= updates + 3",
                arg=[int(first or -1), updates_before],
                timeout=60_000,
            )
            chart_after = page.evaluate("document.getElementById('chart-latency').toDataURL()")
            assert chart_after != chart_before, "the latency chart redrew with new samples"
            # the view swaps its image every frame, and one still decoding reads 0 wide:
            # wait for a decoded one and take its width in the same look (a second look may
            # find the next image still decoding)
            decoded = page.wait_for_function(
                "() => document.getElementById('view-depth').naturalWidth || false", timeout=10_000
            )
            width = decoded.json_value()
            assert width == 256, "the depth view shows a decoded frame at the engines' width"
            assert page.inner_text("#status") == "live"
            assert float(page.inner_text("#fps")) > 0
            assert page.inner_text("#engine-panoptic").startswith("(panoptic_fpn_tiny onnxruntime fp32 ")
            assert page.inner_text("#engine-depth").startswith("(depth_tiny onnxruntime fp32 ")
            assert "ms" in page.inner_text("#e2e") and "> 400 ms" in page.inner_text("#misses")
            # the chart drew more than its axes: some pixels carry a stage's colour
            coloured = page.evaluate(
                """() => { const c = document.getElementById('chart-latency');
                const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                let n = 0; for (let i = 0; i < d.length; i += 4) if (d[i + 2] > 200 && d[i] < 120) n++;
                return n; }"""
            )
            assert coloured > 50
            shot = tmp_path / "viewer.png"
            page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 10_000
            if os.environ.get("EDGE_TEST_ARTIFACTS"):
                shutil.copy(shot, Path(os.environ["EDGE_TEST_ARTIFACTS"]) / "viewer.png")
            assert not errors, errors
    finally:
        code, _out, err = run.stop()
    assert code == 130 and "Traceback" not in err, err


THINGS = {"person", "rider", "car", "truck", "bus", "train", "motorcycle", "bicycle"}


def table_and_count(page: Any, table: str) -> tuple[list[list[str]], int]:
    """The rows of table ``table`` (each its class, then its cells' text) and the count the
    page shows beside it (``{table}-count``), in one look: the page redraws both every half
    second, and two looks could see two frames."""
    rows, count = page.evaluate(
        """(table) => [Array.from(document.querySelectorAll(`#${table} tbody tr`),
            r => [r.className, ...Array.from(r.cells, c => c.textContent)]),
          Number(document.getElementById(`${table}-count`).textContent)]""",
        table,
    )
    return rows, count


def shown_table(
    args: list[str], engines: Path, tmp_path: Path, table: str, *, rows: str
) -> tuple[list[list[str]], int]:
    """``edge run ARGS`` into a viewer, its page open until ``edgeViewer[rows]`` says the
    table ``table`` has a row: the table and its count (table_and_count); the run then
    stopped with Ctrl-C, cleanly; the page screenshot into $EDGE_TEST_ARTIFACTS if set."""
    run = EdgeRun([*args, "--engines", str(engines), "--sink", "http://127.0.0.1:0"], cwd=tmp_path)
    try:
        with viewer_page(run.url, width=1200, height=1200) as (page, errors):
            page.wait_for_function(f"() => edgeViewer.{rows} >= 1", timeout=60_000)
            assert page.is_visible(f"#{table}-panel")
            shown = table_and_count(page, table)
            if os.environ.get("EDGE_TEST_ARTIFACTS"):
                page.screenshot(path=str(Path(os.environ["EDGE_TEST_ARTIFACTS"]) / f"viewer_{table}.png"))
            assert not errors, errors
    finally:
        code, _out, err = run.stop()
    assert code == 130 and "Traceback" not in err, err
    return shown


def test_the_objects_table_lists_the_things_found_soonest_first(demo_engines: Path, tmp_path: Path) -> None:
    """A drive with things to find (the bundled weights) and a field of view: the page's
    table lists the newest frame's objects, soonest to arrive first, saying where each is
    beside the path, marked where the overlay outlines them red."""
    drive = ["synthetic://?size=128x256&fps=10&seed=1", "--realtime", "--hfov", "48.9"]
    rows, count = shown_table(drive, demo_engines, tmp_path, "objects", rows="objectRows")
    assert 1 <= len(rows) == min(count, 12)
    for marked, track, cls, distance, _closing, _arrives, beside, path in rows:
        assert marked in ("", "warn") and int(track) >= 1 and cls in THINGS
        assert float(distance) > 0 and (beside == "–" or abs(float(beside)) < 200)
        assert path in ("in it", "beside", "no path", "–") or path.startswith("cutting in, ")
    arrive = [float(r[5]) if r[5] != "–" else float("inf") for r in rows]
    assert arrive == sorted(arrive), "soonest first"


def test_the_warnings_table_lists_the_runs_warnings_newest_first(demo_engines: Path, tmp_path: Path) -> None:
    """A drive where things cross into the path: the page's warnings table lists the lines
    of the run's warnings log, newest first, warnings marked; its count is the lines in all."""
    drive = ["synthetic://?size=128x256&fps=10&seed=2&cut_ins=3", "--realtime"]
    rows, count = shown_table(drive, demo_engines, tmp_path, "warnings", rows="warningRows")
    assert 1 <= len(rows) == min(count, 20)
    for marked, _time, event, track, cls, why, _distance, _arrives, _warned in rows:
        assert (marked, event) in (("warn", "warning"), ("", "clear")) and int(track) >= 1
        assert cls in THINGS
        assert why in ("in_path", "cut_in", "no_path", "–", "run ended")


def test_each_cameras_page_names_its_camera(tiny_engines: Path, tmp_path: Path) -> None:
    """edge run --camera into the viewer: a page a camera, its title and header naming it
    (two tabs of one run are told apart), and links to each camera's page, followed here."""
    run = EdgeRun(
        [
            *("--camera", "front=synthetic://?size=128x256&fps=10"),
            *("--camera", "rear=synthetic://?size=128x256&fps=10&seed=1"),
            *("--realtime", "--engines", str(tiny_engines), "--sink", "http://127.0.0.1:0"),
        ],
        cwd=tmp_path,
    )
    try:  # run.url is the first viewer's: the front camera's
        with viewer_page(run.url, width=1200, height=800) as (page, errors):
            page.wait_for_function(
                "() => document.getElementById('camera').textContent === 'camera front'", timeout=60_000
            )
            assert page.is_visible("#camera") and page.title() == "edge — camera front"
            page.wait_for_function("() => document.querySelectorAll('#cameras a').length === 3")
            links = page.eval_on_selector_all(
                "#cameras a", "links => links.map(a => [a.textContent, a.getAttribute('aria-current')])"
            )
            assert links == [["front", "page"], ["rear", None], ["all", None]]
            page.click("#cameras a:not([aria-current]):not(#all-cameras)")
            page.wait_for_function("() => document.title === 'edge — camera rear'", timeout=60_000)
            # the title comes with the page, its deferred script a little later
            page.wait_for_function(
                "() => window.edgeViewer && edgeViewer.frames.panoptic >= 1", timeout=60_000
            )
            assert page.eval_on_selector("#cameras a[aria-current]", "a => a.textContent") == "rear"
            assert not errors, errors
    finally:
        code, _out, err = run.stop()
    assert code == 130 and "Traceback" not in err, err


def test_every_cameras_pictures_on_one_page(tiny_engines: Path, tmp_path: Path) -> None:
    """/cameras, linked from each camera's page: every camera's pictures, each streamed by its
    own viewer on the host the browser used (the page's policy lets it show them: a refused
    picture would be an error logged), each captioned and linked to its camera's page."""
    run = EdgeRun(
        [
            *("--camera", "front=synthetic://?size=128x256&fps=10"),
            *("--camera", "rear=synthetic://?size=128x256&fps=10&seed=1"),
            *("--realtime", "--engines", str(tiny_engines), "--sink", "http://127.0.0.1:0"),
        ],
        cwd=tmp_path,
    )
    try:
        with viewer_page(run.url, width=1200, height=800) as (page, errors):
            page.wait_for_selector("#all-cameras", timeout=60_000)
            page.click("#all-cameras")
            page.wait_for_function("() => document.title === 'edge — every camera'", timeout=30_000)
            # the title comes with the page, its deferred script a little later
            page.wait_for_function(
                "() => window.edgeCameras && Object.values(edgeCameras).length === 2"
                " && Object.values(edgeCameras).every(img => img.naturalWidth > 0)",
                timeout=60_000,
            )
            captions = page.eval_on_selector_all("figcaption a", "links => links.map(a => a.textContent)")
            assert captions == ["camera front", "camera rear"]
            widths = page.evaluate("Object.values(edgeCameras).map(img => img.naturalWidth)")
            assert widths == [512, 512], "each camera's overlay | depth, side by side"
            assert not errors, errors
    finally:
        code, _out, err = run.stop()
    assert code == 130 and "Traceback" not in err, err


def test_the_things_around_the_vehicle_drawn_from_above(demo_engines: Path, tmp_path: Path) -> None:
    """/cameras of a run of several cameras, and each camera's page, draw the fusion its viewer
    holds: two cameras mounted alike given one drive, a thing both see is one dot, labelled with
    both cameras; each dot is drawn where the thing is, in its colour (read back from the
    canvas's pixels)."""
    drive = "synthetic://?size=128x256&fps=10&seed=2&lane=right"
    run = EdgeRun(
        [
            *("--camera", f"a={drive}", "--camera", f"b={drive}", "--hfov", "48.9", "--realtime"),
            *("--engines", str(demo_engines), "--sink", "http://127.0.0.1:0"),
        ],
        cwd=tmp_path,
    )
    try:
        for page_path in ("cameras", ""):  # /cameras, then camera a's own page
            check_around_drawn(run.url + page_path)
    finally:
        code, _out, err = run.stop()
    assert code == 130 and "Traceback" not in err, err


def check_around_drawn(url: str) -> None:
    """The page at ``url`` draws a thing both cameras see, each dot in its colour where it is."""
    with viewer_page(url, width=1200, height=900) as (page, errors):
        page.wait_for_function(
            "() => edgeAround.things.some(t => t.cameras === 'a+b')", timeout=90_000, polling=100
        )
        assert page.is_visible("#around")
        things, pixels, said = page.evaluate(
            """() => { const c = document.getElementById('around').getContext('2d');
                const things = edgeAround.things.slice();
                const pixels = things.map(t => Array.from(c.getImageData(t.x, t.y, 1, 1).data.slice(0, 3)));
                return [things, pixels, document.getElementById('around-said').textContent]; }"""
        )
        colours = {"#ff3030": [255, 48, 48], "#f0a04b": [240, 160, 75], "#5aa9e6": [90, 169, 230]}
        assert things and said.startswith(f"{len(things)} placed")
        assert all(pixel in colours.values() for pixel in pixels), (things, pixels)
        assert any(colours[t["colour"]] == pixel for t, pixel in zip(things, pixels, strict=True))
        assert all(0 <= t["x"] < 480 and 0 <= t["y"] < 480 for t in things)
        assert page.evaluate("edgeAround.views") == ["a", "b"], "each camera's view drawn"
        assert not errors, errors


def test_edge_record_shows_the_camera_alone(tmp_path: Path) -> None:
    """`edge record` into the viewer (a headless board's camera watched from a laptop): one
    panel with the frames as recorded, changing, instead of the engines' two views."""
    from tests.stream.test_capture import Camera

    camera = Camera(fps=30.0)
    run = EdgeRun([camera.url, "drive.avi", "http://127.0.0.1:0"], cwd=tmp_path, command="record")
    try:
        with viewer_page(run.url, width=1000, height=800) as (page, errors):
            page.wait_for_function(
                "() => edgeViewer.camera && edgeViewer.frames.composite >= 3", timeout=60_000
            )
            first = int(page.get_attribute("#view-composite", "data-seq") or -1)
            page.wait_for_function(
                "(seq) => Number(document.getElementById('view-composite').dataset.seq) > seq",
                arg=first,
                timeout=60_000,
            )
            assert page.is_visible("#figure-composite")
            assert not page.is_visible("#figure-panoptic") and not page.is_visible("#figure-depth")
            assert page.evaluate("edgeViewer.frames.panoptic + edgeViewer.frames.depth") == 0
            # no deadline in a recording: no counter of its misses, and its latency is the write's
            assert not page.is_visible("#counter-misses") and page.is_visible("#drops")
            assert page.text_content("#e2e-label") == "capture to written p50 / p99"
            decoded = page.wait_for_function(
                "() => document.getElementById('view-composite').naturalWidth || false", timeout=10_000
            )
            assert decoded.json_value() == 192, "the camera's frames at their own size"
            page.wait_for_function(
                "() => Number(document.getElementById('fps').textContent) > 0", timeout=30_000
            )
            assert not errors, errors
    finally:
        code, out, err = run.stop()
        camera.unplug()
    assert code == 130 and "Traceback" not in err, err
    assert "recorded " in out and "http://127.0.0.1:" in out
