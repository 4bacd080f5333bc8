// The instance page: the <audio> element driven by the waveform (click or drag to seek),
// a play-head that follows playback, and the keyboard (space, arrows, Home, End).
"use strict";

(function () {
  const player = document.getElementById("player");
  const audio = document.getElementById("audio");
  const wave = document.getElementById("wave");
  const canvas = document.getElementById("waveform");
  const playhead = document.getElementById("playhead");
  const note = document.getElementById("wave-note");
  const button = document.getElementById("play");
  const elapsed = document.getElementById("elapsed");
  const total = document.getElementById("total");
  const audioError = document.getElementById("audio-error");
  const style = getComputedStyle(document.documentElement);
  const colours = {
    played: style.getPropertyValue("--played").trim() || "#2459c9",
    unplayed: style.getPropertyValue("--unplayed").trim() || "#9fb3d9",
  };
  let waveform = null;
  let peaksSeconds = 0;
  let pendingSeek = null;

  function clock(seconds) {
    const s = Math.max(0, Math.floor(seconds || 0));
    const h = Math.floor(s / 3600);
    const m = Math.floor((s % 3600) / 60);
    const r = String(s % 60).padStart(2, "0");
    return h ? h + ":" + String(m).padStart(2, "0") + ":" + r : m + ":" + r;
  }

  function duration() {
    if (Number.isFinite(audio.duration) && audio.duration > 0) return audio.duration;
    return peaksSeconds || Number(player.dataset.duration) || 0;
  }

  function position() {
    return pendingSeek !== null ? pendingSeek : audio.currentTime;
  }

  function render() {
    const length = duration();
    const fraction = length ? position() / length : 0;
    playhead.style.left = (Math.min(Math.max(fraction, 0), 1) * 100).toFixed(3) + "%";
    if (waveform) waveform.draw(fraction);
    elapsed.textContent = clock(position());
    wave.setAttribute("aria-valuenow", position().toFixed(1));
    wave.setAttribute("aria-valuetext", clock(position()));
  }

  function loop() {
    render();
    if (!audio.paused) requestAnimationFrame(loop);
  }

  function seek(seconds) {
    const length = duration();
    const target = Math.min(Math.max(seconds, 0), length || 0);
    if (audio.readyState >= 1) {
      audio.currentTime = target;
      pendingSeek = null;
    } else {
      // Before the metadata is in, the element cannot seek: it does once it can.
      pendingSeek = target;
      audio.load();
    }
    render();
  }

  function seekToPointer(event) {
    const box = wave.getBoundingClientRect();
    const fraction = (event.clientX - box.left) / box.width;
    seek(Math.min(Math.max(fraction, 0), 1) * duration());
  }

  function toggle() {
    if (audio.paused) {
      audio.play().catch(function (error) {
        showAudioError("The audio could not be played: " + error.message);
      });
    } else {
      audio.pause();
    }
  }

  function showAudioError(text) {
    audioError.textContent = text;
    audioError.hidden = false;
  }

  audio.addEventListener("loadedmetadata", function () {
    total.textContent = clock(duration());
    wave.setAttribute("aria-valuemax", duration().toFixed(1));
    if (pendingSeek !== null) {
      audio.currentTime = pendingSeek;
      pendingSeek = null;
    }
    render();
  });
  audio.addEventListener("play", function () {
    button.textContent = "Pause";
    requestAnimationFrame(loop);
  });
  audio.addEventListener("pause", function () {
    button.textContent = "Play";
    render();
  });
  audio.addEventListener("seeked", render);
  audio.addEventListener("timeupdate", function () {
    if (audio.paused) render();
  });
  // The last <source> failing means neither the MP3 nor the WAV could be played.
  const sources = audio.querySelectorAll("source");
  sources[sources.length - 1].addEventListener("error", function () {
    showAudioError("This recording's audio could not be played.");
  });

  button.addEventListener("click", toggle);

  let dragging = false;
  wave.addEventListener("pointerdown", function (event) {
    dragging = true;
    wave.setPointerCapture(event.pointerId);
    wave.focus();
    seekToPointer(event);
  });
  wave.addEventListener("pointermove", function (event) {
    if (dragging) seekToPointer(event);
  });
  wave.addEventListener("pointerup", function (event) {
    dragging = false;
    wave.releasePointerCapture(event.pointerId);
  });

  document.addEventListener("keydown", function (event) {
    if (event.altKey || event.ctrlKey || event.metaKey) return;
    const target = event.target;
    const typing = target instanceof HTMLInputElement || target instanceof HTMLTextAreaElement;
    if (typing) return;
    const step = event.shiftKey ? 30 : 5;
    if (event.key === " " || event.key === "k") {
      // A focused button or link keeps its own Space; everywhere else Space plays or pauses.
      if (target instanceof HTMLButtonElement || target instanceof HTMLAnchorElement) return;
      toggle();
    } else if (event.key === "ArrowLeft") {
      seek(position() - step);
    } else if (event.key === "ArrowRight") {
      seek(position() + step);
    } else if (event.key === "Home") {
      seek(0);
    } else if (event.key === "End") {
      seek(duration());
    } else {
      return;
    }
    event.preventDefault();
  });

  window.addEventListener("resize", function () {
    if (waveform) {
      waveform.resize();
      render();
    }
  });

  window.RecordingsWaveform.load(player.dataset.peaks)
    .then(function (peaks) {
      peaksSeconds = (peaks.length * peaks.samples_per_pixel) / peaks.sample_rate;
      waveform = new window.RecordingsWaveform(canvas, peaks, colours);
      note.hidden = true;
      wave.dataset.drawn = "true";
      render();
    })
    .catch(function (error) {
      note.textContent =
        error.status === 422
          ? "This recording's audio could not be decoded: there is no waveform to draw."
          : "The waveform could not be loaded (" + error.message + ").";
      note.classList.add("error");
      wave.dataset.drawn = "failed";
    });

  render();
})();
