// The things around the vehicle, every camera's at once, drawn from above, ahead up (the
// fusion each camera's viewer keeps: /stats around, edge.viewer.around), with each camera's
// view: on /cameras and on each camera's page of a run of several cameras, in the page's
// <figure id="around-panel" hidden>.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  // the drawing's reach ahead, behind and to each side: the least that holds every thing placed
  const REACHES_M = [10, 20, 40, 80, 160];
  const VEHICLE_M = [1.9, 4.6]; // width, length: a car's, about its reference point
  // what the tests read
  const around = { updates: 0, frame: null, camera: null, reach_m: null, things: [], views: [] };

  function reachOf(things) {
    const far = Math.max(0, ...things.map((t) => Math.max(Math.abs(t.lateral_m), Math.abs(t.ahead_m))));
    return REACHES_M.find((r) => r >= far * 1.1) || REACHES_M[REACHES_M.length - 1];
  }

  // vehicle metres -> canvas pixels: right is right, ahead is up, the reference point in the middle
  function pixelsOf(canvas, reach) {
    const scale = canvas.height / 2 / reach;
    return (lateral, ahead) => [canvas.width / 2 + lateral * scale, canvas.height / 2 - ahead * scale];
  }

  function colourOf(thing) {
    if (thing.warned) return "#ff3030";
    return thing.in_path ? "#f0a04b" : "#5aa9e6";
  }

  // a camera's view: from where it is mounted, between its field of view's edges, out past the
  // drawing (yaw left of straight ahead; on the canvas, ahead is up and a turn left anticlockwise)
  function drawView(ctx, at, reach, view) {
    if (view.hfov_deg === null) return;
    const [x, y] = at(view.lateral_m, view.ahead_m);
    const [x1] = at(view.lateral_m + 2 * reach, view.ahead_m);
    const angleOf = (yaw) => Math.atan2(-Math.cos(yaw * Math.PI / 180), -Math.sin(yaw * Math.PI / 180));
    ctx.fillStyle = "rgba(138, 148, 163, 0.14)";
    ctx.beginPath();
    ctx.moveTo(x, y);
    ctx.arc(x, y, x1 - x, angleOf(view.yaw_deg + view.hfov_deg / 2), angleOf(view.yaw_deg - view.hfov_deg / 2));
    ctx.closePath();
    ctx.fill();
    const mid = angleOf(view.yaw_deg);
    ctx.fillStyle = "#8a94a3";
    ctx.fillText(view.camera, x + Math.cos(mid) * 40 - 10, y + Math.sin(mid) * 40 + 4);
  }

  function drawAround(line, views) {
    const canvas = $("around");
    const ctx = canvas.getContext("2d");
    const placed = line.things.filter((t) => t.lateral_m !== null && t.ahead_m !== null);
    const reach = reachOf(placed);
    const at = pixelsOf(canvas, reach);
    ctx.fillStyle = "#000";
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    ctx.font = "11px system-ui, sans-serif";
    for (const view of views) drawView(ctx, at, reach, view);
    ctx.strokeStyle = "#2c333d";
    ctx.fillStyle = "#8a94a3";
    for (const ring of [reach / 2, reach]) { // how far, in rings about the reference point
      const [x0] = at(0, 0);
      const [x1] = at(ring, 0);
      ctx.beginPath();
      ctx.arc(x0, canvas.height / 2, x1 - x0, 0, 2 * Math.PI);
      ctx.stroke();
      ctx.fillText(`${ring} m`, x0 + 3, at(0, ring)[1] + 12);
    }
    const [left, front] = at(-VEHICLE_M[0] / 2, VEHICLE_M[1] / 2);
    const [right, back] = at(VEHICLE_M[0] / 2, -VEHICLE_M[1] / 2);
    ctx.fillStyle = "#e6e9ee";
    ctx.fillRect(left, front, Math.max(2, right - left), Math.max(3, back - front));
    around.things = [];
    for (const thing of placed) {
      const [x, y] = at(thing.lateral_m, thing.ahead_m);
      ctx.fillStyle = colourOf(thing);
      ctx.beginPath();
      ctx.arc(x, y, 6, 0, 2 * Math.PI);
      ctx.fill();
      const cameras = thing.seen_by.map((s) => s.camera).join("+");
      ctx.fillText(`${thing.id} ${thing.class} (${cameras})`, x + 8, y + 4);
      around.things.push({ id: thing.id, x: Math.round(x), y: Math.round(y), colour: colourOf(thing), cameras });
    }
    const unplaced = line.things.length - placed.length;
    $("around-said").textContent = `${placed.length} placed` + (unplaced ? `, ${unplaced} of no place` : "")
      + `, ${reach} m each way`;
    around.reach_m = reach;
    around.views = views.filter((v) => v.hfov_deg !== null).map((v) => v.camera);
    around.frame = line.frame;
    around.camera = line.camera;
    around.updates += 1;
  }

  function captionOf() {
    const caption = document.createElement("figcaption");
    const said = document.createElement("span");
    said.id = "around-said";
    said.textContent = "waiting";
    caption.append("around the vehicle, every camera at once: ", said);
    return caption;
  }

  function canvasOf() {
    const canvas = document.createElement("canvas");
    canvas.id = "around";
    canvas.width = canvas.height = 480;
    canvas.setAttribute("aria-label", "the things around the vehicle, seen from above, ahead up");
    return canvas;
  }

  // a /stats answer: drawn where it holds a fusion (a run of several cameras), the panel shown
  function showAround(snap) {
    if (!snap.around || snap.pictures_only) return;
    const panel = $("around-panel");
    if (!$("around")) panel.append(captionOf(), canvasOf());
    panel.hidden = false;
    drawAround(snap.around, snap.around_views || []);
  }

  window.edgeAround = around;
  window.edgeShowAround = showAround;
})();
