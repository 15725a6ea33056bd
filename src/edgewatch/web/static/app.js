// The live page: camera tiles with MJPEG video and live numbers (server-sent events), and the
// event list with snapshots and clips. Plain browser APIs; nothing to build.
"use strict";

const tiles = new Map();

function text(tag, content, className) {
  const node = document.createElement(tag);
  node.textContent = content;
  if (className) node.className = className;
  return node;
}

function tile(camera) {
  if (tiles.has(camera)) return tiles.get(camera);
  const box = document.createElement("div");
  box.className = "camera";
  box.id = `camera-${camera}`;
  box.append(text("h2", camera));
  const video = document.createElement("img");
  video.alt = `live video of ${camera}`;
  video.src = `/api/cameras/${encodeURIComponent(camera)}/stream.mjpeg`;
  box.append(video, text("div", "", "health"), document.createElement("table"));
  document.getElementById("cameras").append(box);
  tiles.set(camera, box);
  const select = document.querySelector("#filters select[name=camera]");
  select.append(new Option(camera, camera));
  return box;
}

function rows(stats) {
  const out = [];
  for (const [label, count] of Object.entries(stats.unique || {})) out.push([`${label} seen`, count]);
  for (const [label, count] of Object.entries(stats.current || {})) out.push([`${label} now`, count]);
  for (const [name, line] of Object.entries(stats.lines || {})) out.push([`line ${name}`, `in ${line.in} / out ${line.out}`]);
  for (const [name, zone] of Object.entries(stats.zones || {})) out.push([`zone ${name}`, `${zone.occupancy} inside`]);
  for (const [rule, active] of Object.entries(stats.incidents || {})) if (active) out.push([`incident ${rule}`, "active"]);
  if (stats.state !== undefined) out.push(["state", stats.state]);
  if (stats.detector !== undefined) out.push(["detector", stats.detector.in_use === "fallback" ? `fallback ${stats.detector.fallback}` : stats.detector.in_use]);
  return out;
}

function showStats(stats) {
  const box = tile(stats.camera);
  const table = box.querySelector("table");
  table.replaceChildren(...rows(stats).map(([name, value]) => {
    const row = document.createElement("tr");
    row.append(text("td", name), text("td", String(value), name.startsWith("incident") ? "incident" : ""));
    row.dataset.name = name;
    return row;
  }));
}

async function refreshCameras() {
  const cameras = await (await fetch("/api/cameras")).json();
  for (const camera of cameras) {
    const box = tile(camera.name);
    const age = camera.last_frame_age === null ? "no frame yet" : `last frame ${camera.last_frame_age.toFixed(1)} s ago`;
    const parts = [camera.online ? "online" : "offline", age];
    if (camera.fps !== null) parts.push(`${camera.fps} fps of ${camera.source_fps ?? "?"}`);
    if (camera.inference_ms !== null) parts.push(`detector ${camera.inference_ms} ms`);
    if (camera.dropped !== undefined) parts.push(`${camera.dropped} dropped`, `${camera.reconnects} reconnects`);
    box.dataset.online = camera.online;
    box.querySelector(".health").textContent = parts.join(" · ");
  }
}

async function loadEvents(event) {
  if (event) event.preventDefault();
  const query = new URLSearchParams();
  for (const [key, value] of new FormData(document.getElementById("filters"))) {
    if (!value) continue;
    // datetime-local is the viewer's local time; the API wants an absolute time
    query.set(key, key === "since" || key === "until" ? new Date(value).toISOString() : value);
  }
  const events = await (await fetch(`/api/events?${query}`)).json();
  const list = document.getElementById("event-list");
  list.replaceChildren(...events.map((item) => {
    const row = document.createElement("li");
    row.className = `event ${item.type}`;
    if (item.media && item.media.snapshot) {
      const thumb = document.createElement("img");
      thumb.src = item.media.snapshot;
      thumb.alt = `snapshot of ${item.type}`;
      row.append(thumb);
    }
    const what = [item.type, item.phase, item.rule || item.line || item.zone || "", item.label || (item.labels || []).join("+")];
    row.append(text("span", `${item.camera} · ${what.filter(Boolean).join(" ")} · ${item.wall_time}`));
    if (item.media && item.media.clip) {
      const play = text("button", "play clip");
      play.addEventListener("click", () => {
        const player = document.getElementById("player");
        player.hidden = false;
        player.src = item.media.clip;
        player.play();
      });
      row.append(play);
    }
    const link = text("a", "JSON");
    link.href = item.media && item.media.record ? item.media.record : `/api/events?camera=${item.camera}`;
    row.append(link);
    return row;
  }));
}

