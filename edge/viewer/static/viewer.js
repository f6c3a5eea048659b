// The edge live viewer: newest frames by long poll, statistics by polling /stats,
// charts drawn on canvases (no third-party code: the page must work with no network).
"use strict";

const HISTORY = 240; // samples kept for the charts (two minutes at 2 Hz)
const STATS_PERIOD_MS = 500;
const PALETTE = ["#4e9af1", "#f0a04b", "#5bd17a", "#e55c7a", "#b48af0", "#46c8c8", "#d6d65a", "#c0c0c0"];

// what the page has done so far, for people and for tests
const state = {
  frames: { panoptic: 0, depth: 0, composite: 0 },
  lastSeq: { panoptic: -1, depth: -1, composite: -1 },
  camera: false, // edge record: its frames alone, in one panel
  statsUpdates: 0,
  chartDraws: 0,
  objectRows: 0, // rows the objects table shows now
  objectsSeq: null, // the frame they are of
  warningRows: 0, // rows the warnings table shows now
  samples: [],
};
window.edgeViewer = state;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const $ = (id) => document.getElementById(id);

function setStatus(text) {
  const el = $("status");
  el.textContent = text;
  el.className = text;
}

async function frameLoop(view) {
  const img = $("view-" + view);
  let shownUrl = null;
  for (;;) {
    try {
      const after = state.lastSeq[view];
      const response = await fetch(`/frame/${view}.jpg?after=${after}`, { cache: "no-store" });
      if (response.status === 200) {
        const seq = parseInt(response.headers.get("X-Frame-Seq"), 10);
        const url = URL.createObjectURL(await response.blob());
        img.src = url;
        await img.decode().catch(() => undefined);
        if (shownUrl) URL.revokeObjectURL(shownUrl);
        shownUrl = url;
        img.dataset.seq = String(seq);
        state.lastSeq[view] = seq;
        state.frames[view] += 1;
      } else if (response.status === 503) {
        await sleep(500); // no frame of this view yet (or this engine is not running)
      } else if (response.status !== 204) {
        await sleep(1000);
      }
    } catch (err) {
      setStatus("lost");
      await sleep(1000);
    }
  }
}

// edge record publishes the camera's frames alone: one panel for them, instead of the two
// views of the engines it does not run (asked for, they would only answer 503)
async function startFrames() {
  for (;;) {
    try {
      const snap = await (await fetch("/stats", { cache: "no-store" })).json();
      state.camera = Boolean(snap.pictures_only);
      break;
    } catch (err) {
      setStatus("lost");
      await sleep(1000);
    }
  }
  $("figure-panoptic").hidden = state.camera;
  $("figure-depth").hidden = state.camera;
  $("figure-composite").hidden = !state.camera;
  if (state.camera) {
    // a recording has no deadline, and its frames end when they are written
    $("counter-misses").hidden = true;
    $("e2e-label").textContent = "capture to written p50 / p99";
    $("caption-counters").textContent = "frames the camera dropped (total)";
  }
  for (const view of state.camera ? ["composite"] : ["panoptic", "depth"]) frameLoop(view);
}

function sampleOf(snap) {
  const stages = {};
  for (const [name, st] of Object.entries(snap.stages_ms || {})) {
    if (st.count) stages[name] = { p50: st.p50, p99: st.p99 };
  }
  return {
    t: snap.t, seq: snap.seq, fps: snap.fps || 0, drops: snap.drops || 0,
    deadline_misses: snap.deadline_misses || 0, stages,
  };
}

function fmt(x, digits = 1) {
  return x === undefined || x === null || Number.isNaN(x) ? "–" : Number(x).toFixed(digits);
}

// a link to each camera's viewer, on its own port of the host this page came from (the
// address the browser reached the run by, whatever the run was told to bind)
function showCameraLinks(current, cameras) {
  const nav = $("cameras");
  if (cameras.length < 2 || nav.childElementCount) return;
  for (const { name, port } of cameras) {
    const link = document.createElement("a");
    link.textContent = name;
    link.href = `${location.protocol}//${location.hostname}:${port}/`;
    if (name === current) link.setAttribute("aria-current", "page");
    nav.appendChild(link);
  }
  const every = document.createElement("a"); // every camera's pictures on one page
  every.textContent = "all";
  every.href = "/cameras";
  every.id = "all-cameras";
  nav.appendChild(every);
  nav.hidden = false;
}

