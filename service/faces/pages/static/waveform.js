// Draws audiowaveform peaks (version 2 JSON, 8 or 16 bits, any channel count) on a canvas:
// one lane per channel, the played part in another colour. No library, no build step.
"use strict";

(function () {
  function columns(peaks, width) {
    // Each canvas column takes the lowest minimum and highest maximum of the peaks under it,
    // per channel, so a one-hour waveform drawn 1,000 columns wide loses no peak.
    const channels = peaks.channels;
    const length = peaks.length;
    const data = peaks.data;
    const out = [];
    for (let c = 0; c < channels; c++) {
      const mins = new Float32Array(width);
      const maxs = new Float32Array(width);
      for (let x = 0; x < width; x++) {
        let first = Math.floor((x * length) / width);
        let last = Math.max(first + 1, Math.floor(((x + 1) * length) / width));
        let lo = Infinity;
        let hi = -Infinity;
        for (let i = first; i < last && i < length; i++) {
          const at = 2 * (i * channels + c);
          if (data[at] < lo) lo = data[at];
          if (data[at + 1] > hi) hi = data[at + 1];
        }
        mins[x] = lo === Infinity ? 0 : lo;
        maxs[x] = hi === -Infinity ? 0 : hi;
      }
      out.push({ mins: mins, maxs: maxs });
    }
    return out;
  }

  function loudest(peaks) {
    let top = 1;
    for (const v of peaks.data) top = Math.max(top, Math.abs(v));
    return top;
  }

  function paint(context, lanes, width, height, colour, scale) {
    context.fillStyle = colour;
    const laneHeight = height / lanes.length;
    lanes.forEach(function (lane, index) {
      const middle = laneHeight * index + laneHeight / 2;
      const half = (laneHeight / 2) * 0.92;
      for (let x = 0; x < width; x++) {
        const top = middle - (lane.maxs[x] / scale) * half;
        const bottom = middle - (lane.mins[x] / scale) * half;
        context.fillRect(x, top, 1, Math.max(1, bottom - top));
      }
    });
  }

  // A waveform bound to a canvas: draw(fraction) repaints with that much shown as played.
  function Waveform(canvas, peaks, colours) {
    this.canvas = canvas;
    this.peaks = peaks;
    this.colours = colours;
    this.resize();
  }

  Waveform.prototype.resize = function () {
    const ratio = window.devicePixelRatio || 1;
    const box = this.canvas.getBoundingClientRect();
    const width = Math.max(1, Math.round(box.width * ratio));
    const height = Math.max(1, Math.round(box.height * ratio));
    this.canvas.width = width;
    this.canvas.height = height;
    const lanes = columns(this.peaks, width);
    const scale = loudest(this.peaks);
    this.layers = [this.colours.unplayed, this.colours.played].map(function (colour) {
      const layer = document.createElement("canvas");
      layer.width = width;
      layer.height = height;
      paint(layer.getContext("2d"), lanes, width, height, colour, scale);
      return layer;
    });
  };

  Waveform.prototype.draw = function (fraction) {
    const context = this.canvas.getContext("2d");
    const width = this.canvas.width;
    const height = this.canvas.height;
    const split = Math.round(Math.min(Math.max(fraction, 0), 1) * width);
    context.clearRect(0, 0, width, height);
    context.drawImage(this.layers[0], 0, 0);
    if (split > 0) {
      context.drawImage(this.layers[1], 0, 0, split, height, 0, 0, split, height);
    }
  };

  Waveform.load = function (url) {
    return fetch(url, { credentials: "same-origin" }).then(function (response) {
      if (!response.ok) {
        return response
          .json()
          .catch(function () {
            return {};
          })
          .then(function (body) {
            const error = new Error(body.message || "HTTP " + response.status);
            error.status = response.status;
            throw error;
          });
      }
      return response.json();
    });
  };

  window.RecordingsWaveform = Waveform;
})();
