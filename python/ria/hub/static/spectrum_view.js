// The detail view's spectrum and waterfall: a dB axis from a reference level and a range, frequency ticks in
// MHz, zoom, peak hold, averaging, a fixed-scale colour map, and click or drag to tune.
"use strict";

// A turbo-like ramp (dark blue, cyan, green, yellow, red), as SDR waterfalls use: 256 RGB entries.
const COLOR_STOPS = [[0.0, 48, 18, 59], [0.1, 65, 69, 171], [0.2, 70, 117, 237], [0.3, 57, 162, 252],
  [0.4, 27, 207, 212], [0.5, 36, 236, 166], [0.6, 97, 252, 108], [0.7, 164, 252, 59], [0.8, 209, 232, 52],
  [0.9, 243, 198, 58], [0.95, 233, 120, 25], [1.0, 180, 30, 10]];
const COLORMAP = (() => {
  const lut = new Uint8Array(256 * 3);
  for (let i = 0; i < 256; i++) {
    const t = i / 255;
    let k = 1;
    while (k < COLOR_STOPS.length - 1 && COLOR_STOPS[k][0] < t) k++;
    const [t0, ...c0] = COLOR_STOPS[k - 1], [t1, ...c1] = COLOR_STOPS[k];
    const u = Math.min(1, Math.max(0, (t - t0) / (t1 - t0)));
    for (let j = 0; j < 3; j++) lut[i * 3 + j] = Math.round(c0[j] + (c1[j] - c0[j]) * u);
  }
  return lut;
})();

function niceStep(raw) { // 1, 2 or 5 times a power of ten, at least `raw`
  const p = Math.pow(10, Math.floor(Math.log10(raw)));
  for (const m of [1, 2, 5, 10]) if (m * p >= raw) return m * p;
  return 10 * p;
}

const AXIS = { left: 48, right: 8, top: 8, bottom: 22 }; // the spectrum plot's margins, px
const BACKGROUND = "#0d1117", GRID = "#2b333d", LABEL = "#c9d1d9", TRACE = "#58d68d", PEAK = "#f0b429";
const TICK = "#c9d1d9";

class SpectrumView {
  constructor(spectrumCanvas, waterfallCanvas, onTune) {
    this.sc = spectrumCanvas;
    this.wc = waterfallCanvas;
    this.onTune = onTune; // (center_frequency_hz) => void
    this.ref = null; // dB at the top of the plot; null: set from the first spectrum
    this.range = 80; // dB from top to bottom
    this.zoom = 1;
    this.zoomCenter = 0; // Hz from the radio's centre, the middle of what is shown
    this.peakHold = false;
    this.averaging = 4; // spectra averaged (exponential, 1/averaging for the newest)
    this.avg = null;
    this.peak = null;
    this.last = null; // the newest spectrum from the hub
    this.axes = null; // what was drawn, for the tests: ticks, labels, plot box
    this.drawn = 0;
    this._drag = null;
    this._listen();
  }

  reset() {
    this.avg = this.peak = this.last = null;
    this.zoomCenter = 0;
    const c = this.wc.getContext("2d");
    c.fillStyle = BACKGROUND;
    c.fillRect(0, 0, this.wc.width, this.wc.height);
  }

  resetPeak() { this.peak = null; }

  autoScale() {
    if (!this.avg) return;
    const sorted = Array.from(this.avg).sort((a, b) => a - b);
    const floor = sorted[Math.floor(sorted.length / 2)], top = sorted[sorted.length - 1];
    this.ref = Math.ceil((top + 5) / 10) * 10;
    this.range = Math.max(20, Math.min(160, this.ref - (Math.floor((floor - 10) / 10) * 10)));
  }

  // ---- what is shown: the frequency window and the mapping to pixels

  plot() {
    const w = this.sc.width, h = this.sc.height;
    return { left: AXIS.left, top: AXIS.top, width: w - AXIS.left - AXIS.right, height: h - AXIS.top - AXIS.bottom };
  }

  window() { // [f0, f1] in Hz, or null before any spectrum
    const s = this.last;
    if (!s) return null;
    const span = s.sample_rate / this.zoom;
    const maxOffset = (s.sample_rate - span) / 2;
    this.zoomCenter = Math.max(-maxOffset, Math.min(maxOffset, this.zoomCenter));
    const mid = s.center_frequency + this.zoomCenter;
    return [mid - span / 2, mid + span / 2];
  }

  frequencyAt(x) { // canvas x (px) -> Hz
    const win = this.window(), p = this.plot();
    if (!win) return null;
    return win[0] + (x - p.left) / p.width * (win[1] - win[0]);
  }