const COLOURS = ["#3e7cb1", "#f0a202", "#81a4cd", "#d95d39", "#7a9e7e", "#9b5de5"];

function bars(canvas, groups, series) {
  // groups: x labels; series: [{name, values}] stacked per group. Our own few lines of canvas.
  const context = canvas.getContext("2d");
  context.clearRect(0, 0, canvas.width, canvas.height);
  const totals = groups.map((_, index) => series.reduce((sum, one) => sum + one.values[index], 0));
  const top = Math.max(1, ...totals);
  const width = (canvas.width - 40) / Math.max(1, groups.length);
  context.font = "10px sans-serif";
  groups.forEach((group, index) => {
    let y = canvas.height - 20;
    series.forEach((one, which) => {
      const height = (one.values[index] / top) * (canvas.height - 40);
      context.fillStyle = COLOURS[which % COLOURS.length];
      context.fillRect(30 + index * width + 2, y - height, width - 4, height);
      y -= height;
    });
    context.fillStyle = "#333";
    context.fillText(group, 30 + index * width + 2, canvas.height - 6);
  });
  context.fillText(String(top), 2, 14);
  series.forEach((one, which) => {
    context.fillStyle = COLOURS[which % COLOURS.length];
    context.fillText(one.name, canvas.width - 80, 14 + 12 * which);
  });
}

async function perBucket(canvas, by, query, name) {
  const rows = await (await fetch(`/api/series?by=${by}${query}`)).json();
  const buckets = [...new Set(rows.map((row) => row.bucket))];
  const labels = [...new Set(rows.map((row) => row.label))];
  bars(canvas, buckets.map(name), labels.map((label) => ({
    name: label,
    values: buckets.map((bucket) => rows.filter((row) => row.bucket === bucket && row.label === label)
      .reduce((sum, row) => sum + row.started, 0)),
  })));
}

async function loadCharts() {
  const camera = new FormData(document.getElementById("filters")).get("camera");
  const query = camera ? `&camera=${encodeURIComponent(camera)}` : "";
  await perBucket(document.getElementById("per-hour"), "hour", query, (hour) => hour.slice(11) + "h");
  await perBucket(document.getElementById("per-day"), "day", query, (day) => day.slice(5));
  const confidence = await (await fetch(`/api/confidence?bins=10${query}`)).json();
  bars(document.getElementById("confidence"), confidence.edges.slice(0, -1).map((edge) => edge.toFixed(1)),
    [{ name: `${confidence.objects} objects`, values: confidence.counts }]);
}

function route() {
  const events = location.hash === "#events";
  document.getElementById("live").hidden = events;
  document.getElementById("events").hidden = !events;
  if (events) {
    loadEvents();
    loadCharts();
  }
}

function listen() {
  const live = new EventSource("/api/live");
  live.onmessage = (message) => {
    const data = JSON.parse(message.data);
    if (data.kind === "stats") showStats(data.stats);
    if (data.kind === "event" && location.hash === "#events") loadEvents();
  };
}
document.getElementById("filters").addEventListener("submit", (event) => {
  loadEvents(event);
  loadCharts();
});
window.addEventListener("hashchange", route);
if (new URLSearchParams(location.search).has("token")) {
  history.replaceState(null, "", location.pathname + location.hash); // the cookie holds it now
}
// the tiles first, in the config's order, then the live numbers (which would add tiles as they come)
refreshCameras().finally(listen);
setInterval(refreshCameras, 2000);
setInterval(() => {
  if (location.hash === "#events") loadEvents(); // snapshots and clips are saved after their event ends
}, 5000);
route();
