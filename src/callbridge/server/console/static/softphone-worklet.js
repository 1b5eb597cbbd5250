// The microphone, 8 kHz μ-law: averages each group of input samples (a box low-pass), keeps one,
// encodes it, and posts 160-byte (20 ms) frames to the page.
"use strict";

function linearToUlaw(sample) {
  const BIAS = 0x84, CLIP = 32635;
  let s = Math.max(-32768, Math.min(32767, Math.round(sample * 32767)));
  const sign = s < 0 ? 0x80 : 0;
  if (sign) s = -s;
  if (s > CLIP) s = CLIP;
  s += BIAS;
  let exponent = 7;
  for (let mask = 0x4000; (s & mask) === 0 && exponent > 0; mask >>= 1) exponent--;
  const mantissa = (s >> (exponent + 3)) & 0x0f;
  return ~(sign | (exponent << 4) | mantissa) & 0xff;
}

class UlawCapture extends AudioWorkletProcessor {
  constructor() {
    super();
    this.step = sampleRate / 8000;  // input samples per output sample
    this.acc = 0; this.count = 0; this.due = this.step;
    this.frame = new Uint8Array(160); this.filled = 0; this.peak = 0;
  }
  process(inputs) {
    const input = inputs[0] && inputs[0][0];
    if (!input) return true;
    for (let i = 0; i < input.length; i++) {
      this.acc += input[i]; this.count += 1;
      if (this.count >= this.due) {
        const value = this.acc / this.count;
        this.peak = Math.max(this.peak, Math.abs(value));
        this.frame[this.filled++] = linearToUlaw(value);
        this.acc = 0; this.due += this.step - this.count; this.count = 0;
        if (this.filled === 160) {
          this.port.postMessage({ frame: this.frame.slice(0), peak: this.peak });
          this.filled = 0; this.peak = 0;
        }
      }
    }
    return true;
  }
}

registerProcessor("ulaw-capture", UlawCapture);
