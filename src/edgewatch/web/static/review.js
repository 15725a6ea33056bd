// The label review page: one image at a time on a canvas with its boxes; accept, reject, relabel,
// move, resize, draw and delete boxes with labelImg's keys. Every change is sent to the server at
// once (it keeps the folder's review index); Save exports the dataset. Plain browser APIs.
"use strict";

const COLOURS = ["#3e7cb1", "#f0a202", "#7a9e7e", "#d95d39", "#9b5de5", "#00a6a6", "#e05780", "#6c757d"];
const HANDLE = 6; // CSS pixels around a corner that grab it
const MIN_DRAG = 3; // CSS pixels a press must move to count as a drag

const $ = (id) => document.getElementById(id);
const canvas = $("canvas");
const context = canvas.getContext("2d");

const state = {
  folder: null, // the folder's name in the API
  list: [], // rows of /images: name, state, reviewed_at, boxes, pending
  at: -1, // index in list of the image shown
  want: -1, // index of the image asked for last (shown, or on its way)
  classes: [],
  work: null, // the image shown: {name, width, height, state, boxes}, boxes as the server sent them
  picture: null, // its decoded <img>
  selected: -1, // index in work.boxes
  arming: false, // `w` pressed: the next drag draws
  drag: null, // {mode: draw|move|resize, start, corner, original, moved}
  pointer: null, // last pointer position in image pixels, for the drawing guides
  lastLabel: null,
  queue: Promise.resolve(), // PUTs, one after another
  folders: new Map(), // name → what /api/review/folders says of it
  ticket: 0, // the latest image asked for; older answers are dropped
  unsent: 0, // changes not yet in the review index
};

const enc = encodeURIComponent;
const imagesUrl = (name) => `/api/review/${enc(state.folder)}/images/${enc(name)}`;
const pictureUrl = (name) => `/api/review/${enc(state.folder)}/image/${enc(name)}`;

let csrfToken = null; // this browser session's token for writes (docs/security.md)

async function csrf(renew) {
  if (csrfToken === null || renew) csrfToken = (await (await fetch("/api/csrf")).json()).token;
  return csrfToken;
}

async function api(path, options = {}) {
  const writes = (options.method || "GET") !== "GET";
  const send = async (renew) => fetch(path, writes
    ? { ...options, headers: { ...options.headers, "X-CSRF-Token": await csrf(renew) } } : options);
  let response = await send(false);
  if (writes && response.status === 403) response = await send(true); // the server restarted: a new secret
  if (!response.ok) {
    let detail = `${response.status} ${response.statusText}`;
    try {
      const body = await response.json();
      detail = typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail);
    } catch (_) { /* not JSON: keep the status line */ }
    throw new Error(detail);
  }
  return response.json();
}

function say(text, kind = "info") {
  const line = $("message");
  line.textContent = text;
  line.className = kind;
}

const fail = (error) => say(error.message || String(error), "error");

// --- folders and images ----------------------------------------------------------------------

async function start() {
  const query = new URLSearchParams(location.search);
  if (query.has("token")) { // the cookie holds it now
    query.delete("token");
    history.replaceState(null, "", location.pathname + (String(query) ? `?${query}` : "") + location.hash);
  }
  const answer = await api("/api/review/folders");
  state.folders = new Map(answer.folders.map((folder) => [folder.name, folder]));
  $("to-dashboard").hidden = !answer.dashboard;
  const select = $("folder");
  select.replaceChildren(...answer.folders.map((folder) => {
    const option = new Option(folder.ready ? `${folder.name} (${folder.reviewed}/${folder.images} reviewed)` : `${folder.name} (empty)`, folder.name);
    option.title = folder.problem || folder.path;
    return option;
  }));
  $("folder-choice").hidden = answer.folders.length < 2;
  const wanted = answer.folders.find((folder) => folder.name === query.get("folder"))
    || answer.folders.find((folder) => folder.ready) || answer.folders[0];
  if (!wanted) {
    empty("No folders to review. Give a camera a capture: section to collect frames worth labelling, or run edgewatch review DIR.");
    return;
  }
  select.value = wanted.name;
  await openFolder(wanted.name, true);
}

function empty(text) {
  state.work = null;
  state.list = [];
  $("progress").textContent = "";
  $("workspace").hidden = true;
  $("empty").hidden = false;
  $("empty").textContent = text;
}