  setZoom(zoom, aroundHz) {
    const s = this.last;
    if (!s) { this.zoom = zoom; return; }
    if (aroundHz !== undefined) this.zoomCenter = aroundHz - s.center_frequency;
    this.zoom = Math.max(1, Math.min(64, zoom));
    this.draw();
  }

  // ---- new data

  update(spec) {
    const retuned = this.last && (this.last.center_frequency !== spec.center_frequency ||
                                  this.last.sample_rate !== spec.sample_rate);
    const bins = Float32Array.from(spec.bins);
    if (!this.avg || retuned || this.avg.length !== bins.length) {
      this.avg = bins.slice();
      this.peak = null;
    } else {
      const a = 1 / this.averaging;
      for (let i = 0; i < bins.length; i++) this.avg[i] += a * (bins[i] - this.avg[i]);
    }
    if (this.peakHold) {
      if (!this.peak) this.peak = this.avg.slice();
      for (let i = 0; i < bins.length; i++) this.peak[i] = Math.max(this.peak[i], this.avg[i]);
    }
    if (retuned) this.zoomCenter = 0;
    this.last = spec;
    if (this.ref === null) this.autoScale();
    this.draw();
    this.scrollWaterfall(bins);
    this.drawn += 1;
  }

  // ---- drawing

  draw() {
    const s = this.last;
    if (!s) return;
    const c = this.sc.getContext("2d"), p = this.plot(), [f0, f1] = this.window();
    const w = this.sc.width, h = this.sc.height, n = this.avg.length, binHz = s.sample_rate / n;
    const y = (db) => p.top + (this.ref - db) / this.range * p.height;
    const x = (hz) => p.left + (hz - f0) / (f1 - f0) * p.width;
    c.fillStyle = BACKGROUND;
    c.fillRect(0, 0, w, h);
    c.font = "11px sans-serif";
    c.lineWidth = 1;

    // dB axis: a line and a label every step, the reference level at the top
    const dbTicks = [];
    const dbStep = niceStep(this.range / Math.max(2, Math.floor(p.height / 28)));
    c.textAlign = "right";
    c.textBaseline = "middle";
    for (let db = Math.floor(this.ref / dbStep) * dbStep; db >= this.ref - this.range - 1e-9; db -= dbStep) {
      const yy = Math.round(y(db)) + 0.5;
      c.strokeStyle = GRID;
      c.beginPath(); c.moveTo(p.left, yy); c.lineTo(p.left + p.width, yy); c.stroke();
      c.fillStyle = LABEL;
      const label = String(Math.round(db));
      c.fillText(label, p.left - 6, yy);
      dbTicks.push({ db, y: yy, label });
    }
    c.save();
    c.translate(10, p.top + p.height / 2);
    c.rotate(-Math.PI / 2);
    c.textAlign = "center";
    c.fillText("dB", 0, 0);
    c.restore();

    // frequency axis: ticks at a round step, labels in MHz with as many decimals as the step needs
    const freqTicks = [];
    const fStep = niceStep((f1 - f0) / Math.max(2, Math.floor(p.width / 110)));
    const decimals = Math.max(0, Math.ceil(-Math.log10(fStep / 1e6) - 1e-9));
    c.textAlign = "center";
    c.textBaseline = "top";
    for (let f = Math.ceil(f0 / fStep) * fStep; f <= f1 + 1e-6; f += fStep) {
      const xx = Math.round(x(f)) + 0.5;
      c.strokeStyle = GRID;
      c.beginPath(); c.moveTo(xx, p.top); c.lineTo(xx, p.top + p.height); c.stroke();
      c.strokeStyle = TICK;
      c.beginPath(); c.moveTo(xx, p.top + p.height); c.lineTo(xx, p.top + p.height + 5); c.stroke();
      const label = (f / 1e6).toFixed(decimals);
      c.fillStyle = LABEL;
      c.fillText(label, xx, p.top + p.height + 7);
      freqTicks.push({ hz: f, x: xx, label });
    }
    c.strokeStyle = TICK;
    c.strokeRect(p.left + 0.5, p.top + 0.5, p.width - 1, p.height - 1);

    // the traces, clipped to the plot
    c.save();
    c.beginPath(); c.rect(p.left, p.top, p.width, p.height); c.clip();
    const trace = (bins, colour) => {
      c.strokeStyle = colour;
      c.beginPath();
      const first = Math.max(0, Math.floor((f0 - s.center_frequency) / binHz + n / 2) - 1);
      const last = Math.min(n - 1, Math.ceil((f1 - s.center_frequency) / binHz + n / 2) + 1);
      for (let i = first; i <= last; i++) {
        const xx = x(s.center_frequency + (i - n / 2) * binHz), yy = y(bins[i]);
        if (i === first) c.moveTo(xx, yy); else c.lineTo(xx, yy);
      }
      c.stroke();
    };
    if (this.peakHold && this.peak) trace(this.peak, PEAK);
    trace(this.avg, TRACE);
    c.strokeStyle = "rgba(255,255,255,0.35)"; // the radio's centre
    c.setLineDash([4, 4]);
    const xc = x(s.center_frequency);
    c.beginPath(); c.moveTo(xc, p.top); c.lineTo(xc, p.top + p.height); c.stroke();
    c.restore();
    this.axes = { plot: p, f0, f1, ref: this.ref, range: this.range, freqTicks, dbTicks, decimals };
  }

