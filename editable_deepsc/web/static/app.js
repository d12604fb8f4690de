// Editable-DeepSC web demo: plain JavaScript, no external resources.
// All user-provided text is inserted with textContent, never parsed as HTML.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { config: null, session: null, inFlight: 0, compareSeq: 0 };

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v;
    else if (k.startsWith("data-")) e.setAttribute(k, v);
    else e[k] = v;
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

const fmt = {
  cbr: (x) => (x === 0 ? "0" : x < 0.001 ? x.toExponential(2) : x.toFixed(4)),
  s: (x) => (x < 0.01 ? `${(x * 1000).toFixed(1)} ms` : `${x.toFixed(2)} s`),
  snr: (ch) => `${ch.toUpperCase()}`,
};

// ------------------------------------------------------------------ requests
async function api(method, url, body, headers = {}) {
  state.inFlight += 1;
  pollStatus();
  try {
    const opts = { method, headers: { ...headers } };
    if (body instanceof Blob) opts.body = body;
    else if (body !== undefined) { opts.body = JSON.stringify(body); opts.headers["Content-Type"] = "application/json"; }
    let res;
    try { res = await fetch(url, opts); }
    catch (e) { throw { type: "network", message: "the server cannot be reached (is `edsc serve` still running?)" }; }
    let data = null;
    try { data = await res.json(); } catch (e) { /* not JSON */ }
    if (!res.ok) throw (data && data.error) || { type: "error", message: `HTTP ${res.status}` };
    return data;
  } finally {
    state.inFlight -= 1;
    pollStatus();
  }
}

// ------------------------------------------------------------------ status
let statusTimer = null;
async function pollStatus() {
  clearTimeout(statusTimer);
  try {
    const res = await fetch("/api/status", { cache: "no-store" });
    const s = await res.json();
    const badge = $("status");
    if (s.busy) {
      badge.dataset.state = "busy";
      const waiting = s.queued ? `, ${s.queued} waiting` : "";
      badge.textContent = `server busy: ${s.running} (${s.running_seconds.toFixed(1)} s)${waiting}`;
    } else {
      badge.dataset.state = "idle";
      badge.textContent = "ready";
    }
  } catch (e) {
    $("status").dataset.state = "down";
    $("status").textContent = "server unreachable";
  }
  statusTimer = setTimeout(pollStatus, state.inFlight > 0 ? 700 : 4000);
}

// ------------------------------------------------------------------ errors
function showError(err) {
  const box = $("error");
  box.replaceChildren();
  box.dataset.type = err.type || "error";
  let title = "Error";
  if (err.type === "unsupported_instruction") title = "This edit is not supported";
  else if (err.type === "no_face") title = "No face found";
  else if (err.type === "too_large") title = "Upload too large";
  else if (err.type === "bad_image") title = "Not a usable image";
  else if (err.type === "busy") title = "Server busy";
  else if (err.type === "no_session") title = "Session expired";
  box.append(el("strong", {}, `${title}: `), el("span", { class: "message" }, err.message || ""));
  if (err.type === "too_large" || err.type === "bad_image") {
    box.append(el("div", { class: "hint" }, `Limit: ${state.config.upload.describe}; PNG, JPEG, WebP or HEIC.`));
  }
  if (err.type === "busy") box.append(el("div", { class: "hint" }, "Another request is running; try again in a moment."));
  if (err.type === "unsupported_instruction" && (err.suggestions || []).length) {
    const sug = el("div", { class: "suggestions" }, "Try: ");
    for (const s of err.suggestions.slice(0, 14)) {
      const b = el("button", { type: "button", class: s.nearest ? "nearest" : "", title: s.hint }, s.text);
      b.addEventListener("click", () => { $("instruction").value = s.text; $("instruction").focus(); });
      sug.append(b);
    }
    box.append(sug);
  }
  box.hidden = false;
}
function clearError() { $("error").hidden = true; $("error").replaceChildren(); }

// ------------------------------------------------------------------ session
function setControls() {
  const on = !!state.session;
  for (const id of ["instruction", "send", "reset"]) $(id).disabled = !on;
  $("undo").disabled = !on || state.session.active_edits === 0;
  for (const id of ["download-image", "download-log"]) $(id).classList.toggle("disabled", !on);
}

function applySession(s) {
  state.session = s;
  const t = Date.now();
  $("source-img").src = `${s.source_url}?t=${t}`;
  $("current-img").src = `${s.current_url}?t=${t}`;
  $("download-image").href = `${s.current_url}?download=1`;
  $("download-log").href = `/api/sessions/${s.id}/log`;
  const notes = s.notes.length ? ` (${s.notes.join("; ")})` : "";
  $("session-info").textContent =
    `${s.origin}${notes} · ${s.active_edits} active edit(s) · ${s.symbols_total} symbols sent in total · ` +
    `inversion ${fmt.s(s.invert_seconds)}`;
  $("session-info").dataset.symbolsTotal = s.symbols_total;
  setControls();
}

function channelNow() {
  return { channel: $("channel").value, snr_db: Number($("snr").value) };
}

