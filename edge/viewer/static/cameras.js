// Every camera of a run (edge run --camera, edge record --camera) on one page: each picture
// streamed by its own camera's viewer, on the host this page came from.
"use strict";

const $ = (id) => document.getElementById(id);
const shown = {}; // camera name -> its <img>: what the tests read
const AROUND_EVERY_MS = 250;

async function followAround() {
  try {
    const answer = await fetch("/stats", { cache: "no-store" });
    const snap = await answer.json();
    if (snap.pictures_only) return; // edge record: no engines, nothing found to place
    edgeShowAround(snap);
  } catch (err) {
    $("status").textContent = "lost";
  }
  setTimeout(followAround, AROUND_EVERY_MS);
}

function viewerOf(port) {
  return `${location.protocol}//${location.hostname}:${port}`;
}

function figureOf(name, port) {
  const figure = document.createElement("figure");
  const caption = document.createElement("figcaption");
  const link = document.createElement("a");
  link.textContent = `camera ${name}`;
  link.href = `${viewerOf(port)}/`;
  caption.appendChild(link);
  const img = document.createElement("img");
  img.alt = `camera ${name} (waiting for its first frame)`;
  img.dataset.camera = name;
  // the composite view: the engines' overlay | depth in edge run, the frames as recorded in edge record
  img.src = `${viewerOf(port)}/stream/composite.mjpg`;
  figure.append(caption, img);
  shown[name] = img;
  return figure;
}

async function start() {
  let snap;
  try {
    const answer = await fetch("/stats", { cache: "no-store" });
    snap = await answer.json();
  } catch (err) {
    $("status").textContent = "lost";
    return;
  }
  // a run of one camera has no list: this viewer's own
  const cameras = snap.cameras && snap.cameras.length ? snap.cameras
    : [{ name: snap.camera || "camera", port: Number(location.port) || 80 }];
  for (const { name, port } of cameras) {
    $("grid").appendChild(figureOf(name, port));
    const link = document.createElement("a");
    link.textContent = name;
    link.href = `${viewerOf(port)}/`;
    $("cameras").appendChild(link);
  }
  $("status").textContent = `${cameras.length} camera(s)`;
  $("status").className = "live";
  if (cameras.length > 1) followAround(); // a run of several: their things fused, drawn from above
}

window.edgeCameras = shown;
start();
