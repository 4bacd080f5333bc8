// The list page: each row plays in place (one shared <audio>, MP3 with a WAV fallback), and
// Delete asks first, then calls the API's DELETE from this same origin.
"use strict";

(function () {
  const audio = new Audio();
  audio.preload = "none";
  const status = document.getElementById("status");
  let current = null; // the row playing, or paused mid-way

  function say(text, failed) {
    status.textContent = text;
    status.classList.toggle("error", Boolean(failed));
  }

  function buttonOf(row) {
    return row.querySelector("button.play");
  }

  function stop() {
    if (!current) return;
    audio.pause();
    buttonOf(current).textContent = "Play";
    current.classList.remove("playing");
    current.querySelector(".progress-bar").style.width = "0";
    current = null;
  }

  function play(row) {
    const button = buttonOf(row);
    if (current !== row) {
      stop();
      current = row;
      audio.src = button.dataset.mp3;
      audio.dataset.fallback = button.dataset.wav;
    }
    row.classList.add("playing");
    audio.play().catch(function () {
      /* the error event below tries the WAV, or says what failed */
    });
  }

  audio.addEventListener("error", function () {
    if (!current) return;
    if (audio.dataset.fallback && audio.src.indexOf(audio.dataset.fallback) < 0) {
      audio.src = audio.dataset.fallback;
      audio.play().catch(function () {});
      return;
    }
    say("The audio of " + current.dataset.sid + " could not be played.", true);
    stop();
  });
  audio.addEventListener("play", function () {
    if (current) buttonOf(current).textContent = "Pause";
  });
  audio.addEventListener("pause", function () {
    if (current) buttonOf(current).textContent = "Play";
  });
  audio.addEventListener("ended", stop);
  audio.addEventListener("timeupdate", function () {
    if (!current || !Number.isFinite(audio.duration) || !audio.duration) return;
    const percent = (100 * audio.currentTime) / audio.duration;
    current.querySelector(".progress-bar").style.width = percent.toFixed(2) + "%";
    current.dataset.position = audio.currentTime.toFixed(2);
  });

  function remove(button) {
    const row = button.closest("tr");
    const sid = button.dataset.sid;
    if (!window.confirm("Delete " + sid + "? Its audio is removed and cannot be recovered.")) {
      return;
    }
    button.disabled = true;
    fetch(button.dataset.url, { method: "DELETE", credentials: "same-origin" })
      .then(function (response) {
        if (response.status !== 204) {
          throw new Error("the service answered " + response.status);
        }
        if (current === row) stop();
        row.remove();
        const total = document.getElementById("total");
        if (total) total.textContent = String(Math.max(0, Number(total.textContent) - 1));
        say("Deleted " + sid + ".", false);
      })
      .catch(function (error) {
        button.disabled = false;
        say("Could not delete " + sid + ": " + error.message, true);
      });
  }

  const table = document.getElementById("recordings");
  if (table) {
    table.addEventListener("click", function (event) {
      const button = event.target.closest("button");
      if (!button) return;
      if (button.classList.contains("play")) {
        const row = button.closest("tr");
        if (current === row && !audio.paused) audio.pause();
        else play(row);
      } else if (button.classList.contains("delete")) {
        remove(button);
      }
    });
  }
})();