function showCounters(snap) {
  if (snap.camera) { // one of several cameras, each in a viewer of its own
    $("camera").textContent = `camera ${snap.camera}`;
    $("camera").hidden = false;
    document.title = `edge — camera ${snap.camera}`;
    showCameraLinks(snap.camera, snap.cameras || []);
  }
  $("seq").textContent = snap.seq === null ? "–" : String(snap.seq);
  $("fps").textContent = fmt(snap.fps);
  const e2e = (snap.stages_ms || {}).end_to_end;
  $("e2e").textContent = e2e && e2e.count ? `${fmt(e2e.p50)} / ${fmt(e2e.p99)} ms` : "–";
  $("drops").textContent = String(snap.drops ?? "–");
  $("misses").textContent = snap.deadline_ms ? `${snap.deadline_misses} (> ${snap.deadline_ms} ms)` : "no deadline set";
  for (const kind of ["panoptic", "depth"]) {
    const engine = (snap.engines || {})[kind];
    $(`engine-${kind}`).textContent = engine ? `(${engine})` : "(no engine)";
  }
  $("reconnects").textContent = snap.reconnects
    ? `${snap.reconnects} (${fmt(snap.source_gap_ms / 1000)} s lost)` : "0";
}

async function statsLoop() {
  try {
    const history = await (await fetch("/history", { cache: "no-store" })).json();
    state.samples = history.map((s) => ({ ...s, stages: s.stages_ms || {} }));
  } catch (err) { /* the loop below reports the connection state */ }
  let lastPublished = -1;
  let still = 0;
  for (;;) {
    try {
      const snap = await (await fetch("/stats", { cache: "no-store" })).json();
      // a restarted server counts frames from 0 again
      for (const view of Object.keys(state.lastSeq)) {
        if (snap.seq !== null && snap.seq < state.lastSeq[view]) state.lastSeq[view] = -1;
      }
      still = snap.published === lastPublished ? still + 1 : 0;
      lastPublished = snap.published;
      setStatus(still > 6 ? "idle" : "live");
      state.samples.push(sampleOf(snap));
      if (state.samples.length > HISTORY) state.samples.splice(0, state.samples.length - HISTORY);
      state.statsUpdates += 1;
      showCounters(snap);
      if (!state.camera) { showObjects(snap); showWarnings(snap); edgeShowAround(snap); }
      drawCharts();
    } catch (err) {
      setStatus("lost");
    }
    await sleep(STATS_PERIOD_MS);
  }
}

// the newest frame's objects: soonest to arrive first, then nearest; where the track says
// where it is beside the path, whether it is in it or cutting in
const MAX_OBJECT_ROWS = 12;

function pathText(o) {
  if (o.in_path === undefined || o.in_path === null) return o.lateral_m === undefined ? "–" : "no path";
  if (o.in_path) return "in it";
  return o.path_in_s === null || o.path_in_s === undefined ? "beside" : `cutting in, ${fmt(o.path_in_s)} s`;
}

function showObjects(snap) {
  const objects = (snap.objects || []).slice();
  // how far: the tracker's distance (range_m: read from the road, or the depth map's scaled
  // to the road's recent readings while the feet are hidden), else the depth map's
  const far = (o) => o.range_m ?? o.distance_m;
  const key = (o) => [o.ttc_s ?? Infinity, far(o) ?? Infinity];
  objects.sort((a, b) => { const [ta, da] = key(a), [tb, db] = key(b); return ta - tb || da - db; });
  const body = $("objects").tBodies[0];
  body.replaceChildren();
  for (const o of objects.slice(0, MAX_OBJECT_ROWS)) {
    const row = body.insertRow();
    if (o.warn) row.className = "warn";
    const cells = [o.track ?? "–", o["class"], fmt(far(o)), fmt(o.closing_mps), fmt(o.ttc_s),
      fmt(o.lateral_m), pathText(o)];
    for (const text of cells) row.insertCell().textContent = String(text);
  }
  $("objects-count").textContent = String(objects.length);
  $("objects-panel").hidden = false;
  state.objectRows = body.rows.length;
  state.objectsSeq = snap.objects_seq;
}

