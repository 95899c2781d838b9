// The on-screen keyboard of the studio page (runs as gr.HTML's js_on_load: `element` is the component).
// Mouse/touch on the keys, computer keys (A W S E D F T G Y H U J K O L P ; = C..E, Z/X octave),
// a USB MIDI keyboard through Web MIDI, a tiny WebAudio voice so every note is heard at once, and
// a recorder: free play (time starts at the first note) or Record (one bar of count-in, metronome).
// Python gets the take as JSON through window.studioKeyboard.json() (the "Use this melody" button)
// and quantizes it there (studio.recording), so the browser never decides the music's grid.
(() => {
  const root = element.querySelector(".kb-root");
  if (!root || root.dataset.ready) return;
  root.dataset.ready = "1";
  const $ = (sel) => root.querySelector(sel);
  const COMPUTER_KEYS = "awsedftgyhujkolp;";
  const NAMES = ["C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"];
  const BLACK = new Set([1, 3, 6, 8, 10]);
  const SPAN = 25; // two octaves and a C
  const state = {
    base: 60, notes: [], open: new Map(), t0: null, aligned: false, recording: false,
    ctx: null, voices: new Map(), timer: null, nextClick: 0, clickIndex: 0, held: new Set(),
  };

  const nowS = () => performance.now() / 1000;
  const tempo = () => Math.min(240, Math.max(40, Number($(".kb-tempo").value) || 100));
  const meter = () => $(".kb-meter").value;
  const meterParts = () => meter().split("/").map(Number);
  const nameOf = (p) => NAMES[p % 12] + (Math.floor(p / 12) - 1);

  function audio() {
    const AC = window.AudioContext || window.webkitAudioContext;
    if (!AC) return null;
    if (!state.ctx) state.ctx = new AC();
    if (state.ctx.state === "suspended") state.ctx.resume().catch(() => {});
    return state.ctx;
  }

  function startVoice(pitch, velocity, when, length) {
    const ctx = audio();
    if (!ctx) return null;
    const t = when ?? ctx.currentTime;
    const osc = ctx.createOscillator();
    const gain = ctx.createGain();
    const level = 0.05 + 0.2 * velocity / 127;
    osc.type = "triangle";
    osc.frequency.value = 440 * Math.pow(2, (pitch - 69) / 12);
    gain.gain.setValueAtTime(0, t);
    gain.gain.linearRampToValueAtTime(level, t + 0.01);
    gain.gain.setTargetAtTime(level * 0.4, t + 0.01, 0.3);
    osc.connect(gain).connect(ctx.destination);
    osc.start(t);
    if (length !== undefined) {
      gain.gain.setTargetAtTime(0, t + length, 0.04);
      osc.stop(t + length + 0.3);
    }
    return { osc, gain };
  }

  function stopVoice(pitch) {
    const voice = state.voices.get(pitch);
    if (!voice || !state.ctx) return;
    const t = state.ctx.currentTime;
    voice.gain.gain.cancelScheduledValues(t);
    voice.gain.gain.setTargetAtTime(0, t, 0.04);
    voice.osc.stop(t + 0.3);
    state.voices.delete(pitch);
  }

  function click(when, accent) {
    const ctx = audio();
    if (!ctx) return;
    const osc = ctx.createOscillator();
    const gain = ctx.createGain();
    osc.frequency.value = accent ? 1760 : 1175;
    gain.gain.setValueAtTime(accent ? 0.3 : 0.18, when);
    gain.gain.exponentialRampToValueAtTime(0.001, when + 0.06);
    osc.connect(gain).connect(ctx.destination);
    osc.start(when);
    osc.stop(when + 0.07);
  }

  // ---- the keys -------------------------------------------------------------------------------
  function keyLabel(pitch) {
    const i = pitch - state.base;
    return i >= 0 && i < COMPUTER_KEYS.length ? COMPUTER_KEYS[i].toUpperCase() : "";
  }

  function buildKeys() {
    const keys = $(".kb-keys");
    keys.innerHTML = "";
    const whites = [];
    for (let p = state.base; p < state.base + SPAN; p++) if (!BLACK.has(p % 12)) whites.push(p);
    const width = 100 / whites.length;
    let whiteIndex = 0;
    for (let p = state.base; p < state.base + SPAN; p++) {
      const el = document.createElement("div");
      el.dataset.pitch = String(p);
      el.setAttribute("role", "button");
      el.setAttribute("aria-label", nameOf(p));
      el.tabIndex = p === focusPitch() ? 0 : -1; // one Tab stop for the whole keyboard; arrows move along it
      const label = keyLabel(p);
      const name = p % 12 === 0 ? `<span class="kb-name">${nameOf(p)}</span>` : "";
      el.innerHTML = `${name}<span>${label}</span>`;
      if (BLACK.has(p % 12)) {
        el.className = "kb-black";
        el.style.left = `calc(${whiteIndex * width}% - ${width * 0.3}%)`;
        el.style.width = `${width * 0.6}%`;
      } else {
        el.className = "kb-white";
        whiteIndex += 1;
      }
      keys.appendChild(el);
    }
    $(".kb-octave").textContent = `${nameOf(state.base)}–${nameOf(state.base + SPAN - 1)}`;
  }

  // Keyboard-only use: Tab reaches the keys (one stop), Left/Right (and Home/End) move among them,
  // Enter or Space plays the focused key for as long as it is held.
  let focused = null;
  function focusPitch() {
    return focused !== null && focused >= state.base && focused < state.base + SPAN ? focused : state.base;
  }

  function focusKey(pitch) {
    const el = keyElement(pitch);
    if (!el) return;
    for (const other of root.querySelectorAll(".kb-keys [data-pitch]")) other.tabIndex = -1;
    el.tabIndex = 0;
    focused = pitch;
    el.focus();
  }

  function keyElement(pitch) {
    return root.querySelector(`.kb-keys [data-pitch="${pitch}"]`);
  }

  function shiftOctave(by) {
    const next = state.base + 12 * by;
    if (next < 24 || next + SPAN > 109) return;
    for (const p of [...state.held]) noteOff(p);
    state.base = next;
    buildKeys();
  }

  // ---- notes in and out -----------------------------------------------------------------------
  function noteOn(pitch, velocity = 90) {
    if (pitch < 0 || pitch > 127 || state.held.has(pitch)) return;
    state.held.add(pitch);
    const t = nowS();
    if (state.t0 === null) state.t0 = t; // free play: time starts at the first note
    const note = { pitch, start: t - state.t0, end: null, velocity };
    state.notes.push(note);
    state.open.set(pitch, note);
    keyElement(pitch)?.classList.add("down");
    update();
    // The note is recorded before it is sounded: a browser that refuses audio must not lose it.
    try { state.voices.set(pitch, startVoice(pitch, velocity)); } catch (err) { console.info("no sound:", err); }
  }

  function noteOff(pitch) {
    if (!state.held.has(pitch)) return;
    state.held.delete(pitch);
    keyElement(pitch)?.classList.remove("down");
    try { stopVoice(pitch); } catch (err) { console.info("no sound:", err); }
    const note = state.open.get(pitch);
    if (note) note.end = Math.max(note.start + 0.01, nowS() - state.t0);
    state.open.delete(pitch);
    update();
  }

  function update() {
    const n = state.notes.length;
    let text;
    if (state.recording) text = `Recording at ${tempo()} bpm in ${meter()}: ${n} note${n === 1 ? "" : "s"}. Press Stop when done.`;
    else if (n === 0) text = "Play with the mouse, touch, or the computer keys shown on the keys (A W S E D F T G ...).";
    else text = `${n} note${n === 1 ? "" : "s"} played${state.aligned ? " in time" : ""}. Press “Use this melody” below, or Clear to start again.`;
    $(".kb-status").textContent = text;
    drawTape();
  }

  function drawTape() {
    const canvas = $(".kb-tape");
    const w = canvas.clientWidth || 600;
    const h = canvas.clientHeight || 70;
    if (canvas.width !== w) canvas.width = w;
    canvas.height = h;
    const g = canvas.getContext("2d");
    g.clearRect(0, 0, w, h);
    if (!state.notes.length) return;
    const now = state.t0 === null ? 0 : nowS() - state.t0;
    const ends = state.notes.map((n) => n.end ?? now);
    const t1 = Math.max(1, ...ends);
    const t0 = Math.min(0, ...state.notes.map((n) => n.start));
    const lo = Math.min(...state.notes.map((n) => n.pitch)) - 2;
    const hi = Math.max(...state.notes.map((n) => n.pitch)) + 2;
    const x = (t) => ((t - t0) / (t1 - t0)) * (w - 4) + 2;
    const y = (p) => h - 4 - ((p - lo) / Math.max(1, hi - lo)) * (h - 10);
    if (state.aligned) {
      const [num, den] = meterParts();
      const bar = (num * 4 / den) * 60 / tempo();
      g.strokeStyle = "rgba(120,120,120,0.35)";
      for (let b = 0; b <= t1; b += bar) { g.beginPath(); g.moveTo(x(b), 0); g.lineTo(x(b), h); g.stroke(); }
    }
    g.fillStyle = "#4f46e5";
    state.notes.forEach((n, i) => g.fillRect(x(n.start), y(n.pitch) - 3, Math.max(2, x(ends[i]) - x(n.start)), 5));
  }

  // ---- recording with count-in and metronome --------------------------------------------------
  function unitSeconds() {
    const [, den] = meterParts();
    return (60 / tempo()) * (4 / den);
  }

  function schedule() {
    const ctx = state.ctx;
    if (!ctx) return;
    const [num] = meterParts();
    const metronome = $(".kb-metronome").checked;
    while (state.nextClick < ctx.currentTime + 0.15) {
      const countIn = state.clickIndex < num;
      if (countIn || metronome) click(state.nextClick, state.clickIndex % num === 0);
      state.nextClick += unitSeconds();
      state.clickIndex += 1;
    }
  }

  function record() {
    const ctx = audio();
    clearTake();
    const [num] = meterParts();
    const lead = 0.1;
    const bar = num * unitSeconds();
    state.recording = true;
    state.aligned = true;
    state.t0 = nowS() + lead + bar; // the first downbeat after the count-in
    if (ctx) {
      state.nextClick = ctx.currentTime + lead;
      state.clickIndex = 0;
      schedule();
      state.timer = setInterval(schedule, 40);
    }
    $(".kb-record").classList.add("on");
    $(".kb-record").disabled = true;
    $(".kb-stop").disabled = false;
    $(".kb-status").textContent = `Count-in: ${num} clicks, then play.`;
  }

  function stop() {
    if (state.timer) clearInterval(state.timer);
    state.timer = null;
    for (const p of [...state.held]) noteOff(p);
    state.recording = false;
    $(".kb-record").classList.remove("on");
    $(".kb-record").disabled = false;
    $(".kb-stop").disabled = true;
    update();
  }

  function clearTake() {
    for (const p of [...state.held]) noteOff(p);
    state.notes = [];
    state.open.clear();
    state.t0 = null;
    state.aligned = false;
    update();
  }

  function listen() {
    const ctx = audio();
    if (!ctx || !state.notes.length) return;
    const first = Math.min(...state.notes.map((n) => n.start));
    const start = ctx.currentTime + 0.05;
    for (const n of state.notes) {
      const length = Math.max(0.08, (n.end ?? n.start + 0.5) - n.start);
      startVoice(n.pitch, n.velocity, start + n.start - first, length);
    }
  }

  // ---- Web MIDI ----------------------------------------------------------------------------------
  function onMidi(message) {
    const [status, pitch, velocity] = message.data;
    const kind = status & 0xf0;
    if (kind === 0x90 && velocity > 0) noteOn(pitch, velocity);
    else if (kind === 0x80 || (kind === 0x90 && velocity === 0)) noteOff(pitch);
  }

  function connectMidi() {
    const say = (text) => { $(".kb-status").textContent = text; };
    if (!navigator.requestMIDIAccess) {
      say("This browser has no Web MIDI: use Chrome, Edge or Opera for a USB keyboard, or play here.");
      return;
    }
    navigator.requestMIDIAccess().then((access) => {
      const attach = () => {
        const names = [];
        for (const input of access.inputs.values()) { input.onmidimessage = onMidi; names.push(input.name); }
        say(names.length ? `MIDI keyboard connected: ${names.join(", ")}.` : "No MIDI keyboard found: plug one in (it is picked up as soon as it appears).");
      };
      access.onstatechange = attach;
      attach();
    }).catch(() => say("MIDI access was not allowed: allow it in the browser's site settings, or play here."));
  }

  // ---- events -------------------------------------------------------------------------------------
  const pointers = new Map();
  const keys = $(".kb-keys");
  keys.addEventListener("pointerdown", (e) => {
    const el = e.target.closest("[data-pitch]");
    if (!el) return;
    e.preventDefault();
    const pitch = Number(el.dataset.pitch);
    pointers.set(e.pointerId, pitch);
    noteOn(pitch);
  });
  const release = (e) => {
    const pitch = pointers.get(e.pointerId);
    if (pitch === undefined) return;
    pointers.delete(e.pointerId);
    noteOff(pitch);
  };
  for (const kind of ["pointerup", "pointercancel", "pointerleave"]) keys.addEventListener(kind, release);

  keys.addEventListener("keydown", (e) => {
    const el = e.target.closest("[data-pitch]");
    if (!el) return;
    const pitch = Number(el.dataset.pitch);
    const moves = { ArrowLeft: -1, ArrowRight: 1, ArrowDown: -1, ArrowUp: 1 };
    if (e.key in moves) {
      e.preventDefault();
      e.stopPropagation();
      focusKey(Math.min(state.base + SPAN - 1, Math.max(state.base, pitch + moves[e.key])));
    } else if (e.key === "Home" || e.key === "End") {
      e.preventDefault();
      focusKey(e.key === "Home" ? state.base : state.base + SPAN - 1);
    } else if (e.key === "Enter" || e.key === " ") {
      e.preventDefault();
      e.stopPropagation();
      if (!e.repeat) noteOn(pitch);
    }
  });
  keys.addEventListener("keyup", (e) => {
    const el = e.target.closest("[data-pitch]");
    if (el && (e.key === "Enter" || e.key === " ")) { e.preventDefault(); noteOff(Number(el.dataset.pitch)); }
  });
  keys.addEventListener("focusin", (e) => {
    const el = e.target.closest("[data-pitch]");
    if (el) focused = Number(el.dataset.pitch);
  });

  const typing = (e) => {
    const t = e.target;
    return t && (t.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(t.tagName));
  };
  document.addEventListener("keydown", (e) => {
    if (typing(e) || e.ctrlKey || e.metaKey || e.altKey) return;
    const k = e.key.toLowerCase();
    if (k === "z" || k === "x") { if (!e.repeat) shiftOctave(k === "z" ? -1 : 1); e.preventDefault(); return; }
    const i = COMPUTER_KEYS.indexOf(k);
    if (i < 0) return;
    e.preventDefault();
    if (!e.repeat) noteOn(state.base + i);
  });
  document.addEventListener("keyup", (e) => {
    const i = COMPUTER_KEYS.indexOf(e.key.toLowerCase());
    if (i >= 0) noteOff(state.base + i);
  });
  window.addEventListener("blur", () => { for (const p of [...state.held]) noteOff(p); });

  $(".kb-record").addEventListener("click", record);
  $(".kb-stop").addEventListener("click", stop);
  $(".kb-listen").addEventListener("click", listen);
  $(".kb-midi").addEventListener("click", connectMidi);
  $(".kb-down").addEventListener("click", () => shiftOctave(-1));
  $(".kb-up").addEventListener("click", () => shiftOctave(1));
  window.addEventListener("resize", drawTape);

  window.studioKeyboard = {
    json() {
      if (state.recording) stop();
      return JSON.stringify({ notes: state.notes, tempo: tempo(), meter: meter(), aligned: state.aligned });
    },
    clear: clearTake,
    count: () => state.notes.length,
  };
  $(".kb-metronome").checked = true;
  buildKeys();
  update();
})();