async function startSession(query, body, filename) {
  clearError();
  const verify = $("verify-rx").checked ? { verify_rx: "1", correction: $("correction").value } : {};
  const q = new URLSearchParams({ ...query, ...channelNow(), seed: $("seed").value || "0", ...verify });
  const headers = {};
  if (body) {
    // raw bytes: the server reads the format from the bytes, so a file the browser calls
    // text/plain (or anything not image/*) goes up as octet-stream and is refused with the reason
    headers["Content-Type"] = (body.type || "").startsWith("image/") ? body.type : "application/octet-stream";
    headers["X-Filename"] = encodeURIComponent(filename || "upload");
  }
  try {
    const data = await api("POST", `/api/sessions?${q}`, body, headers);
    if (state.session) fetch(`/api/sessions/${state.session.id}`, { method: "DELETE" }).catch(() => {});
    $("history").replaceChildren();
    applySession(data);
    $("instruction").focus();
    refreshCompare();
  } catch (err) { showError(err); }
}

function turnItem(t) {
  const edit = t.action === "edit";
  const li = el("li", { class: `turn ${t.action}`, "data-index": t.index, "data-kind": t.kind });
  li.append(el("img", { src: `${t.image_url}?t=${Date.now()}`, alt: `received after turn ${t.index}` }));
  const body = el("div", { class: "body" });
  body.append(el("div", { class: "what" }, edit ? `“${t.instruction}”` : "undo"));
  body.append(el("div", { class: "targets" }, edit ? `→ ${t.targets.join(", ")}` : "reverted the last edit at both ends"));
  const sent = t.kind === "none" ? "nothing sent" : `${t.kind === "delta" ? "edit delta" : "full latent"}`;
  const nums = el("div", { class: "nums" },
    el("span", { class: "symbols" }, `${t.symbols} symbols`), ` (${sent}) · `,
    el("span", { class: "cbr" }, `CBR ${fmt.cbr(t.cbr)}`), " · ",
    el("span", { class: "snr" }, `${t.channel.toUpperCase()} ${t.snr_db} dB`), " · ",
    el("span", { class: "quality" }, `received vs intended: PSNR ${t.psnr.toFixed(1)} dB, SSIM ${t.ssim.toFixed(3)}`));
  body.append(nums);
  if (t.verify) {
    const v = t.verify;
    body.append(el("div", { class: "verify hint", "data-rounds": t.rounds },
      `verified at the receiver: ${t.rounds} ${v.correction} correction(s); symbols include ` +
      `${v.rounds[0].side_symbols} of side information; ${t.feedback_symbols} feedback symbols; ` +
      `receiver's check: ${v.met_rx ? "met" : "not met"}`));
  }
  const scores = Object.entries(t.scores_rx || {}).map(([k, v]) => `${k} ${v.toFixed(2)}`).join(", ");
  if (scores) body.append(el("div", { class: "hint" }, `received: ${scores}` +
    (t.identity_rx != null ? ` · identity ${t.identity_rx.toFixed(2)}` : "")));
  const stages = Object.entries(t.timings || {}).map(([k, v]) => `${k} ${fmt.s(v)}`).join(", ");
  body.append(el("details", {}, el("summary", { class: "timing" }, `time ${fmt.s(t.seconds_total)}`),
    stages || "no computation"));
  li.append(body);
  return li;
}

async function turnRequest(path, body) {
  clearError();
  const s = state.session;
  try {
    const data = await api("POST", `/api/sessions/${s.id}/${path}`, body);
    $("history").append(turnItem(data.turn));
    $("history").lastChild.scrollIntoView({ block: "nearest" });
    applySession(data.session);
    refreshCompare();
    return true;
  } catch (err) {
    showError(err);
    return false;
  }
}

// ------------------------------------------------------------------ compare
function cbrInputs() {
  const out = {};
  for (const inp of document.querySelectorAll("#compare input[data-baseline]")) out[inp.dataset.baseline] = Number(inp.value);
  return out;
}