// the newest lines of the warnings log: a thing came to be warned of (outlined red), or
// was cleared; shown once there is one
function showWarnings(snap) {
  const lines = snap.warnings || [];
  if (!lines.length) return;
  const body = $("warnings").tBodies[0];
  body.replaceChildren();
  for (const w of lines) {
    const row = body.insertRow();
    if (w.event === "warning") row.className = "warn";
    const time = new Date(w.time_unix * 1000).toLocaleTimeString();
    const cells = [time, w.event, w.track, w["class"], w.why ?? (w.ended ? "run ended" : "–"),
      fmt(w.range_m ?? w.distance_m), fmt(w.ttc_s), fmt(w.warned_s)];
    for (const text of cells) row.insertCell().textContent = String(text);
  }
  $("warnings-count").textContent = String(snap.warnings_total);
  $("warnings-panel").hidden = false;
  state.warningRows = body.rows.length;
}

// charts ---------------------------------------------------------------------------

function drawChart(canvas, series, unit) {
  const ctx = canvas.getContext("2d");
  const w = canvas.width, h = canvas.height;
  const pad = { l: 46, r: 8, t: 8, b: 22 };
  ctx.clearRect(0, 0, w, h);
  ctx.font = "11px system-ui, sans-serif";
  const n = Math.max(2, ...series.map((s) => s.values.length));
  let ymax = 0;
  for (const s of series) for (const v of s.values) if (Number.isFinite(v)) ymax = Math.max(ymax, v);
  ymax = niceCeil(ymax || 1);
  const x = (i) => pad.l + (i / (n - 1)) * (w - pad.l - pad.r);
  const y = (v) => h - pad.b - (v / ymax) * (h - pad.t - pad.b);
  ctx.strokeStyle = "#2c333d";
  ctx.fillStyle = "#8a94a3";
  for (let k = 0; k <= 4; k++) {
    const v = (ymax * k) / 4;
    ctx.beginPath(); ctx.moveTo(pad.l, y(v)); ctx.lineTo(w - pad.r, y(v)); ctx.stroke();
    ctx.fillText(`${fmt(v, v < 1 ? 2 : v < 10 ? 1 : 0)}${k === 4 ? " " + unit : ""}`, 4, y(v) + 4);
  }
  ctx.fillText(`last ${Math.round((n * STATS_PERIOD_MS) / 1000)} s`, pad.l, h - 6);
  let legendX = pad.l + 90;
  for (const s of series) {
    ctx.strokeStyle = s.color;
    ctx.lineWidth = 1.6;
    ctx.setLineDash(s.dashed ? [5, 4] : []);
    ctx.beginPath();
    let started = false;
    const offset = n - s.values.length;
    s.values.forEach((v, i) => {
      if (!Number.isFinite(v)) { started = false; return; }
      if (started) ctx.lineTo(x(i + offset), y(v)); else { ctx.moveTo(x(i + offset), y(v)); started = true; }
    });
    ctx.stroke();
    ctx.setLineDash([]);
    if (s.label) {
      ctx.fillStyle = s.color;
      ctx.fillText(s.label, legendX, h - 6);
      legendX += ctx.measureText(s.label).width + 14;
      ctx.fillStyle = "#8a94a3";
    }
  }
  ctx.lineWidth = 1;
}

function niceCeil(v) {
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 2.5, 5, 10]) if (v <= m * p) return m * p;
  return 10 * p;
}

function drawCharts() {
  const samples = state.samples;
  const names = [];
  for (const s of samples) for (const name of Object.keys(s.stages || {})) if (!names.includes(name)) names.push(name);
  const latency = [];
  names.forEach((name, i) => {
    const color = PALETTE[i % PALETTE.length];
    const p50 = samples.map((s) => (s.stages[name] ? s.stages[name].p50 : NaN));
    const p99 = samples.map((s) => (s.stages[name] ? s.stages[name].p99 : NaN));
    latency.push({ values: p50, color, label: name }, { values: p99, color, dashed: true });
  });
  drawChart($("chart-latency"), latency, "ms");
  drawChart($("chart-fps"), [{ values: samples.map((s) => s.fps), color: PALETTE[2], label: "fps" }], "fps");
  drawChart($("chart-counters"), [
    { values: samples.map((s) => s.drops), color: PALETTE[1], label: "drops" },
    ...(state.camera ? [] : [
      { values: samples.map((s) => s.deadline_misses), color: PALETTE[3], label: "deadline misses" },
    ]),
  ], "");
  state.chartDraws += 1;
}

startFrames();
statsLoop();