async function openFolder(name, first = false) {
  state.folder = name;
  const query = new URLSearchParams(location.search);
  if (!first || query.has("folder")) {
    query.set("folder", name);
    history.replaceState(null, "", `${location.pathname}?${query}`);
  }
  const about = state.folders.get(name);
  if (about && !about.ready) { // asked again when chosen again: a camera may have captured meanwhile
    empty(`${name}: nothing to review yet (${about.problem})`);
    return;
  }
  let answer;
  try {
    answer = await api(`/api/review/${enc(name)}/images`);
  } catch (error) {
    empty(`${name}: ${error.message}`);
    return;
  }
  takeList(answer);
  $("format").replaceChildren(...answer.formats.map((format) => new Option(format, format)));
  $("format").value = answer.target_format;
  showSaved(answer.saved);
  if (answer.skipped.length) say(`${answer.skipped.length} images left out, their annotations cannot be read: ${answer.skipped.slice(0, 3).join("; ")}`, "error");
  if (!state.list.length) {
    empty(`${name} has no images yet.`);
    return;
  }
  $("empty").hidden = true;
  $("workspace").hidden = false;
  const asked = decodeURIComponent((location.hash.match(/^#image=(.+)$/) || [])[1] || "");
  const names = state.list.map((row) => row.name);
  const at = names.indexOf(asked) >= 0 ? names.indexOf(asked) : Math.max(0, names.indexOf(answer.last));
  await show(at);
}

function takeList(answer) {
  state.list = answer.images;
  state.classes = answer.classes;
  $("classes").replaceChildren(...state.classes.map((name) => new Option(name)));
  $("class-keys").textContent = state.classes.slice(0, 9).map((name, index) => `${index + 1} ${name}`).join(" · ");
  progress();
}

async function refreshList() {
  const answer = await api(`/api/review/${enc(state.folder)}/images`);
  const name = state.work && state.work.name;
  const wanted = state.list[state.want] && state.list[state.want].name;
  takeList(answer);
  state.at = Math.max(0, state.list.findIndex((row) => row.name === name));
  state.want = Math.max(0, state.list.findIndex((row) => row.name === wanted));
}

function progress() {
  const reviewed = state.list.filter((row) => row.state === "reviewed").length;
  $("progress").textContent = `${reviewed} of ${state.list.length} images reviewed`;
}

async function show(at) {
  const ticket = ++state.ticket;
  state.want = at; // d d pressed quickly moves two images, not one twice
  const name = state.list[at].name;
  const picture = new Image();
  picture.src = pictureUrl(name);
  try {
    const [work] = await Promise.all([api(imagesUrl(name)), picture.decode()]);
    if (ticket !== state.ticket) return;
    state.at = at;
    state.work = { name, ...work };
    state.picture = picture;
  } catch (error) {
    // `want` stays on the broken image, so the next d / a moves on past it
    if (ticket === state.ticket) fail(new Error(`${name}: ${error.message} (d / a move on)`));
    return;
  }
  state.arming = false;
  state.drag = null;
  state.selected = state.work.boxes.findIndex((box) => box.status === "pending");
  history.replaceState(null, "", `${location.pathname}${location.search}#image=${enc(name)}`);
  if (at + 1 < state.list.length) new Image().src = pictureUrl(state.list[at + 1].name); // ready for `d`
  fit();
  render();
}

async function step(by) {
  let at = state.want + by;
  if (at >= state.list.length) {
    await refreshList(); // a capture folder grows while its camera runs
    at = state.want + by;
  }
  if (at < 0 || at >= state.list.length) {
    say(at < 0 ? "this is the first image" : "this is the last image");
    return;
  }
  await show(at);
}

function jumpLast() {
  const reviewed = state.list.filter((row) => row.reviewed_at).sort((a, b) => a.reviewed_at.localeCompare(b.reviewed_at));
  if (!reviewed.length) return say("no image reviewed yet");
  return show(state.list.indexOf(reviewed[reviewed.length - 1]));
}

function jumpUnreviewed() {
  for (let offset = 1; offset <= state.list.length; offset++) {
    const at = (state.at + offset) % state.list.length;
    if (state.list[at].state !== "reviewed") return show(at);
  }
  return say("every image is reviewed");
}

// --- changes ---------------------------------------------------------------------------------

// Sends the shown image's boxes and state. The body is built when its turn in the queue comes, so
// boxes drawn meanwhile go with the ids the previous answer gave.
function commit() {
  const work = state.work;
  if (!work.boxes.some((box) => box.status === "pending")) work.state = "reviewed";
  render();
  syncing(+1);
  state.queue = state.queue.then(async () => {
    const sent = work.boxes.slice();
    const body = {
      state: work.state,
      boxes: sent.map((box) => ({ id: box.id ?? null, label: box.label, xyxy: box.xyxy, status: box.status })),
    };
    try {
      const saved = await api(imagesUrl(work.name), {
        method: "PUT", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
      });
      // Take only what the server decides: label, corners and status may have changed here since.
      sent.forEach((box, index) => {
        const { id, origin, time, score } = saved.boxes[index];
        Object.assign(box, { id, origin, time, score });
      });
      work.reviewed_at = saved.reviewed_at;
      const row = state.list.find((item) => item.name === work.name);
      if (row) {
        Object.assign(row, { state: saved.state, reviewed_at: saved.reviewed_at,
          boxes: saved.boxes.filter((box) => box.status !== "rejected").length,
          pending: saved.boxes.filter((box) => box.status === "pending").length });
      }
      for (const box of saved.boxes) if (!state.classes.includes(box.label)) addClass(box.label);
      progress();
      if (state.work === work) render();
    } catch (error) {
      fail(error);
      if (state.work === work) await show(state.at); // back to what the server holds
    } finally {
      syncing(-1);
    }
  });
  return state.queue;
}

// The caption says whether every change has reached the review index yet.
function syncing(by) {
  state.unsent += by;
  const line = $("sync");
  line.dataset.state = state.unsent ? "busy" : "idle";
  line.textContent = state.unsent ? "keeping changes…" : "changes kept";
}

function addClass(name) {
  state.classes.push(name);
  $("classes").append(new Option(name));
  $("class-keys").textContent = state.classes.slice(0, 9).map((label, index) => `${index + 1} ${label}`).join(" · ");
}

function selectedBox() {
  return state.work && state.work.boxes[state.selected];
}

function nextPending(from) {
  const boxes = state.work.boxes;
  for (let offset = 1; offset <= boxes.length; offset++) {
    const at = (from + offset) % boxes.length;
    if (boxes[at].status === "pending") return at;
  }
  return from;
}

function mark(status, every) {
  const boxes = state.work.boxes;
  if (every) {
    boxes.forEach((box) => { box.status = status; });
    state.work.state = "reviewed"; // a decision on the whole image
  } else {
    const box = selectedBox();
    if (!box) return say("select a box first (click it, or Tab)");
    box.status = status;
    state.selected = nextPending(state.selected); // y y y works through the drafts
  }
  commit();
}

function verify() {
  state.work.boxes.forEach((box) => { if (box.status === "pending") box.status = "accepted"; });
  state.work.state = "reviewed";
  commit();
}

function remove() {
  if (!selectedBox()) return say("select a box first (click it, or Tab)");
  state.work.boxes.splice(state.selected, 1);
  state.selected = -1;
  commit();
}

function relabel(label) {
  const box = selectedBox();
  label = label.trim();
  if (!box || !label || label === box.label) return render();
  box.label = label;
  box.status = "accepted"; // a person named it
  state.lastLabel = label;
  commit();
}

function cycle(by) {
  const count = state.work.boxes.length;
  if (!count) return;
  state.selected = state.selected < 0 ? (by > 0 ? 0 : count - 1) : (state.selected + by + count) % count;
  render();
}

async function save() {
  if (document.activeElement === $("label")) $("label").blur(); // apply a label being typed first
  say("saving…");
  await state.queue;
  const format = $("format").value;
  try {
    const answer = await api(`/api/review/${enc(state.folder)}/save?format=${enc(format)}`, { method: "POST" });
    showSaved(answer.saved);
    say(`saved as ${format}: ${answer.summary}`, "saved");
  } catch (error) {
    fail(error);
  }
}

function showSaved(saved) {
  $("saved").textContent = saved ? `last saved as ${saved.format} at ${saved.time}: ${saved.images} images, ${saved.boxes} boxes` : "not saved yet";
}

// --- drawing ---------------------------------------------------------------------------------

function fit() {
  const { width, height } = state.work;
  const room = $("viewer").clientWidth;
  const tall = Math.max(240, window.innerHeight - canvas.getBoundingClientRect().top - 60);
  const scale = Math.min(room / width, tall / height, 4); // small frames grow, up to 4x, to label precisely
  const ratio = window.devicePixelRatio || 1;
  canvas.style.width = `${Math.round(width * scale)}px`;
  canvas.style.height = `${Math.round(height * scale)}px`;
  canvas.width = Math.round(width * scale * ratio);
  canvas.height = Math.round(height * scale * ratio);
}

// Image pixels per CSS pixel: line widths and handles stay the same size on screen.
const unit = () => state.work.width / canvas.getBoundingClientRect().width;

function colour(label) {
  const at = state.classes.indexOf(label);
  return COLOURS[(at < 0 ? state.classes.length : at) % COLOURS.length];
}

function render() {
  const work = state.work;
  if (!work) return;
  const px = unit();
  context.setTransform(canvas.width / work.width, 0, 0, canvas.height / work.height, 0, 0); // draw in image pixels
  context.drawImage(state.picture, 0, 0, work.width, work.height);
  context.font = `${12 * px}px sans-serif`;
  context.textBaseline = "bottom";
  work.boxes.forEach((box, index) => {
    const [x1, y1, x2, y2] = box.xyxy;
    const chosen = index === state.selected;
    context.strokeStyle = box.status === "rejected" ? "#b42318" : colour(box.label);
    context.globalAlpha = box.status === "rejected" && !chosen ? 0.5 : 1;
    context.lineWidth = (chosen ? 3 : 2) * px;
    context.setLineDash(box.status === "accepted" ? [] : [6 * px, 4 * px]);
    context.strokeRect(x1, y1, x2 - x1, y2 - y1);
    context.setLineDash([]);
    const tag = `${box.label}${box.score == null ? "" : ` ${box.score.toFixed(2)}`}${box.status === "accepted" ? " ✓" : box.status === "rejected" ? " ✗" : ""}`;
    const tagWidth = context.measureText(tag).width + 6 * px;
    const top = y1 - 15 * px < 0 ? y1 + 15 * px : y1;
    context.fillStyle = context.strokeStyle;
    context.fillRect(x1, top - 15 * px, tagWidth, 15 * px);
    context.fillStyle = "#fff";
    context.fillText(tag, x1 + 3 * px, top - 2 * px);
    if (chosen) {
      context.fillStyle = "#fff";
      for (const [x, y] of corners(box.xyxy)) context.fillRect(x - 3 * px, y - 3 * px, 6 * px, 6 * px);
    }
    context.globalAlpha = 1;
  });
  if (state.drag && state.drag.mode === "draw") {
    const [x1, y1, x2, y2] = ordered(state.drag.start, state.pointer);
    context.strokeStyle = "#fff";
    context.lineWidth = 2 * px;
    context.strokeRect(x1, y1, x2 - x1, y2 - y1);
  } else if (state.arming && state.pointer) { // labelImg's cross-hair guides
    context.strokeStyle = "#ffffffaa";
    context.lineWidth = px;
    context.beginPath();
    context.moveTo(state.pointer[0], 0);
    context.lineTo(state.pointer[0], work.height);
    context.moveTo(0, state.pointer[1]);
    context.lineTo(work.width, state.pointer[1]);
    context.stroke();
  }
  canvas.classList.toggle("drawing", state.arming);
  canvas.dataset.image = work.name;
  canvas.dataset.width = work.width;
  canvas.dataset.height = work.height;
  panel();
}

function panel() {
  const work = state.work;
  const row = state.list[state.at];
  $("position").textContent = `${state.at + 1} / ${state.list.length}`;
  $("image-name").textContent = work.name;
  $("image-state").textContent = work.state === "reviewed" ? `reviewed ${work.reviewed_at || ""}` : "not reviewed";
  $("image-state").className = work.state;
  $("boxes").replaceChildren(...work.boxes.map((box, index) => {
    const item = document.createElement("li");
    item.dataset.index = index;
    item.dataset.id = box.id ?? "";
    item.dataset.status = box.status;
    item.className = index === state.selected ? "selected" : "";
    item.style.borderLeftColor = colour(box.label);
    const what = document.createElement("span");
    what.className = "what";
    what.textContent = `${box.label}${box.score == null ? "" : ` ${box.score.toFixed(2)}`}`;
    const meta = document.createElement("span");
    meta.className = "meta";
    meta.textContent = `${box.status} · ${box.origin || "human"}`;
    meta.title = box.time ? `${box.origin} · ${box.time}` : "not sent yet";
    item.append(what, meta);
    for (const [text, title, act] of [["✓", "accept (y)", "accepted"], ["✗", "reject (x)", "rejected"], ["del", "delete (Del)", "delete"]]) {
      const button = document.createElement("button");
      button.textContent = text;
      button.title = title;
      button.dataset.act = act;
      item.append(button);
    }
    return item;
  }));
  const box = selectedBox();
  const input = $("label");
  input.disabled = !box;
  if (document.activeElement !== input) input.value = box ? box.label : "";
  if (row) row.state = work.state;
}

function corners([x1, y1, x2, y2]) {
  return [[x1, y1], [x2, y1], [x2, y2], [x1, y2]];
}

function ordered([ax, ay], [bx, by]) {
  return [Math.min(ax, bx), Math.min(ay, by), Math.max(ax, bx), Math.max(ay, by)];
}

function pointAt(event) {
  const rect = canvas.getBoundingClientRect();
  const x = ((event.clientX - rect.left) * state.work.width) / rect.width;
  const y = ((event.clientY - rect.top) * state.work.height) / rect.height;
  return [Math.min(Math.max(x, 0), state.work.width), Math.min(Math.max(y, 0), state.work.height)];
}

// The box under the pointer: the smallest that holds it, so a box inside another can be picked.
function boxAt([x, y]) {
  let found = -1;
  let area = Infinity;
  state.work.boxes.forEach((box, index) => {
    const [x1, y1, x2, y2] = box.xyxy;
    const size = (x2 - x1) * (y2 - y1);
    if (x >= x1 && x <= x2 && y >= y1 && y <= y2 && size < area) {
      found = index;
      area = size;
    }
  });
  return found;
}

canvas.addEventListener("mousedown", (event) => {
  if (!state.work || event.button !== 0) return;
  event.preventDefault(); // no text selection while dragging; so blur by hand (a label being typed applies)
  if (document.activeElement && document.activeElement !== document.body) document.activeElement.blur();
  const point = pointAt(event);
  state.pointer = point;
  if (state.arming) {
    state.drag = { mode: "draw", start: point };
    return render();
  }
  const box = selectedBox();
  const reach = HANDLE * unit();
  const corner = box ? corners(box.xyxy).findIndex(([x, y]) => Math.abs(x - point[0]) <= reach && Math.abs(y - point[1]) <= reach) : -1;
  if (corner >= 0) {
    state.drag = { mode: "resize", start: point, corner, original: box.xyxy.slice(), moved: false };
  } else {
    state.selected = boxAt(point);
    if (state.selected >= 0) state.drag = { mode: "move", start: point, original: selectedBox().xyxy.slice(), moved: false };
  }
  render();
});

window.addEventListener("mousemove", (event) => {
  if (!state.work) return;
  const inside = event.target === canvas;
  if (!inside && !state.drag) return;
  const point = pointAt(event);
  state.pointer = point;
  const drag = state.drag;
  if (drag && drag.mode !== "draw") {
    const dx = point[0] - drag.start[0];
    const dy = point[1] - drag.start[1];
    if (!drag.moved && Math.hypot(dx, dy) < MIN_DRAG * unit()) return;
    drag.moved = true;
    const box = selectedBox();
    const [x1, y1, x2, y2] = drag.original;
    if (drag.mode === "move") { // kept whole inside the image
      const sx = Math.min(Math.max(dx, -x1), state.work.width - x2);
      const sy = Math.min(Math.max(dy, -y1), state.work.height - y2);
      box.xyxy = [x1 + sx, y1 + sy, x2 + sx, y2 + sy];
    } else { // the grabbed corner follows, the opposite one stays
      const fixed = corners(drag.original)[(drag.corner + 2) % 4];
      box.xyxy = ordered(fixed, point);
    }
  }
  if (drag || state.arming) render();
});

window.addEventListener("mouseup", (event) => {
  const drag = state.drag;
  if (!drag || !state.work) return;
  state.drag = null;
  const point = pointAt(event);
  if (drag.mode === "draw") {
    state.arming = false;
    const xyxy = ordered(drag.start, point);
    if (xyxy[2] - xyxy[0] < MIN_DRAG * unit() || xyxy[3] - xyxy[1] < MIN_DRAG * unit()) {
      say("too small for a box: press w and drag again");
      return render();
    }
    const label = state.lastLabel || state.classes[0] || "object";
    state.work.boxes.push({ id: null, label, xyxy, score: null, status: "accepted", origin: "human" });
    state.selected = state.work.boxes.length - 1;
    say(`drew a ${label} box: e or 1–9 to relabel it`);
    commit();
  } else if (drag.moved) {
    commit();
  } else {
    render();
  }
});

// --- keys and buttons ------------------------------------------------------------------------

document.addEventListener("keydown", (event) => {
  const key = event.key;
  if ((event.ctrlKey || event.metaKey) && key.toLowerCase() === "s") {
    event.preventDefault(); // not the browser's "save page"
    if (state.work) save();
    return;
  }
  if (event.target.matches("input, select, textarea")) {
    if (key === "Escape") {
      if (event.target === $("label")) event.target.value = selectedBox() ? selectedBox().label : "";
      event.target.blur();
    }
    return; // typing, not commands
  }
  if (event.ctrlKey || event.metaKey || event.altKey || !state.work) return;
  const lower = key.length === 1 ? key.toLowerCase() : key;
  const actions = {
    w: () => { state.arming = true; say("drag on the picture to draw a box (Esc cancels)"); render(); },
    a: () => step(-1),
    ArrowLeft: () => step(-1),
    d: () => step(1),
    ArrowRight: () => step(1),
    y: () => mark("accepted", event.shiftKey),
    Enter: () => mark("accepted", event.shiftKey),
    x: () => mark("rejected", event.shiftKey),
    Delete: remove,
    Backspace: remove,
    e: () => { if (!selectedBox()) return say("select a box first (click it, or Tab)"); $("label").focus(); $("label").select(); },
    Tab: () => cycle(event.shiftKey ? -1 : 1),
    " ": verify,
    l: jumpLast,
    n: jumpUnreviewed,
    Escape: () => { state.arming = false; state.drag = null; state.selected = -1; say(""); render(); },
  };
  let action = actions[lower];
  if (!action && /^[1-9]$/.test(key) && state.classes[Number(key) - 1]) {
    action = () => { if (!selectedBox()) return say("select a box first (click it, or Tab)"); relabel(state.classes[Number(key) - 1]); };
  }
  if (!action) return;
  event.preventDefault(); // Space would scroll, Tab move the focus
  Promise.resolve(action()).catch(fail);
});

$("label").addEventListener("keydown", (event) => {
  if (event.key === "Enter") {
    event.preventDefault();
    $("label").blur(); // `change` applies it
  }
});
$("label").addEventListener("change", () => relabel($("label").value));

$("boxes").addEventListener("click", (event) => {
  const item = event.target.closest("li");
  if (!item) return;
  state.selected = Number(item.dataset.index);
  const act = event.target.dataset.act;
  if (act === "delete") remove();
  else if (act) mark(act, false);
  else render();
});

const buttons = {
  prev: () => step(-1), next: () => step(1), last: jumpLast, unreviewed: jumpUnreviewed,
  draw: () => { state.arming = true; say("drag on the picture to draw a box (Esc cancels)"); render(); },
  verify, save,
};
for (const [id, act] of Object.entries(buttons)) {
  $(id).addEventListener("click", (event) => {
    event.currentTarget.blur(); // keys go back to the page, not to the button
    if (state.work) Promise.resolve(act()).catch(fail);
  });
}
$("folder").addEventListener("change", async () => {
  $("folder").blur();
  history.replaceState(null, "", location.pathname + location.search); // that folder's last image, not this one's
  try {
    const answer = await api("/api/review/folders"); // is it ready now?
    state.folders = new Map(answer.folders.map((folder) => [folder.name, folder]));
    await openFolder($("folder").value);
  } catch (error) {
    fail(error);
  }
});
$("format").addEventListener("change", () => $("format").blur());
window.addEventListener("resize", () => { if (state.work) { fit(); render(); } });

start().catch(fail);
