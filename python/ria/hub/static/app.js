// The lab hub's live view: agents, and for the selected one a spectrum, a waterfall and session controls.
"use strict";

const view = { token: "", selected: null, agents: [], spectraDrawn: 0, lastSpectrumUpdate: -1, error: null };
window.riaView = view; // read by the browser test

const $ = (id) => document.getElementById(id);
const mhz = (hz) => (hz / 1e6).toFixed(4) + " MHz";

function takeToken() {
  // The token travels in the URL fragment (never sent to the server, so never in an access log) and is
  // then removed from the address bar.
  const m = location.hash.match(/token=([^&]+)/);
  if (m) {
    sessionStorage.setItem("ria-admin-token", decodeURIComponent(m[1]));
    history.replaceState(null, "", location.pathname);
  }
  return sessionStorage.getItem("ria-admin-token") || "";
}

async function api(method, path, body) {
  const response = await fetch(path, {
    method,
    headers: { "Authorization": "Bearer " + view.token, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await response.json().catch(() => ({}));
  if (response.status === 401) { showSignin(); throw new Error("the admin token was refused"); }
  if (!response.ok) throw new Error(data.error || data.detail || "HTTP " + response.status);
  return data;
}

function showSignin() {
  $("signin").hidden = false;
  $("main").hidden = true;
}

function age(t) {
  if (!t) return "-";
  const s = Math.max(0, Date.now() / 1000 - t);
  return s < 90 ? s.toFixed(0) + " s ago" : new Date(t * 1000).toLocaleTimeString();
}

function renderAgents() {
  const body = $("agents").querySelector("tbody");
  body.replaceChildren();
  for (const a of view.agents) {
    const row = document.createElement("tr");
    row.dataset.agentId = a.agent_id;
    const state = a.online ? a.status : "offline";
    for (const [text, cls] of [[a.name], [a.agent_id], [state, "state " + state], [txState(a), "tx"],
                               [(a.hardware || []).join(", ") || "-"], [age(a.last_heartbeat)]]) {
      const cell = document.createElement("td");
      cell.textContent = text;
      if (cls) cell.className = cls;
      row.appendChild(cell);
    }
    if (a.agent_id === view.selected) row.classList.add("selected");
    row.addEventListener("click", () => select(a.agent_id));
    body.appendChild(row);
  }
  $("no-agents").hidden = view.agents.length > 0;
}

// TX (docs/protocol.md §6): what the agent offers, and its session as the agent reported it.
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
  $("tx-caps").textContent = txCaps(tx.caps);
  $("tx-sent").textContent = s ? s.sent_samples : "-";
  $("tx-played").textContent = s && s.played !== null ? s.played : "-";
  $("tx-underruns").textContent = s && s.underruns !== null ? s.underruns : "-";
  const st = s && (s.tx_info || s.settings);
  $("tx-radio").textContent = st && st.tx_center_frequency ? `${mhz(st.tx_center_frequency)}, ${st.tx_gain} dB` : "-";
}

function select(agentId) {
  view.selected = agentId;
  view.lastSpectrumUpdate = -1;
  const wf = $("waterfall").getContext("2d");
  wf.fillStyle = "#0d1117";
  wf.fillRect(0, 0, wf.canvas.width, wf.canvas.height);
  renderAgents();
  renderDetail();
}

function renderDetail() {
  const a = view.agents.find((x) => x.agent_id === view.selected);
  $("detail").hidden = !a;
  if (!a) return;
  $("detail-title").textContent = `${a.name} (${a.agent_id}) — ${a.online ? a.status : "offline"}`;
  const s = a.stream;
  $("f-center").textContent = s ? mhz(s.center_frequency) : "-";
  $("f-rate").textContent = s ? (s.sample_rate / 1e6).toFixed(3) + " MS/s" : "-";
  $("f-frames").textContent = s ? s.frames : "-";
  $("f-drops").textContent = s ? s.dropped_samples : "-";
  $("f-gaps").textContent = s ? s.gaps : "-";
  $("f-error").hidden = !a.last_error;
  $("f-error").textContent = a.last_error ? a.last_error.message : "";
  renderTx(a);
  if (!$("c-device").value && a.hardware && a.hardware.length) $("c-device").placeholder = a.hardware[0];
}

function color(t) { // 0..1 -> a dark-blue to yellow ramp
  const r = Math.round(255 * Math.min(1, Math.max(0, 1.8 * t - 0.5)));
  const g = Math.round(255 * Math.min(1, Math.max(0, 1.6 * t - 0.15)));
  const b = Math.round(255 * Math.min(1, Math.max(0, 0.45 + t * 0.9 - Math.max(0, t - 0.6) * 2.2)));
  return [r, g, b];
}

function drawSpectrum(spec) {
  const bins = spec.bins;
  const lo = Math.min(...bins), hi = Math.max(...bins);
  const floor = lo, span = Math.max(hi - lo, 10);
  const c = $("spectrum").getContext("2d");
  const w = c.canvas.width, h = c.canvas.height;
  c.fillStyle = "#0d1117";
  c.fillRect(0, 0, w, h);
  c.strokeStyle = "#30363d";
  for (let i = 1; i < 4; i++) { c.beginPath(); c.moveTo(0, h * i / 4); c.lineTo(w, h * i / 4); c.stroke(); }
  c.strokeStyle = "#58d68d";
  c.beginPath();
  bins.forEach((v, i) => {
    const x = i * w / bins.length, y = h - 8 - (v - floor) / span * (h - 24);
    if (i === 0) c.moveTo(x, y); else c.lineTo(x, y);
  });
  c.stroke();
  c.fillStyle = "#c9d1d9";
  c.font = "12px sans-serif";
  c.fillText(`${mhz(spec.center_frequency - spec.sample_rate / 2)}`, 4, 14);
  c.fillText(`${mhz(spec.center_frequency + spec.sample_rate / 2)}`, w - 100, 14);
  c.fillText(`peak ${mhz(spec.peak_frequency)}  ${spec.peak_db.toFixed(1)} dB`, w / 2 - 80, 14);

  const wf = $("waterfall").getContext("2d");
  const ww = wf.canvas.width, wh = wf.canvas.height;
  wf.drawImage(wf.canvas, 0, 0, ww, wh - 1, 0, 1, ww, wh - 1); // scroll down one row
  const row = wf.createImageData(ww, 1);
  for (let x = 0; x < ww; x++) {
    const v = bins[Math.floor(x * bins.length / ww)];
    const [r, g, b] = color((v - floor) / span);
    row.data.set([r, g, b, 255], x * 4);
  }
  wf.putImageData(row, 0, 0);
  $("f-peak").textContent = mhz(spec.peak_frequency);
  view.spectraDrawn += 1;
}

async function pollAgents() {
  try {
    view.agents = (await api("GET", "/api/agents")).agents;
    $("hub-state").textContent = `${view.agents.filter((a) => a.online).length} of ${view.agents.length} agents online`;
    if (!view.selected) {
      const first = view.agents.find((a) => a.online && a.status === "streaming") || view.agents.find((a) => a.online);
      if (first) select(first.agent_id);
    }
    renderAgents();
    renderDetail();
  } catch (e) {
    $("hub-state").textContent = "hub unreachable: " + e.message;
  }
}

async function pollSpectrum() {
  if (!view.selected) return;
  try {
    const data = await api("GET", `/api/agents/${view.selected}/spectrum`);
    if (data.spectrum && data.spectrum.updates !== view.lastSpectrumUpdate) {
      view.lastSpectrumUpdate = data.spectrum.updates;
      drawSpectrum(data.spectrum);
    }
  } catch (e) { /* the agent went offline; the agents poll shows it */ }
}

async function control(action) {
  const rc = {};
  const device = $("c-device").value.trim();
  const freq = parseFloat($("c-freq").value) * 1e6, rate = parseFloat($("c-rate").value) * 1e6;
  const gain = parseFloat($("c-gain").value);
  if (device) rc.device = device;
  if (isFinite(freq)) rc.center_frequency = freq;
  if (action === "start" && isFinite(rate)) rc.sample_rate = rate;
  if (action === "start" && isFinite(gain)) rc.gain = gain;
  const body = action === "stop" ? {} : { radio_config: action === "configure" ? { center_frequency: freq } : rc };
  $("c-result").textContent = action + "…";
  try {
    const r = await api("POST", `/api/agents/${view.selected}/${action}`, body);
    $("c-result").textContent = `${action}: ${r.error ? r.error : "done"} (ack ${r.acked})`;
  } catch (e) {
    $("c-result").textContent = `${action} failed: ${e.message}`;
  }
  pollAgents();
}

function main() {
  view.token = takeToken();
  $("signin-form").addEventListener("submit", (e) => {
    e.preventDefault();
    sessionStorage.setItem("ria-admin-token", $("token-input").value.trim());
    location.reload();
  });
  if (!view.token) { showSignin(); return; }
  $("main").hidden = false;
  $("b-start").addEventListener("click", () => control("start"));
  $("b-retune").addEventListener("click", () => control("configure"));
  $("b-stop").addEventListener("click", () => control("stop"));
  pollAgents();
  setInterval(pollAgents, 1000);
  setInterval(pollSpectrum, 250);
}

main();
