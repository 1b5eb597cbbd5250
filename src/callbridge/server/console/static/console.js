// callbridge console: click a turn to hear it; the live transcript over Server-Sent Events.
"use strict";

function seekTo(turn) {
  const audio = document.getElementById("recording");
  if (!audio) return;
  const shift = parseFloat(audio.dataset.shift || "0");
  audio.currentTime = Math.max(0, parseInt(turn.dataset.startMs, 10) / 1000 - shift);
  document.querySelectorAll(".turn.playing").forEach((t) => t.classList.remove("playing"));
  turn.classList.add("playing");
  audio.play().catch(() => {});
}

function watchTurns() {
  const list = document.getElementById("transcript");
  if (!list) return;
  list.addEventListener("click", (event) => {
    const turn = event.target.closest("[data-start-ms]");
    if (turn) seekTo(turn);
  });
  list.addEventListener("keydown", (event) => {
    const turn = event.target.closest("[data-start-ms]");
    if (turn && (event.key === "Enter" || event.key === " ")) { event.preventDefault(); seekTo(turn); }
  });
}

function addTurn(list, turn) {
  const item = document.createElement("li");
  item.className = "turn " + (turn.role === "agent" ? "agent" : "caller");
  const who = document.createElement("span");
  who.className = "who";
  who.textContent = turn.role;
  const text = document.createElement("span");
  text.className = "text";
  text.textContent = turn.text;  // text, never markup
  item.append(who, text);
  if (turn.interrupted) {
    const badge = document.createElement("span");
    badge.className = "badge";
    badge.textContent = "interrupted";
    item.append(" ", badge);
  }
  list.append(item);
}

function followLive() {
  const list = document.getElementById("live-transcript");
  if (!list) return;
  const status = document.getElementById("live-status");
  const source = new EventSource(list.dataset.events);
  source.addEventListener("turn", (event) => {
    const empty = list.querySelector(".empty");
    if (empty) empty.remove();
    addTurn(list, JSON.parse(event.data));
    list.dataset.count = String(list.children.length);
  });
  source.addEventListener("ended", () => {
    status.textContent = "ended";
    source.close();
    document.querySelectorAll(".controls button").forEach((b) => { b.disabled = true; });
  });
}

document.addEventListener("DOMContentLoaded", () => { watchTurns(); followLive(); });
