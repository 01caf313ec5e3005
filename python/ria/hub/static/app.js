// The lab hub's live view: an overview card per agent, and a detail view of one agent with its spectrum,
// waterfall and session controls. What a token may do comes from /api/me (roles.py on the hub).
"use strict";

const view = {
  token: "", access: null, selected: null, agents: [], spectra: {}, miniDrawn: 0, error: null,
  spectrum: null, lastSpectrumUpdate: -1, edited: new Set(),
};
window.riaView = view; // read by the browser tests

const $ = (id) => document.getElementById(id);
const mhz = (hz) => (hz / 1e6).toFixed(4) + " MHz";
const OVERVIEW_BINS = 128;

function takeToken() {
  // The token travels in the URL fragment (never sent to the server, so never in an access log) and is
  // then removed from the address bar.
  const m = location.hash.match(/token=([^&]+)/);
  if (m) {
    sessionStorage.setItem("ria-token", decodeURIComponent(m[1]));
    history.replaceState(null, "", location.pathname);
  }
  return sessionStorage.getItem("ria-token") || "";
}

async function api(method, path, body) {
  const response = await fetch(path, {
    method,
    headers: { "Authorization": "Bearer " + view.token, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await response.json().catch(() => ({}));
  if (response.status === 401) { showSignin(); throw new Error("the token was refused"); }
  if (!response.ok) throw new Error(data.error || data.detail || "HTTP " + response.status);
  return data;
}

function showSignin() {
  $("signin").hidden = false;
  $("main").hidden = true;
}

const canControl = () => view.access && view.access.can_control;

// ---------------------------------------------------------------- the overview

function stateOf(a) { return a.online ? a.status : (a.status === "revoked" ? "revoked" : "offline"); }

function card(a) {
  let el = document.querySelector(`.card[data-agent-id="${CSS.escape(a.agent_id)}"]`);
  if (!el) {
    el = document.createElement("div");
    el.className = "card";
    el.dataset.agentId = a.agent_id;
    const top = document.createElement("div");
    top.className = "top";
    for (const cls of ["name", "state", "tx", "twin"]) {
      const span = document.createElement("span");
      span.className = cls;
      top.appendChild(span);
    }
    const line = document.createElement("div");
    line.className = "line";
    const voice = document.createElement("div");
    voice.className = "voice";
    const canvas = document.createElement("canvas");
    canvas.width = 300;
    canvas.height = 120;
    el.append(top, line, voice, canvas);
    el.addEventListener("click", () => select(a.agent_id));
  }
  const state = stateOf(a), s = a.stream;
  el.querySelector(".name").textContent = a.name;
  el.querySelector(".name").title = a.agent_id;
  el.querySelector(".state").textContent = state;
  el.querySelector(".state").className = "state " + state;
  el.querySelector(".tx").textContent = ["-", "off"].includes(txState(a)) ? "" : "TX " + txState(a);
  el.querySelector(".tx").dataset.tx = txState(a);
  const twin = a.twin_connections;  // two processes on one agent's token replace each other
  el.querySelector(".twin").textContent = twin ? "running twice?" : "";
  el.querySelector(".twin").title = twin
    ? `${twin.last_minute} connections replaced in the last minute, from ${twin.addresses.join(" and ")}` : "";
  el.querySelector(".voice").textContent = a.voice ? voiceLine(a.voice) : "";
  el.querySelector(".voice").hidden = !a.voice;
  el.querySelector(".line").textContent = s && s.media === "audio"
    ? `audio ${s.sample_format} · ${(s.sample_rate / 1e3).toFixed(1)} kHz · concealed ${s.audio.concealed_frames} frames`
    : s && s.sample_rate
    ? `${mhz(s.center_frequency)} · ${(s.sample_rate / 1e6).toFixed(3)} MS/s · drops ${s.dropped_samples}`
    : (a.hardware || []).join(", ") || "-";
  el.classList.toggle("offline", !a.online);
  return el;
}

function renderOverview() {
  const cards = $("cards");
  const wanted = view.agents.map(card);
  if (wanted.length !== cards.children.length || wanted.some((el, i) => cards.children[i] !== el)) {
    cards.replaceChildren(...wanted);
  }
  $("no-agents").hidden = view.agents.length > 0;
}

function drawMinis() {
  for (const a of view.agents) {
    const el = document.querySelector(`.card[data-agent-id="${CSS.escape(a.agent_id)}"]`);
    const spec = view.spectra[a.agent_id];
    if (el && spec && a.stream) {
      drawMini(el.querySelector("canvas"), spec, ...miniScale(spec.bins));
      el.dataset.drawn = spec.updates;
      view.miniDrawn += 1;
    }
  }
}

// Each card's own scale in 10 dB steps, from its median (the noise floor) to its strongest bin, so that every
// radio's floor is dark and its carriers bright, and the scale does not flicker from one update to the next.
function miniScale(bins) {
  const sorted = Array.from(bins).sort((a, b) => a - b);
  const floor = Math.floor((sorted[Math.floor(sorted.length / 2)] - 5) / 10) * 10;
  const ref = Math.max(floor + 30, Math.ceil((sorted[sorted.length - 1] + 3) / 10) * 10);
  return [ref, ref - floor];
}

// ---------------------------------------------------------------- TX facts (docs/protocol.md §6)

function txState(a) {
  const tx = a.tx || {};
  if (tx.session) return tx.session.state;
  if (!tx.caps) return "-";
  if (tx.caps.error) return "caps unreadable";
  return tx.caps.tx_enabled ? "offered" : "off";
}

function txCaps(caps) {
  if (!caps) return "-";
  if (caps.error) return "unreadable: " + caps.error;
  if (!caps.tx_enabled) return "TX not offered";
  const parts = ["gain ≤ " + (caps.tx_max_gain_db ?? "∞") + " dB", "≤ " + (caps.tx_max_duration_s ?? "∞") + " s"];
  const ranges = caps.tx_allowed_freq_ranges;
  parts.push(ranges ? ranges.map(([lo, hi]) => `${(lo / 1e6).toFixed(3)}–${(hi / 1e6).toFixed(3)} MHz`).join(", ")
                    : "any frequency");
  return parts.join(", ");
}

function renderTx(a) {
  const tx = a.tx || {};
  const s = tx.session || tx.last;
  $("tx-state").textContent = tx.session ? s.state : s ? `idle (last: ${s.state}${s.message ? ", " + s.message : ""})`
                                                       : "idle";
  $("tx-caps").textContent = (a.capabilities || []).includes("audio_out") && !(tx.caps || {}).tx_enabled
    ? "speaker (audio_out): say, play" : txCaps(tx.caps);
  $("tx-sent").textContent = s ? s.sent_samples : "-";
  $("tx-played").textContent = s && s.played !== null ? s.played : "-";
  $("tx-underruns").textContent = s && s.underruns !== null ? s.underruns : "-";
  const st = s && (s.tx_info || s.settings);
  $("tx-radio").textContent = st && st.media === "audio" ? `speaker: ${st.sample_format} ${st.tx_sample_rate / 1e3} kHz, ${st.tx_gain} dB`
    : st && st.tx_center_frequency ? `${mhz(st.tx_center_frequency)}, ${st.tx_gain} dB` : "-";
}

// ---------------------------------------------------------------- voice agents (docs/protocol.md §8)

const dbfs = (v) => (typeof v === "number" ? v.toFixed(1) + " dBFS" : "-");

function voiceLine(v) {
  const l = v.levels || {};
  const short = (x) => (typeof x === "number" ? x.toFixed(0) : "-");
  return `speaker ${short(l.speaker_dbfs)} · mic ${short(l.mic_dbfs)} · out ${short(l.out_dbfs)} · ` +
    `received ${short(v.received_dbfs)} dBFS` + (typeof v.erle_db === "number" ? ` · ERLE ${v.erle_db.toFixed(0)} dB` : "");
}

function renderVoice(a) {
  const v = a.voice;
  $("voice").hidden = !v;
  if (!v) return;
  const l = v.levels || {};
  $("v-speaker").textContent = dbfs(l.speaker_dbfs);
  $("v-mic").textContent = dbfs(l.mic_dbfs);
  $("v-out").textContent = dbfs(l.out_dbfs);
  $("v-received").textContent = dbfs(v.received_dbfs);
  $("v-erle").textContent = typeof v.erle_db === "number" ? v.erle_db.toFixed(1) + " dB" : "-";
  $("v-delay").textContent = typeof v.echo_delay_ms === "number" ? v.echo_delay_ms.toFixed(1) + " ms" : "-";
  $("v-concealed").textContent = v.received ? `${v.received.concealed_frames} frames` : "-";
}

// ---------------------------------------------------------------- the detail view

function select(agentId) {
  view.selected = agentId;
  view.lastSpectrumUpdate = -1;
  view.edited.clear();
  view.spectrum.reset();
  $("overview").hidden = agentId !== null;
  $("detail").hidden = agentId === null;
  if (agentId !== null) sizeCanvases();
  renderDetail();
  pollSpectrum();
}

function sizeCanvases() { // draw at the size shown, so that text and ticks are crisp and clicks map 1:1
  for (const c of [$("spectrum"), $("waterfall")]) {
    const w = Math.round(c.getBoundingClientRect().width);
    if (w > 100 && c.width !== w) c.width = w;
  }
  view.spectrum.draw();
}

// The form shows the agent's actual settings (its stream_info, else its last start) unless the user is typing.
function showSetting(id, value) {
  const input = $(id);
  if (view.edited.has(id) || document.activeElement === input || value === undefined || value === null) return;
  input.value = value;
}

function renderDetail() {
  const a = view.agents.find((x) => x.agent_id === view.selected);
  if (!a) return;
  $("detail-title").textContent = `${a.name} (${a.agent_id}) — ${stateOf(a)}`;
  const s = a.stream;
  const audio = s && s.media === "audio";
  $("f-center").textContent = s && !audio ? mhz(s.center_frequency) : "-";
  $("f-rate").textContent = audio ? (s.sample_rate / 1e3).toFixed(1) + " kHz" : s ? (s.sample_rate / 1e6).toFixed(3) + " MS/s" : "-";
  $("f-gain").textContent = s && s.gain !== null && s.gain !== undefined ? s.gain + " dB" : "-";
  $("f-format").textContent = s && s.sample_format ? s.sample_format : "-";
  $("f-frames").textContent = s ? s.frames : "-";
  $("f-drops").textContent = s ? s.dropped_samples : "-";
  $("f-gaps").textContent = s ? s.gaps : "-";
  $("f-error").hidden = !a.last_error;
  $("f-error").textContent = a.last_error ? a.last_error.message : "";
  renderTx(a);
  renderVoice(a);
  if (s) {
    showSetting("c-freq", s.center_frequency ? String(+(s.center_frequency / 1e6).toFixed(6)) : null);
    showSetting("c-rate", s.sample_rate ? String(+(s.sample_rate / 1e6).toFixed(6)) : null);
    showSetting("c-gain", typeof s.gain === "number" ? String(s.gain) : null);
  }
  if (!$("c-device").value && a.hardware && a.hardware.length) $("c-device").placeholder = a.hardware[0];
}

async function pollSpectrum() {
  const agentId = view.selected;
  if (!agentId) return;
  try {
    const data = await api("GET", `/api/agents/${encodeURIComponent(agentId)}/spectrum`);
    if (agentId === view.selected && data.spectrum && data.spectrum.updates !== view.lastSpectrumUpdate) {
      view.lastSpectrumUpdate = data.spectrum.updates;
      view.spectrum.update(data.spectrum);
      $("f-peak").textContent = mhz(data.spectrum.peak_frequency);
      showDisplay();
    }
  } catch (e) { /* the agent went offline; the agents poll shows it */ }
}

function showDisplay() {
  const sv = view.spectrum;
  if (document.activeElement !== $("d-ref") && sv.ref !== null) $("d-ref").value = sv.ref;
  if (document.activeElement !== $("d-range")) $("d-range").value = sv.range;
  $("d-zoom").value = String(sv.zoom);
}

// ---------------------------------------------------------------- controls

async function control(action, radioConfig) {
  const agentId = view.selected;
  const rc = {};
  const device = $("c-device").value.trim();
  const freq = parseFloat($("c-freq").value) * 1e6, rate = parseFloat($("c-rate").value) * 1e6;
  const gain = parseFloat($("c-gain").value);
  if (device) rc.device = device;
  if (isFinite(freq)) rc.center_frequency = freq;
  if (action === "start" && isFinite(rate)) rc.sample_rate = rate;
  if (action === "start" && isFinite(gain)) rc.gain = gain;
  const body = action === "stop" ? {} : { radio_config: radioConfig || (action === "configure"
    ? { center_frequency: freq } : rc) };
  $("c-result").textContent = action + "…";
  try {
    const r = await api("POST", `/api/agents/${encodeURIComponent(agentId)}/${action}`, body);
    $("c-result").textContent = `${action}: ${r.error ? r.error : "done"} (ack ${r.acked})`;
  } catch (e) {
    $("c-result").textContent = `${action} failed: ${e.message}`;
  }
  view.edited.clear();
  pollAgents();
}

function tuneTo(hz) {
  if (!canControl() || !view.selected) return;
  view.edited.delete("c-freq");
  $("c-freq").value = String(+(hz / 1e6).toFixed(6));
  view.lastTune = hz;
  control("configure", { center_frequency: hz });
}

function wireDisplay() {
  const sv = view.spectrum;
  $("d-ref").addEventListener("change", () => {
    const v = parseFloat($("d-ref").value);
    if (isFinite(v)) { sv.ref = v; sv.draw(); }
  });
  $("d-range").addEventListener("change", () => {
    const v = parseFloat($("d-range").value);
    if (isFinite(v)) { sv.range = Math.max(10, Math.min(160, v)); sv.draw(); }
  });
  $("d-auto").addEventListener("click", () => { sv.autoScale(); sv.draw(); showDisplay(); });
  $("d-zoom").addEventListener("change", () => sv.setZoom(Number($("d-zoom").value)));
  $("d-avg").addEventListener("change", () => { sv.averaging = Number($("d-avg").value); });
  $("d-peak").addEventListener("change", () => { sv.peakHold = $("d-peak").checked; sv.resetPeak(); sv.draw(); });
  $("d-peak-reset").addEventListener("click", () => { sv.resetPeak(); sv.draw(); });
  for (const id of ["c-freq", "c-rate", "c-gain"]) $(id).addEventListener("input", () => view.edited.add(id));
}

// ---------------------------------------------------------------- polling

async function pollAgents() {
  try {
    view.agents = (await api("GET", "/api/agents")).agents;
    $("hub-state").textContent = `${view.agents.filter((a) => a.online).length} of ${view.agents.length} agents online`;
    if (!view.selected && view.access.agent_id && view.agents.length === 1) select(view.agents[0].agent_id);
    renderOverview();
    renderDetail();
  } catch (e) {
    $("hub-state").textContent = "hub unreachable: " + e.message;
  }
}

async function pollSpectra() {
  if (view.selected) return;
  try {
    view.spectra = (await api("GET", `/api/spectra?bins=${OVERVIEW_BINS}`)).spectra;
    drawMinis();
  } catch (e) { /* shown by the agents poll */ }
}

function describe(access) {
  const scope = access.agent_id ? ` (agent ${access.agent_id})` : "";
  return { admin: "admin", teacher: "teacher", control: "control" + scope, view: "view-only" + scope }[access.role];
}

async function main() {
  view.token = takeToken();
  $("signin-form").addEventListener("submit", (e) => {
    e.preventDefault();
    sessionStorage.setItem("ria-token", $("token-input").value.trim());
    location.reload();
  });
  if (!view.token) { showSignin(); return; }
  try {
    view.access = await api("GET", "/api/me");
  } catch (e) {
    $("hub-state").textContent = "hub unreachable: " + e.message;
    return;
  }
  $("main").hidden = false;
  $("role").textContent = describe(view.access);
  $("controls").hidden = !canControl();
  $("view-only").hidden = canControl();
  $("tune-hint").hidden = !canControl();
  view.spectrum = new SpectrumView($("spectrum"), $("waterfall"), tuneTo);
  wireDisplay();
  $("b-start").addEventListener("click", () => control("start"));
  $("b-retune").addEventListener("click", () => control("configure"));
  $("b-stop").addEventListener("click", () => control("stop"));
  $("b-back").addEventListener("click", () => { select(null); renderOverview(); pollSpectra(); });
  window.addEventListener("resize", () => { if (view.selected) sizeCanvases(); });
  await pollAgents();
  pollSpectra();
  setInterval(pollAgents, 1000);
  setInterval(pollSpectra, 500);
  setInterval(pollSpectrum, 250);
  view.ready = true;
}

main();
