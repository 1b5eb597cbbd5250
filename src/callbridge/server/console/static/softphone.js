// The softphone: the microphone as 8 kHz μ-law over a WebSocket that speaks Twilio's Media
// Streams protocol, and the agent's audio played back as Twilio would (marks echoed when their
// audio has played, everything queued dropped on `clear`).
"use strict";

const ULAW = new Float32Array(256);
for (let i = 0; i < 256; i++) {
  const u = ~i & 0xff, sign = u & 0x80, exponent = (u >> 4) & 7, mantissa = u & 0x0f;
  const magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84;
  ULAW[i] = (sign ? -magnitude : magnitude) / 32768;
}

function toBase64(bytes) {
  let text = "";
  for (let i = 0; i < bytes.length; i++) text += String.fromCharCode(bytes[i]);
  return btoa(text);
}

function fromBase64(text) {
  const raw = atob(text), bytes = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
  return bytes;
}

class Softphone {
  constructor(root) {
    this.root = root;
    this.stats = { framesSent: 0, playedMs: 0, receivedMs: 0, clears: 0, marks: 0, peak: 0,
                   callSid: "", state: "idle" };
    window.softphone = this.stats;  // read by the tests and handy in the devtools
    this.status = document.getElementById("phone-status");
    this.callButton = document.getElementById("call");
    this.hangButton = document.getElementById("hang-up");
    this.callButton.addEventListener("click", () => this.call().catch((e) => this.fail(e)));
    this.hangButton.addEventListener("click", () => this.hangUp());
  }

  setState(state) {
    this.stats.state = state;
    this.status.textContent = state;
    this.callButton.disabled = state !== "idle" && state !== "ended" && state !== "failed";
    this.hangButton.disabled = !this.callButton.disabled;
  }

  fail(error) {
    this.setState("failed");
    this.status.textContent = "failed: " + (error && error.message ? error.message : error);
    this.stop();
  }

  async call() {
    this.setState("starting");
    this.media = await navigator.mediaDevices.getUserMedia({ audio: {
      echoCancellation: true, noiseSuppression: false, autoGainControl: false } });
    this.context = new AudioContext();
    await this.context.audioWorklet.addModule(this.root.dataset.worklet);
    this.playHead = 0; this.pending = []; this.sources = new Set(); this.timestamp = 0;
    const agent = document.getElementById("agent").value;
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const url = scheme + "//" + location.host + this.root.dataset.socket +
      "?agent=" + encodeURIComponent(agent);
    this.socket = new WebSocket(url);
    this.socket.addEventListener("message", (event) => this.receive(JSON.parse(event.data)));
    this.socket.addEventListener("close", () => { this.stop(); if (this.stats.state !== "failed") this.setState("ended"); });
    this.socket.addEventListener("open", () => this.startMic());
  }

  startMic() {
    const source = this.context.createMediaStreamSource(this.media);
    this.capture = new AudioWorkletNode(this.context, "ulaw-capture");
    this.capture.port.onmessage = (event) => this.send(event.data);
    source.connect(this.capture);
    this.setState("connected");
  }

  send({ frame, peak }) {
    if (!this.socket || this.socket.readyState !== WebSocket.OPEN) return;
    document.getElementById("mic-level").style.width = Math.min(100, peak * 300) + "%";
    this.socket.send(JSON.stringify({ event: "media", streamSid: this.streamSid,
      media: { track: "inbound", chunk: String(++this.stats.framesSent),
               timestamp: String(this.timestamp), payload: toBase64(frame) } }));
    this.timestamp += 20;
  }

  receive(message) {
    if (message.event === "softphone") {
      this.streamSid = message.streamSid;
      this.stats.callSid = message.callSid;
      document.getElementById("phone-call").textContent = message.callSid;
    } else if (message.event === "media") {
      this.play(fromBase64(message.media.payload));
    } else if (message.event === "mark") {
      this.mark(message.mark.name);
    } else if (message.event === "clear") {
      this.clear();
    }
  }

  play(ulaw) {
    const ctx = this.context, buffer = ctx.createBuffer(1, ulaw.length, 8000);
    const samples = buffer.getChannelData(0);
    let peak = 0;
    for (let i = 0; i < ulaw.length; i++) { samples[i] = ULAW[ulaw[i]]; peak = Math.max(peak, Math.abs(samples[i])); }
    const node = ctx.createBufferSource();
    node.buffer = buffer;
    node.connect(ctx.destination);
    const at = Math.max(ctx.currentTime, this.playHead);
    node.start(at);
    this.playHead = at + buffer.duration;
    this.stats.receivedMs += buffer.duration * 1000;
    node.cleared = false;
    node.onended = () => {
      this.sources.delete(node);
      if (!node.cleared) {
        this.stats.playedMs += buffer.duration * 1000;
        this.stats.peak = Math.max(this.stats.peak, peak);
        document.getElementById("agent-level").style.width = Math.min(100, peak * 300) + "%";
      }
    };
    this.sources.add(node);
  }

  mark(name) {
    const wait = (this.playHead - this.context.currentTime) * 1000;
    const entry = { name };
    entry.timer = setTimeout(() => this.echo(entry), Math.max(0, wait));
    this.pending.push(entry);
  }

  echo(entry) {
    const index = this.pending.indexOf(entry);
    if (index < 0) return;
    this.pending.splice(index, 1);
    clearTimeout(entry.timer);
    this.stats.marks += 1;
    if (this.socket && this.socket.readyState === WebSocket.OPEN) {
      this.socket.send(JSON.stringify({ event: "mark", streamSid: this.streamSid,
                                        mark: { name: entry.name } }));
    }
  }

  clear() {
    this.stats.clears += 1;
    for (const node of this.sources) { node.cleared = true; try { node.stop(); } catch (e) { /* not started */ } }
    this.sources.clear();
    this.playHead = this.context.currentTime;
    for (const entry of this.pending.slice()) this.echo(entry);  // Twilio echoes them at once
  }

  hangUp() {
    if (this.socket && this.socket.readyState === WebSocket.OPEN) {
      this.socket.send(JSON.stringify({ event: "stop", streamSid: this.streamSid, stop: {} }));
      this.socket.close(1000);
    }
    this.stop();
    this.setState("ended");
  }

  stop() {
    if (this.capture) { this.capture.port.onmessage = null; this.capture.disconnect(); this.capture = null; }
    if (this.media) { this.media.getTracks().forEach((t) => t.stop()); this.media = null; }
  }
}

document.addEventListener("DOMContentLoaded", () => {
  const root = document.getElementById("softphone");
  if (root) new Softphone(root);
});