  scrollWaterfall(bins) {
    const c = this.wc.getContext("2d"), w = this.wc.width, h = this.wc.height, p = this.plot();
    const [f0, f1] = this.window(), s = this.last, n = bins.length, binHz = s.sample_rate / n;
    c.drawImage(this.wc, 0, 0, w, h - 1, 0, 1, w, h - 1);
    const row = c.createImageData(w, 1);
    for (let xx = 0; xx < w; xx++) {
      let v = -Infinity;
      if (xx >= p.left && xx < p.left + p.width) {
        const hz = f0 + (xx - p.left) / p.width * (f1 - f0);
        v = bins[Math.min(n - 1, Math.max(0, Math.floor((hz - s.center_frequency) / binHz + n / 2)))];
      }
      const t = v === -Infinity ? -1 : Math.min(1, Math.max(0, (v - (this.ref - this.range)) / this.range));
      if (t < 0) { row.data.set([13, 17, 23, 255], xx * 4); continue; }
      const k = Math.round(t * 255) * 3;
      row.data.set([COLORMAP[k], COLORMAP[k + 1], COLORMAP[k + 2], 255], xx * 4);
    }
    c.putImageData(row, 0, 0);
  }

  // ---- the mouse: click tunes there, a drag moves the band by as much, the wheel zooms

  _listen() {
    for (const canvas of [this.sc, this.wc]) {
      canvas.addEventListener("mousedown", (e) => { this._drag = { x0: this._x(e, canvas), moved: 0 }; });
      canvas.addEventListener("mousemove", (e) => {
        if (this._drag) this._drag.moved = Math.max(this._drag.moved, Math.abs(this._x(e, canvas) - this._drag.x0));
      });
      canvas.addEventListener("mouseup", (e) => this._release(this._x(e, canvas)));
      canvas.addEventListener("wheel", (e) => {
        e.preventDefault();
        const hz = this.frequencyAt(this._x(e, canvas));
        if (hz !== null) this.setZoom(this.zoom * (e.deltaY < 0 ? 2 : 0.5), hz);
      }, { passive: false });
    }
  }

  _x(e, canvas) { // the event's x in canvas pixels (the canvas may be drawn scaled)
    const r = canvas.getBoundingClientRect();
    return (e.clientX - r.left) * canvas.width / r.width;
  }

  _release(x) {
    const drag = this._drag;
    this._drag = null;
    if (!drag || !this.last || !this.onTune) return;
    const p = this.plot();
    let target;
    if (drag.moved > 4) { // the band follows the mouse: dragging right lowers the centre
      target = this.last.center_frequency - (x - drag.x0) / p.width * (this.window()[1] - this.window()[0]);
    } else {
      if (x < p.left || x > p.left + p.width) return;
      target = this.frequencyAt(x);
    }
    this.onTune(Math.round(target / 1000) * 1000); // a whole kHz
  }
}

// The overview card's small spectrum: the trace filled with the colour map, on the same dB scale.
function drawMini(canvas, spec, ref, range) {
  const c = canvas.getContext("2d"), w = canvas.width, h = canvas.height, n = spec.bins.length;
  c.fillStyle = BACKGROUND;
  c.fillRect(0, 0, w, h);
  for (let i = 0; i < n; i++) {
    const t = Math.min(1, Math.max(0, (spec.bins[i] - (ref - range)) / range));
    const k = Math.round(t * 255) * 3;
    c.fillStyle = `rgb(${COLORMAP[k]},${COLORMAP[k + 1]},${COLORMAP[k + 2]})`;
    const x0 = Math.floor(i * w / n), x1 = Math.floor((i + 1) * w / n);
    c.fillRect(x0, h - t * h, Math.max(1, x1 - x0), t * h);
  }
}

window.SpectrumView = SpectrumView;
window.drawMini = drawMini;
window.riaColormap = COLORMAP;