function renderCompare(data) {
  const box = $("compare");
  const prevCbr = cbrInputs();
  box.replaceChildren();
  const o = data.ours;
  box.append(el("div", { class: "method ours", "data-method": "editable-deepsc" },
    el("h3", {}, "Editable-DeepSC"),
    el("img", { src: `${o.image_url}?t=${Date.now()}`, alt: "Editable-DeepSC received" }),
    el("div", {}, `last edit: ${o.last_symbols} symbols, CBR ${fmt.cbr(o.last_cbr)}`),
    el("div", { class: "hint" }, `full latent: ${o.full_symbols} symbols (CBR ${fmt.cbr(o.full_cbr)}); ` +
      `${o.symbols_total} symbols this session`)));
  for (const b of data.baselines) {
    const card = el("div", { class: `method ${b.available ? "" : "unavailable"}`, "data-method": b.name },
      el("h3", {}, b.label));
    if (!b.available) {
      card.append(el("div", { class: "reason" }, "not available"), el("div", { class: "hint" }, b.reason || ""));
    } else {
      const ok = b.decoded_ok === false ? el("span", { class: "bad" }, " decoding failed (fallback image)") : "";
      const problem = b.error ? el("div", { class: "bad problem" }, b.error) : "";
      const inp = el("input", { type: "number", step: "0.005", min: "0.001", max: "1",
        value: String(prevCbr[b.name] ?? Number(b.cbr.toFixed(4))), "data-baseline": b.name });
      inp.addEventListener("change", refreshCompare);
      card.append(
        b.image_url ? el("img", { src: `${b.image_url}?t=${Date.now()}`, alt: `${b.label} received and edited` }) : "",
        problem,
        el("div", { class: "cbr" }, `CBR ${fmt.cbr(b.cbr)} (${b.k} symbols, image sent once)`, ok),
        el("div", { class: "hint" }, o.full_cbr > 0 ? `Editable-DeepSC's full latent uses ` +
          `${(100 * o.full_cbr / b.cbr).toFixed(1)}% of this CBR` : ""),
        b.received_url ? el("div", { class: "small hint" }, "received before editing: ",
          el("img", { src: `${b.received_url}?t=${Date.now()}`, alt: `${b.label} received` })) : "",
        el("label", { class: "hint" }, "CBR ", inp),
        b.link_seconds != null ? el("div", { class: "hint" },
          `transmit + invert ${fmt.s(b.link_seconds)}, edit ${fmt.s(b.edit_seconds)}`) : "");
    }
    box.append(card);
  }
  box.dataset.turns = String(state.session ? state.session.turns : 0);
}

async function refreshCompare() {
  const box = $("compare");
  box.hidden = !$("compare-toggle").checked;
  if (!$("compare-toggle").checked || !state.session) return;
  const seq = ++state.compareSeq;
  box.dataset.loading = "1";
  try {
    const data = await api("POST", `/api/sessions/${state.session.id}/compare`, { ...channelNow(), cbr: cbrInputs() });
    if (seq === state.compareSeq) renderCompare(data);
  } catch (err) {
    if (seq === state.compareSeq) showError(err);
  } finally {
    if (seq === state.compareSeq) delete box.dataset.loading;
  }
}

// ------------------------------------------------------------------ set-up
async function init() {
  pollStatus();
  let cfg;
  try { cfg = state.config = await api("GET", "/api/config"); }
  catch (err) { showError(err); return; }
  $("upload-limits").textContent = `PNG, JPEG, WebP or HEIC; up to ${cfg.upload.describe}. ` +
    "Non-square photos are cropped to the central square.";
  for (const c of cfg.channels) $("channel").append(el("option", { value: c }, c.toUpperCase()));
  $("channel").value = cfg.default_channel.name;
  $("seed").value = cfg.default_seed;
  $("snr").min = cfg.snr_range[0]; $("snr").max = cfg.snr_range[1]; $("snr").value = cfg.default_channel.snr_db;
  const showSnr = () => { $("snr-value").textContent = `${$("snr").value} dB`; };
  $("snr").addEventListener("input", showSnr); showSnr();
  $("snr").addEventListener("change", refreshCompare);
  $("channel").addEventListener("change", refreshCompare);
  $("system-info").textContent = `generator ${cfg.generator.name} (${cfg.generator.resolution} px), ` +
    `${cfg.system.preset} editing preset, ${cfg.generator.full_symbols} symbols per full latent`;
  $("footer").textContent = `Runs locally; nothing leaves this machine. Images are ${cfg.generator.resolution}×` +
    `${cfg.generator.resolution} px (the generator's size).`;
  for (const s of cfg.samples) {
    const b = el("button", { type: "button", title: s.label, "data-sample": s.name },
      el("img", { src: s.thumb_url, alt: s.label }));
    b.addEventListener("click", () => {
      for (const x of document.querySelectorAll(".samples button")) x.classList.toggle("selected", x === b);
      startSession({ sample: s.name });
    });
    $("samples").append(b);
  }
  $("upload").addEventListener("change", () => {
    const f = $("upload").files[0];
    if (!f) return;
    for (const x of document.querySelectorAll(".samples button")) x.classList.remove("selected");
    if (f.size > cfg.upload.max_bytes) {
      showError({ type: "too_large", message: `the file is ${(f.size / 1e6).toFixed(1)} MB; the limit is ${cfg.upload.describe}` });
      return;
    }
    startSession({}, f, f.name);
    $("upload").value = "";
  });
  $("send-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const text = $("instruction").value.trim();
    if (!text || !state.session) return;
    $("send").disabled = true;
    const ok = await turnRequest("send", { instruction: text, ...channelNow() });
    $("send").disabled = false;
    if (ok) $("instruction").value = "";
  });
  $("undo").addEventListener("click", () => turnRequest("undo"));
  $("reset").addEventListener("click", async () => {
    clearError();
    try {
      const data = await api("POST", `/api/sessions/${state.session.id}/reset`);
      $("history").replaceChildren();
      applySession(data.session);
      refreshCompare();
    } catch (err) { showError(err); }
  });
  $("compare-toggle").addEventListener("change", refreshCompare);
  document.body.dataset.ready = "1";
}

document.addEventListener("DOMContentLoaded", init);
