// The live piano roll of the studio page (runs as gr.HTML's js_on_load: `element` is the component,
// `props.value` the take's data from studio.audio.roll_view, `watch` tells when it changes).
// Draws every track in its colour on a canvas that scrolls and zooms; a playhead follows the page's
// audio player (#audio audio), a click seeks it, and a range of bars can loop. With "Edit melody" on,
// the melody's notes are added, moved, lengthened and removed on the 16th grid, with undo; the page's
// "Use the edited melody" button sends window.studioRoll.json() to Python (studio.core.melody_edit).
// Under the bar numbers, the take's chords: the ones the user gave (bold) and the ones heard in it.
(() => {
  const root = element.querySelector(".lr-root");
  if (!root || root.dataset.ready) return;
  root.dataset.ready = "1";
  const $ = (sel) => root.querySelector(sel);
  const scroller = $(".lr-scroll");
  const space = $(".lr-space");
  const canvas = $(".lr-canvas");
  const tip = $(".lr-tip");
  const NAMES = ["C", "C♯", "D", "E♭", "E", "F", "F♯", "G", "A♭", "A", "B♭", "B"];
  const BLACK = new Set([1, 3, 6, 8, 10]);
  const GUTTER = 38; // pitch names, left
  const RULER = 24; // bar numbers, top
  const DRUMS = 16; // the drum band, bottom
  const LANE = 20; // a row of chord names under the ruler: the chords given, then the chords heard
  const MAX_UNDO = 200;
  const S = {
    data: null, key: null, notes: [], undo: [], pps: 40, playhead: 0, selected: null, editing: false,
    loop: { on: false, from: 0, to: 1 }, range: null, drag: null, lastSteps: 4, raf: 0, ctx: null, edits: 0,
    lanes: [], drawnChords: [],
  };

  const r6 = (x) => Math.round(x * 1e6) / 1e6;
  const clamp = (x, lo, hi) => Math.min(hi, Math.max(lo, x));
  const nameOf = (p) => NAMES[p % 12] + (Math.floor(p / 12) - 1);
  const say = (text) => { $(".lr-status").textContent = text; };
  const audioEl = () => document.querySelector("#audio audio");
  const narrow = () => window.innerWidth < 600;

  // ---- time, grid and geometry -----------------------------------------------------------------
  // The grid: a step (a 16th) is ticks_per_step ticks from tick 0; tempo segments [tick, start_s, s_per_tick].
  function segment(key, value) {
    const segs = S.data.grid.tempo;
    let seg = segs[0];
    for (const s of segs) { if (s[key] <= value) seg = s; else break; }
    return seg;
  }
  const tickOf = (s) => { const g = segment(1, s); return g[0] + (s - g[1]) / g[2]; };
  const timeOfTick = (t) => { const g = segment(0, t); return g[1] + (t - g[0]) * g[2]; };
  const stepOf = (s) => tickOf(s) / S.data.grid.ticks_per_step;
  const timeOf = (step) => r6(timeOfTick(step * S.data.grid.ticks_per_step));
  const stepSeconds = () => S.data.grid.ticks_per_step * S.data.grid.tempo[0][2];

  // The pitches shown: the whole take's, or while editing the melody's own register (rows tall enough to
  // touch), widened when a note leaves it. Taller for a wide range, within limits.
  function pitchRange() {
    if (!S.editing || !S.notes.length) return S.data.pitch_range;
    const low = Math.min(...S.notes.map((n) => n.p));
    const high = Math.max(...S.notes.map((n) => n.p));
    if (!S.range || low < S.range[0] || high > S.range[1]) {
      const middle = Math.round((low + high) / 2);
      const half = Math.max(12, Math.ceil((high - low) / 2) + 7);
      S.range = [clamp(middle - half, 0, 127), clamp(middle + half, 0, 127)];
    }
    return S.range;
  }
  function view() {
    const d = S.data;
    const hasDrums = d.tracks.some((t) => t.drums && t.notes.length);
    const [lo, hi] = pitchRange();
    const band = hasDrums ? DRUMS + 4 : 2;
    const top = RULER + LANE * S.lanes.length;
    const height = clamp(top + 6 * (hi - lo + 1) + band, (narrow() ? 240 : 300) + top - RULER, (narrow() ? 340 : 420) + top - RULER);
    const bottom = height - band;
    return { width: scroller.clientWidth || 600, height, top, bottom, lo, hi, rowH: (bottom - top) / (hi - lo + 1), hasDrums };
  }
  const xOf = (s) => GUTTER + s * S.pps - scroller.scrollLeft;
  const timeAt = (x) => (x - GUTTER + scroller.scrollLeft) / S.pps;
  const yOf = (v, p) => v.top + (v.hi - p) * v.rowH;
  const pitchAt = (v, y) => v.hi - Math.floor((y - v.top) / v.rowH);

  function barAt(s) {
    const bars = S.data.bars;
    let i = 0;
    while (i + 1 < bars.length && bars[i + 1] <= s + 1e-9) i += 1;
    return i;
  }
  const barEnd = (i) => (i + 1 < S.data.bars.length ? S.data.bars[i + 1] : S.data.end_s);

  function where(s) {
    const i = barAt(s);
    const beats = S.data.beats.filter((b) => b >= S.data.bars[i] - 1e-9 && b < barEnd(i) - 1e-9);
    let beat = 0;
    beats.forEach((b, k) => { if (b <= s + 1e-6) beat = k; });
    const after = Math.round(stepOf(s) - stepOf(beats[beat] ?? S.data.bars[i])); // 16ths after the beat
    return `bar ${S.data.bar_numbers[i]}, beat ${beat + 1}${after > 0 ? ` + ${after}/16` : ""}`;
  }

  function length(n) {
    const steps = Math.round(stepOf(n.e) - stepOf(n.s));
    const words = { 1: "a 16th", 2: "an 8th", 3: "a dotted 8th", 4: "a quarter", 6: "a dotted quarter", 8: "a half", 12: "a dotted half", 16: "a whole" };
    return words[steps] || `${steps} 16ths`;
  }

  // ---- the data --------------------------------------------------------------------------------
  // Melody edits are kept per take's melody, so showing another take and coming back finds them
  // (until the page reloads): the key is the melody's notes and the bars, as the take gives them.
  const keptEdits = new Map();
  function melodyKey(data) {
    const melody = data && data.melody !== null ? data.tracks[data.melody] : null;
    return melody ? JSON.stringify([data.bars, melody.notes]) : null;
  }

  function load(value) {
    let data = value;
    if (typeof data === "string") { try { data = data ? JSON.parse(data) : null; } catch (err) { data = null; } }
    if (S.key) {
      if (S.edits > 0) keptEdits.set(S.key, { notes: S.notes.map((n) => ({ ...n })), undo: S.undo.slice() });
      else keptEdits.delete(S.key);
    }
    cancelAnimationFrame(S.raf);
    S.raf = 0;
    S.data = data && Array.isArray(data.tracks) && Array.isArray(data.bars) && data.grid ? data : null;
    S.undo = [];
    S.range = null;
    S.selected = null;
    S.edits = 0;
    S.playhead = 0;
    const melody = S.data && S.data.melody !== null ? S.data.tracks[S.data.melody] : null;
    S.notes = melody ? melody.notes.map(([s, e, p, v]) => ({ s, e, p, v })) : [];
    S.key = melodyKey(S.data);
    const back = S.key ? keptEdits.get(S.key) : null;
    if (back) {
      S.notes = back.notes.map((n) => ({ ...n }));
      S.undo = back.undo.slice();
      S.edits = Math.max(1, back.undo.length);
    }
    const chords = S.data && Array.isArray(S.data.chords) ? S.data.chords : [];
    S.lanes = [chords.filter((c) => c.given), chords.filter((c) => !c.given)].filter((lane) => lane.length);
    legend();
    if (!S.data) { say(""); draw(); return; }
    const first = S.data.bar_numbers[0];
    const last = S.data.bar_numbers[S.data.bar_numbers.length - 1];
    for (const input of [$(".lr-loop-from"), $(".lr-loop-to")]) { input.min = String(first); input.max = String(last); }
    S.loop.from = clamp(S.loop.from, 0, S.data.bars.length - 1);
    S.loop.to = clamp(Math.max(S.loop.to, S.loop.from), 0, S.data.bars.length - 1);
    showLoop();
    $(".lr-edit").disabled = !melody;
    zoomTo(defaultZoom(), 0);
    scroller.scrollLeft = 0;
    buttons();
    if (back) say("Your edits to this melody are back (Undo takes them back one by one); “Use the edited melody” to generate from them.");
    else say(melody ? "Play the take; click the roll to jump there. Edit melody lets you change your tune." : "");
  }

  function legend() {
    const list = $(".lr-legend");
    list.textContent = "";
    $(".lr-chord-legend").hidden = true;
    if (!S.data) return;
    const item = (colour, text, cls) => {
      const li = document.createElement("li");
      const swatch = document.createElement("span");
      swatch.className = "lr-swatch" + (cls ? " " + cls : "");
      swatch.style.background = colour;
      li.append(swatch, document.createTextNode(text)); // names come from files: text, never markup
      list.appendChild(li);
    };
    S.data.tracks.forEach((t) => item(t.colour, t.label, t.melody ? "lr-melody" : ""));
    if (S.data.given_until_s !== null && S.data.given_until_s !== undefined) item("#F6DFA8", "added by the model", "");
    const key = $(".lr-chord-legend");
    key.textContent = "";
    key.hidden = !S.lanes.length;
    for (const lane of S.lanes) {
      const li = document.createElement("li");
      const sample = document.createElement("span");
      sample.className = "lr-chord-sample" + (lane[0].given ? " lr-given" : "");
      sample.textContent = lane[0].name; // a chord name from the take's file: text, never markup
      li.append(sample, document.createTextNode(lane[0].given ? "chords you gave (row “given”)" : "chords heard in the take (row “heard”)"));
      key.appendChild(li);
    }
  }

  // The chord lanes under the ruler: each chord's name at its start (a chord that began off screen at
  // the left edge), in bold where the user gave it; a name that would run into the one before is left out.
  function drawChords(g, c, width) {
    S.drawnChords = [];
    if (!S.lanes.length) return;
    g.fillStyle = c.bg;
    g.fillRect(0, RULER, width, LANE * S.lanes.length);
    g.textBaseline = "middle";
    S.lanes.forEach((lane, row) => {
      const y = RULER + row * LANE;
      g.font = lane[0].given ? "700 13px system-ui, sans-serif" : "13px system-ui, sans-serif";
      const shown = lane.filter((chord) => xOf(chord.end_s) > GUTTER && xOf(chord.start_s) <= width);
      g.fillStyle = c.fg;
      g.globalAlpha = 0.5;
      for (const chord of shown) if (xOf(chord.start_s) >= GUTTER) g.fillRect(Math.round(xOf(chord.start_s)), y + 3, 1, LANE - 6);
      let end = -1e9;
      for (const chord of shown) {
        const x = Math.max(xOf(chord.start_s) + 4, GUTTER + 4);
        const w = g.measureText(chord.name).width;
        if (x < end + 8) continue;
        g.globalAlpha = 1;
        g.fillStyle = c.bg; // a name longer than its chord reads whole over the next chord's mark
        g.fillRect(x - 2, y + 2, w + 4, LANE - 4);
        g.fillStyle = c.fg;
        g.globalAlpha = chord.given ? 1 : 0.85;
        g.fillText(chord.name, x, y + LANE / 2 + 0.5);
        end = x + w;
        S.drawnChords.push({ name: chord.name, given: chord.given, x, w, y });
      }
      g.globalAlpha = 1;
      g.fillStyle = c.fg;
      g.globalAlpha = 0.25;
      g.fillRect(0, y + LANE - 1, width, 1);
      g.globalAlpha = 1;
    });
  }

  // ---- drawing ---------------------------------------------------------------------------------
  function palette() {
    const style = getComputedStyle(root);
    const bg = style.backgroundColor && style.backgroundColor !== "rgba(0, 0, 0, 0)" ? style.backgroundColor : "#ffffff";
    const rgb = (bg.match(/\d+(\.\d+)?/g) || [255, 255, 255]).slice(0, 3).map(Number);
    const dark = 0.2126 * rgb[0] + 0.7152 * rgb[1] + 0.0722 * rgb[2] < 110;
    return {
      bg, fg: style.color || "#111111", dark,
      added: dark ? "rgba(200, 150, 40, 0.22)" : "rgba(246, 223, 168, 0.55)",
      loop: dark ? "rgba(129, 140, 248, 0.22)" : "rgba(79, 70, 229, 0.12)",
      head: dark ? "#fb7185" : "#e11d48",
      pick: dark ? "#c7d2fe" : "#312e81",
    };
  }

  function draw() {
    const dpr = window.devicePixelRatio || 1;
    if (!S.data) {
      canvas.width = 0;
      canvas.height = 0;
      return;
    }
    const v = view();
    const width = v.width;
    const total = GUTTER + S.data.end_s * S.pps + 12;
    if (space.style.width !== `${total}px`) space.style.width = `${total}px`;
    space.style.height = `${v.height}px`;
    canvas.style.width = `${width}px`;
    canvas.style.height = `${v.height}px`;
    if (canvas.width !== Math.round(width * dpr)) canvas.width = Math.round(width * dpr);
    if (canvas.height !== Math.round(v.height * dpr)) canvas.height = Math.round(v.height * dpr);
    const g = canvas.getContext("2d");
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    const c = palette();
    const t0 = timeAt(GUTTER);
    const t1 = timeAt(width);
    g.fillStyle = c.bg;
    g.fillRect(0, 0, width, v.height);

    // 1. Pitch rows: black keys shaded, a line under every C.
    g.fillStyle = c.fg;
    for (let p = v.lo; p <= v.hi; p++) {
      const y = yOf(v, p);
      if (BLACK.has(p % 12)) { g.globalAlpha = 0.05; g.fillRect(GUTTER, y, width, v.rowH); }
      if (p % 12 === 0) { g.globalAlpha = 0.2; g.fillRect(GUTTER, y + v.rowH - 1, width, 1); }
    }
    g.globalAlpha = 1;

    // 2. The added bars (a continuation), the loop's bars.
    const given = S.data.given_until_s;
    if (given !== null && given !== undefined && given < t1) {
      g.fillStyle = c.added;
      g.fillRect(Math.max(GUTTER, xOf(given)), 0, width, v.height);
    }
    const [ls, le] = loopTimes();
    if (S.loop.on || S.drag?.kind === "range") {
      g.fillStyle = c.loop;
      g.fillRect(xOf(ls), 0, xOf(le) - xOf(ls), v.height);
    }

    // 3. Grid: 16ths when there is room (and editing), beats, bars.
    g.fillStyle = c.fg;
    const stepPx = stepSeconds() * S.pps;
    if (S.editing && stepPx >= 9) {
      g.globalAlpha = 0.06;
      const first = Math.max(0, Math.floor(stepOf(Math.max(0, t0))));
      const last = Math.ceil(stepOf(Math.min(S.data.end_s, t1)));
      for (let k = first; k <= last; k++) g.fillRect(Math.round(xOf(timeOf(k))), v.top, 1, v.bottom - v.top);
    }
    g.globalAlpha = 0.14;
    for (const b of S.data.beats) if (b >= t0 && b <= t1) g.fillRect(Math.round(xOf(b)), v.top, 1, v.bottom - v.top);
    g.globalAlpha = 0.5;
    for (const b of S.data.bars) if (b >= t0 - 1 && b <= t1) g.fillRect(Math.round(xOf(b)), 0, 1, v.height);
    g.globalAlpha = 1;

    // 4. Notes: the accompaniment, then the melody on top, outlined; drums as ticks in their band.
    S.data.tracks.forEach((t, i) => {
      if (i === S.data.melody) return;
      g.fillStyle = t.colour;
      if (t.drums) {
        for (const [s] of t.notes) if (s >= t0 - 0.1 && s <= t1) g.fillRect(xOf(s) - 1, v.height - DRUMS - 1, 2.5, DRUMS - 2);
        return;
      }
      g.globalAlpha = 0.82;
      for (const [s, e, p] of t.notes) {
        if (e < t0 || s > t1 || p < v.lo || p > v.hi) continue;
        g.fillRect(xOf(s), yOf(v, p) + 0.5, Math.max(2, (e - s) * S.pps - 1), Math.max(1, v.rowH - 1));
      }
      g.globalAlpha = 1;
    });
    if (S.data.melody !== null) {
      const colour = S.data.tracks[S.data.melody].colour;
      g.font = "600 11px system-ui, sans-serif";
      g.textBaseline = "middle";
      for (const n of S.notes) {
        if (n.e < t0 || n.s > t1 || n.p < v.lo || n.p > v.hi) continue;
        const x = xOf(n.s);
        const y = yOf(v, n.p);
        const w = Math.max(3, (n.e - n.s) * S.pps - 1);
        g.fillStyle = colour;
        g.fillRect(x, y, w, v.rowH);
        g.strokeStyle = c.fg;
        g.lineWidth = 1;
        g.strokeRect(x + 0.5, y + 0.5, w - 1, v.rowH - 1);
        if (w >= 30 && v.rowH >= 11) { g.fillStyle = "#ffffff"; g.fillText(nameOf(n.p), x + 3, y + v.rowH / 2 + 0.5, w - 5); }
        if (n === S.selected) {
          g.strokeStyle = c.pick;
          g.lineWidth = 3;
          g.strokeRect(x - 2, y - 2, w + 4, v.rowH + 4);
        }
      }
    }

    // 5. Where the student's bars end.
    if (given !== null && given !== undefined && given >= t0 && given <= t1) {
      g.fillStyle = c.fg;
      g.fillRect(xOf(given) - 1, 0, 2.5, v.height);
    }

    // 6. The ruler: bar numbers (as many as fit), the loop's bars, the boundary's words.
    g.fillStyle = c.bg;
    g.fillRect(0, 0, width, RULER);
    if (S.loop.on || S.drag?.kind === "range") { g.fillStyle = c.loop; g.fillRect(xOf(ls), 0, xOf(le) - xOf(ls), RULER); }
    g.fillStyle = c.fg;
    g.fillRect(0, RULER - 1, width, 1);
    g.textBaseline = "middle";
    let label = null; // where the student's bars end: "added by the model", after that bar's number
    if (given !== null && given !== undefined && given >= t0 && given <= t1) {
      g.font = "600 12px system-ui, sans-serif";
      const words = "added by the model →";
      const x = xOf(given) + 3 + g.measureText(String(S.data.bar_numbers[barAt(given)])).width + 10;
      if (x + g.measureText(words).width + 4 < width) {
        label = [x, x + g.measureText(words).width];
        g.fillText(words, x, RULER / 2);
      }
    }
    g.font = "12px system-ui, sans-serif";
    let lastX = -1e9;
    S.data.bars.forEach((b, i) => {
      const x = xOf(b);
      const text = String(S.data.bar_numbers[i]);
      if (x < GUTTER - 30 || x > width || x - lastX < 30) return;
      if (label && x + 3 + g.measureText(text).width > label[0] - 4 && x < label[1] + 6) return; // under the words
      lastX = x;
      g.fillText(text, x + 3, RULER / 2);
    });

    drawChords(g, c, width);

    // 7. The pitch names, over everything at the left, and the chord lanes' words.
    g.fillStyle = c.bg;
    g.fillRect(0, 0, GUTTER, v.height);
    g.fillStyle = c.fg;
    g.fillRect(GUTTER - 1, 0, 1, v.height);
    g.font = "11px system-ui, sans-serif";
    g.textBaseline = "middle";
    S.lanes.forEach((lane, row) => g.fillText(lane[0].given ? "given" : "heard", 3, RULER + row * LANE + LANE / 2, GUTTER - 5));
    for (let p = v.lo; p <= v.hi; p++) {
      if (p % 12 === 0 || v.rowH >= 13) g.fillText(nameOf(p), 3, yOf(v, p) + v.rowH / 2, GUTTER - 5);
    }
    if (v.hasDrums) g.fillText("drums", 3, v.height - DRUMS / 2 - 1, GUTTER - 5);

    // 8. The playhead.
    const hx = xOf(S.playhead);
    if (hx >= GUTTER && hx <= width) {
      g.fillStyle = c.head;
      g.fillRect(hx - 1, 0, 2, v.height);
      g.beginPath();
      g.moveTo(hx - 6, 0);
      g.lineTo(hx + 6, 0);
      g.lineTo(hx, 9);
      g.fill();
    }
    root.dataset.playhead = S.playhead.toFixed(3);
  }

  // ---- zoom and scroll -------------------------------------------------------------------------
  function fitZoom() {
    return Math.max(1, (view().width - GUTTER - 14) / Math.max(0.5, S.data.end_s));
  }
  function defaultZoom() {
    return Math.max(fitZoom(), 9 / stepSeconds()); // a 16th about 9 px: notes big enough to touch and edit
  }
  function zoomTo(pps, anchor) {
    const lo = fitZoom();
    const hi = Math.max(lo, 64 / stepSeconds());
    const x = xOf(anchor);
    S.pps = clamp(pps, lo, hi);
    draw();
    scroller.scrollLeft = Math.max(0, anchor * S.pps - (x - GUTTER));
    draw();
  }
  function zoom(by) {
    if (!S.data) return;
    const v = view();
    const head = xOf(S.playhead);
    const anchor = head >= GUTTER && head <= v.width ? S.playhead : timeAt((GUTTER + v.width) / 2);
    zoomTo(S.pps * by, anchor);
  }
  function follow() {
    if (S.drag) return;
    const v = view();
    const x = xOf(S.playhead);
    if (x < GUTTER || x > v.width * 0.88) scroller.scrollLeft = Math.max(0, S.playhead * S.pps - (v.width - GUTTER) * 0.12);
  }

  // ---- the audio: playhead, seeking, looping ---------------------------------------------------
  function loopTimes() {
    if (!S.data) return [0, 0];
    const from = Math.min(S.loop.from, S.loop.to);
    const to = Math.max(S.loop.from, S.loop.to);
    return [S.data.bars[from], barEnd(to)];
  }
  function frame() {
    S.raf = 0;
    const a = audioEl();
    if (!a || !S.data) return;
    keepInLoop(a);
    S.playhead = a.currentTime;
    follow();
    draw();
    if (!a.paused && !a.ended) S.raf = requestAnimationFrame(frame);
  }
  function keepInLoop(a) {
    if (!S.loop.on || a.paused) return;
    const [ls, le] = loopTimes();
    if (a.currentTime >= le - 0.01) a.currentTime = ls;
  }
  function onMedia(e) {
    const a = audioEl();
    if (!a || e.target !== a || !S.data) return;
    if (e.type === "ended" && S.loop.on) {
      a.currentTime = loopTimes()[0];
      a.play().catch(() => {});
      return;
    }
    if (e.type === "timeupdate") keepInLoop(a);
    if (!S.raf) S.raf = requestAnimationFrame(frame);
  }
  for (const kind of ["play", "playing", "pause", "seeked", "timeupdate", "ended", "loadedmetadata"]) {
    document.addEventListener(kind, onMedia, true); // media events do not bubble, but they are captured
  }

  function seek(s) {
    if (!S.data) return;
    const a = audioEl();
    const to = clamp(s, 0, S.data.end_s);
    S.playhead = to;
    if (a && a.getAttribute("src")) a.currentTime = to;
    else say("There is no audio to play on this server: the roll still shows the take.");
    draw();
  }
  function playPause() {
    const a = audioEl();
    if (!a || !a.getAttribute("src")) return;
    if (a.paused) a.play().catch(() => say("The browser did not start the audio: press its play button."));
    else a.pause();
  }

  function showLoop() {
    const numbers = S.data ? S.data.bar_numbers : [1, 2];
    $(".lr-loop-from").value = String(numbers[Math.min(S.loop.from, S.loop.to)] ?? 1);
    $(".lr-loop-to").value = String(numbers[Math.max(S.loop.from, S.loop.to)] ?? 1);
    $(".lr-loop").setAttribute("aria-pressed", S.loop.on ? "true" : "false");
  }
  function setLoop(on) {
    if (!S.data) return;
    S.loop.on = on;
    showLoop();
    const [ls, le] = loopTimes();
    const a = audioEl();
    if (on && a && (a.currentTime < ls || a.currentTime >= le)) seek(ls);
    const [from, to] = [$(".lr-loop-from").value, $(".lr-loop-to").value];
    say(on ? `Looping bars ${from} to ${to}.` : "Loop off.");
    draw();
  }
  function loopFromInputs(e) {
    if (!S.data) return;
    const first = S.data.bar_numbers[0];
    const index = (input) => clamp(Math.round(Number(input.value) - first) || 0, 0, S.data.bars.length - 1);
    S.loop.from = index($(".lr-loop-from"));
    S.loop.to = index($(".lr-loop-to"));
    if (S.loop.from > S.loop.to) { // the bar just typed wins: the other follows it
      if (e.target === $(".lr-loop-from")) S.loop.to = S.loop.from;
      else S.loop.from = S.loop.to;
    }
    setLoop(true);
  }

  // ---- editing the melody ----------------------------------------------------------------------
  function snapshot() { return S.notes.map((n) => ({ ...n })); }
  function remember() {
    S.undo.push({ notes: snapshot() });
    if (S.undo.length > MAX_UNDO) S.undo.shift();
    S.edits += 1;
    buttons();
  }
  function undo() {
    const last = S.undo.pop();
    if (!last) { say("Nothing to undo."); return; }
    S.notes = last.notes;
    S.selected = null;
    S.edits = Math.max(0, S.edits - 1);
    buttons();
    say("Undone.");
    draw();
  }
  function buttons() {
    $(".lr-undo").disabled = S.undo.length === 0;
    $(".lr-edit").setAttribute("aria-pressed", S.editing ? "true" : "false");
    root.classList.toggle("lr-editing", S.editing);
  }
  function sortNotes() { S.notes.sort((a, b) => a.s - b.s || a.p - b.p); }
  function describe(n) { return `${nameOf(n.p)}, ${where(n.s)}, ${length(n)}`; }
  function edited(text) {
    sortNotes();
    say(`${text} Press “Use the edited melody” under the roll to generate from it.`);
    draw();
  }
  function select(n, announce = true) {
    S.selected = n;
    if (n && announce) say(`${describe(n)}.`);
    if (n) reveal(n.s, n.e);
    draw();
  }
  function reveal(s, e) {
    const v = view();
    if (xOf(s) < GUTTER + 4) scroller.scrollLeft = Math.max(0, s * S.pps - 20);
    else if (xOf(e) > v.width - 4) scroller.scrollLeft = Math.max(0, e * S.pps - (v.width - GUTTER) + 20);
  }
  function addNote(step, pitch, steps) {
    const start = Math.max(0, Math.round(step));
    if (!S.data || timeOf(start) >= S.data.end_s || pitch < 0 || pitch > 127) return null;
    remember();
    const n = { s: timeOf(start), e: timeOf(start + Math.max(1, steps)), p: pitch, v: 90 };
    S.notes.push(n);
    S.selected = n;
    sound(pitch);
    edited(`Added ${describe(n)}.`);
    return n;
  }
  function removeNote(n) {
    remember();
    S.notes = S.notes.filter((m) => m !== n);
    S.selected = null;
    edited(`Removed ${nameOf(n.p)} at ${where(n.s)}.`);
  }
  function moveNote(n, steps, semitones) {
    const start = Math.round(stepOf(n.s)) + steps;
    const len = Math.max(1, Math.round(stepOf(n.e) - stepOf(n.s)));
    const pitch = clamp(n.p + semitones, 0, 127);
    if (start < 0 || timeOf(start) >= S.data.end_s) return;
    remember();
    n.s = timeOf(start);
    n.e = timeOf(start + len);
    if (pitch !== n.p) sound(pitch);
    n.p = pitch;
    edited(`Moved to ${describe(n)}.`);
    reveal(n.s, n.e);
  }
  function resizeNote(n, steps) {
    const start = stepOf(n.s);
    const end = Math.max(Math.floor(start + 1e-6) + 1, Math.round(stepOf(n.e)) + steps);
    remember();
    n.e = timeOf(end);
    S.lastSteps = Math.max(1, Math.round(end - start));
    edited(`${nameOf(n.p)} is now ${length(n)} long.`);
  }

  function sound(pitch) {
    try {
      const AC = window.AudioContext || window.webkitAudioContext;
      if (!AC) return;
      if (!S.ctx) S.ctx = new AC();
      if (S.ctx.state === "suspended") S.ctx.resume().catch(() => {});
      const t = S.ctx.currentTime;
      const osc = S.ctx.createOscillator();
      const gain = S.ctx.createGain();
      osc.type = "triangle";
      osc.frequency.value = 440 * Math.pow(2, (pitch - 69) / 12);
      gain.gain.setValueAtTime(0, t);
      gain.gain.linearRampToValueAtTime(0.18, t + 0.01);
      gain.gain.setTargetAtTime(0, t + 0.25, 0.06);
      osc.connect(gain).connect(S.ctx.destination);
      osc.start(t);
      osc.stop(t + 0.6);
    } catch (err) { console.info("no sound:", err); }
  }

  function setEditing(on) {
    if (!S.data || S.data.melody === null) return;
    S.editing = on;
    S.range = null;
    buttons();
    if (!on) S.selected = null;
    say(on
      ? "Editing the melody: click an empty cell to add a note, drag a note to move it, drag its right end to lengthen it, double-click it (or Delete) to remove it."
      : "Editing off: a click on the roll plays from there.");
    draw();
  }

  // ---- pointer ---------------------------------------------------------------------------------
  function local(e) {
    const box = canvas.getBoundingClientRect();
    return { x: e.clientX - box.left, y: e.clientY - box.top };
  }
  function melodyAt(x, y) {
    const v = view();
    for (let i = S.notes.length - 1; i >= 0; i--) {
      const n = S.notes[i];
      const x0 = xOf(n.s);
      const x1 = x0 + Math.max(3, (n.e - n.s) * S.pps - 1);
      const y0 = yOf(v, n.p);
      if (x >= x0 - 1 && x <= x1 + 2 && y >= y0 - 1 && y <= y0 + v.rowH + 1) {
        return { note: n, edge: x >= x1 - Math.min(8, (x1 - x0) / 3) };
      }
    }
    return null;
  }
  function anyNoteAt(x, y) {
    const hit = melodyAt(x, y);
    if (hit) return { note: [hit.note.s, hit.note.e, hit.note.p], track: S.data.tracks[S.data.melody] };
    const v = view();
    const s = timeAt(x);
    for (let i = S.data.tracks.length - 1; i >= 0; i--) {
      const t = S.data.tracks[i];
      if (i === S.data.melody) continue;
      if (t.drums) {
        if (y < v.height - DRUMS - 2) continue;
        const n = t.notes.find(([ns]) => Math.abs(xOf(ns) - x) <= 3);
        if (n) return { note: n, track: t };
        continue;
      }
      const p = pitchAt(v, y);
      const n = t.notes.find(([ns, ne, np]) => np === p && ns <= s && s <= ne);
      if (n) return { note: n, track: t };
    }
    return null;
  }

  canvas.addEventListener("pointerdown", (e) => {
    if (!S.data || e.button > 0) return;
    const { x, y } = local(e);
    scroller.focus({ preventScroll: true });
    hideTip();
    if (y < RULER || (e.shiftKey && x >= GUTTER)) {
      const bar = barAt(Math.max(0, timeAt(Math.max(GUTTER, x))));
      S.drag = { kind: "range", x0: x, bar0: bar, moved: false };
      S.loop.from = bar;
      S.loop.to = bar;
    } else if (!S.editing || x < GUTTER || y < view().top) {
      S.drag = { kind: "seek", x0: x, y0: y };
    } else {
      const hit = melodyAt(x, y);
      if (hit) {
        select(hit.note, false);
        const n = hit.note;
        S.drag = { kind: hit.edge ? "resize" : "move", note: n, x0: x, y0: y, start: stepOf(n.s), end: stepOf(n.e), p0: n.p, moved: false, kept: false };
      } else {
        const v = view();
        const n = addNote(Math.floor(stepOf(timeAt(x))), pitchAt(v, y), S.lastSteps);
        if (n) S.drag = { kind: "resize", note: n, x0: x, y0: y, start: stepOf(n.s), end: stepOf(n.e), p0: n.p, moved: false, kept: true };
      }
    }
    if (S.drag) canvas.setPointerCapture(e.pointerId);
  });

  canvas.addEventListener("pointermove", (e) => {
    if (!S.data) return;
    const { x, y } = local(e);
    const d = S.drag;
    if (!d) { hover(e, x, y); return; }
    if (!d.moved && Math.hypot(x - d.x0, y - (d.y0 ?? y)) < 4) return;
    d.moved = true;
    if (d.kind === "range") {
      S.loop.to = barAt(Math.max(0, timeAt(Math.max(GUTTER, x))));
      showLoop();
      draw();
    } else if (d.kind === "move" || d.kind === "resize") {
      const n = d.note;
      if (!d.kept) { remember(); d.kept = true; }
      const v = view();
      const dx = stepOf(Math.max(0, timeAt(x))) - stepOf(Math.max(0, timeAt(d.x0)));
      if (d.kind === "move") {
        const start = Math.max(0, Math.round(d.start + dx));
        const len = Math.max(1, Math.round(d.end - d.start));
        const pitch = clamp(d.p0 + Math.round((d.y0 - y) / v.rowH), v.lo, v.hi);
        if (timeOf(start) < S.data.end_s) { n.s = timeOf(start); n.e = timeOf(start + len); }
        if (pitch !== n.p) { n.p = pitch; sound(pitch); }
      } else {
        const end = Math.max(Math.floor(d.start + 1e-6) + 1, Math.round(d.end + dx));
        n.e = timeOf(end);
        S.lastSteps = Math.max(1, Math.round(end - d.start));
      }
      draw();
    }
  });

  function endDrag(e, cancelled) {
    const d = S.drag;
    S.drag = null;
    if (!d || !S.data) return;
    if (d.kind === "seek" && !cancelled && !d.moved) {
      const { x } = local(e);
      if (x >= GUTTER) seek(Math.max(0, timeAt(x)));
    } else if (d.kind === "range") {
      if (d.moved) setLoop(true);
      else { const { x } = local(e); seek(Math.max(0, timeAt(Math.max(GUTTER, x)))); }
    } else if ((d.kind === "move" || d.kind === "resize") && d.moved) {
      edited(`${d.kind === "move" ? "Moved to" : "Now"} ${describe(d.note)}.`);
    } else if (d.note) {
      select(d.note);
    }
    draw();
  }
  // ---- pinch to zoom (two fingers on a phone or tablet) ------------------------------------------
  // Touch events, not pointer events: the canvas lets the browser pan (touch-action), and a pan that
  // has begun cancels its pointers, while touch events still arrive with both fingers.
  let pinch = null;
  const spread = (t) => Math.hypot(t[0].clientX - t[1].clientX, t[0].clientY - t[1].clientY);
  canvas.addEventListener("touchstart", (e) => {
    if (!S.data || e.touches.length !== 2) return;
    const mid = (e.touches[0].clientX + e.touches[1].clientX) / 2 - canvas.getBoundingClientRect().left;
    pinch = { d0: Math.max(1, spread(e.touches)), pps0: S.pps, anchor: Math.max(0, timeAt(Math.max(GUTTER, mid))) };
    S.drag = null; // the first finger's seek or edit gives way to the pinch
    hideTip();
    e.preventDefault();
  }, { passive: false });
  canvas.addEventListener("touchmove", (e) => {
    if (!pinch || e.touches.length !== 2) return;
    e.preventDefault();
    zoomTo((pinch.pps0 * spread(e.touches)) / pinch.d0, pinch.anchor);
  }, { passive: false });
  const endPinch = (e) => { if (pinch && e.touches.length < 2) { pinch = null; say(`Zoom: ${Math.round(S.pps * stepSeconds())} px a 16th.`); } };
  canvas.addEventListener("touchend", endPinch);
  canvas.addEventListener("touchcancel", endPinch);

  canvas.addEventListener("pointerup", (e) => endDrag(e, false));
  canvas.addEventListener("pointercancel", (e) => endDrag(e, true));
  canvas.addEventListener("dblclick", (e) => {
    if (!S.data || !S.editing) return;
    const { x, y } = local(e);
    const hit = melodyAt(x, y);
    if (hit) removeNote(hit.note);
  });
  canvas.addEventListener("pointerleave", hideTip);

  function hover(e, x, y) {
    if (y < RULER) { canvas.style.cursor = "pointer"; hideTip(); return; }
    if (y < view().top) { chordTip(e, x, y); return; }
    const hit = anyNoteAt(x, y);
    if (S.editing) {
      const m = melodyAt(x, y);
      canvas.style.cursor = m ? (m.edge ? "ew-resize" : "grab") : "copy";
    } else canvas.style.cursor = "pointer";
    if (!hit) { hideTip(); return; }
    const [s, , p] = hit.note;
    tip.textContent = hit.track.drums ? `${hit.track.label} · ${where(s)}` : `${nameOf(p)} · ${hit.track.label} · ${where(s)}`;
    tip.hidden = false;
    const box = root.getBoundingClientRect();
    const left = clamp(e.clientX - box.left + 12, 0, Math.max(0, box.width - tip.offsetWidth));
    tip.style.left = `${left}px`;
    tip.style.top = `${e.clientY - box.top - 34}px`;
  }
  function hideTip() { tip.hidden = true; }
  function showTip(e, text) {
    tip.textContent = text; // names come from files: text, never markup
    tip.hidden = false;
    const box = root.getBoundingClientRect();
    tip.style.left = `${clamp(e.clientX - box.left + 12, 0, Math.max(0, box.width - tip.offsetWidth))}px`;
    tip.style.top = `${e.clientY - box.top - 34}px`;
  }
  function chordTip(e, x, y) {
    canvas.style.cursor = "pointer";
    const lane = S.lanes[Math.floor((y - RULER) / LANE)];
    const s = timeAt(x);
    const chord = lane && lane.find((ch) => ch.start_s <= s && s < ch.end_s);
    if (!chord) { hideTip(); return; }
    showTip(e, `${chord.name} · ${chord.given ? "a chord you gave" : "heard in the take"} · from ${where(chord.start_s)}`);
  }

  // ---- keyboard --------------------------------------------------------------------------------
  function nextNote(from, by) {
    if (!S.notes.length) return null;
    sortNotes();
    if (!from) {
      const after = S.notes.find((n) => n.s >= S.playhead - 1e-6);
      return after || S.notes[S.notes.length - 1];
    }
    const i = S.notes.indexOf(from);
    return S.notes[clamp(i + by, 0, S.notes.length - 1)];
  }
  scroller.addEventListener("keydown", (e) => {
    e.stopPropagation(); // the on-screen keyboard listens on the document: keys typed here are not notes
    if (!S.data) return;
    const k = e.key;
    const n = S.selected;
    let done = true;
    if ((e.ctrlKey || e.metaKey) && (k === "z" || k === "Z")) undo();
    else if (e.ctrlKey || e.metaKey || e.altKey) done = false;
    else if (k === " ") playPause();
    else if (k === "+" || k === "=") zoom(1.5);
    else if (k === "-" || k === "_") zoom(1 / 1.5);
    else if (k === "l" || k === "L") setLoop(!S.loop.on);
    else if (k === "e" || k === "E") setEditing(!S.editing);
    else if (k === "Home") seek(0);
    else if (k === "End") seek(S.data.end_s);
    else if (k === "Escape") select(null);
    else if (S.editing && (k === "ArrowLeft" || k === "ArrowRight")) {
      const by = k === "ArrowLeft" ? -1 : 1;
      if (n && e.shiftKey) moveNote(n, by, 0);
      else select(nextNote(n, by));
    } else if (S.editing && n && (k === "ArrowUp" || k === "ArrowDown")) moveNote(n, 0, (k === "ArrowUp" ? 1 : -1) * (e.shiftKey ? 12 : 1));
    else if (S.editing && n && (k === "]" || k === "[")) resizeNote(n, k === "]" ? 1 : -1);
    else if (S.editing && n && (k === "Delete" || k === "Backspace")) removeNote(n);
    else if (S.editing && k === "Enter") {
      if (n) addNote(Math.round(stepOf(n.e)), n.p, Math.max(1, Math.round(stepOf(n.e) - stepOf(n.s))));
      else addNote(Math.round(stepOf(S.playhead)), Math.round((view().lo + view().hi) / 2), S.lastSteps);
    } else if (k === "ArrowLeft" || k === "ArrowRight") {
      const bar = barAt(S.playhead + 1e-3);
      const target = k === "ArrowLeft" ? (S.playhead - S.data.bars[bar] > 0.25 ? bar : bar - 1) : bar + 1;
      seek(target < 0 ? 0 : target >= S.data.bars.length ? S.data.end_s : S.data.bars[target]);
    } else done = false;
    if (done) e.preventDefault();
  });
  scroller.addEventListener("keyup", (e) => e.stopPropagation());

  // ---- controls --------------------------------------------------------------------------------
  $(".lr-zoom-in").addEventListener("click", () => zoom(1.5));
  $(".lr-zoom-out").addEventListener("click", () => zoom(1 / 1.5));
  $(".lr-fit").addEventListener("click", () => { if (S.data) zoomTo(fitZoom(), 0); });
  $(".lr-loop").addEventListener("click", () => setLoop(!S.loop.on));
  for (const input of [$(".lr-loop-from"), $(".lr-loop-to")]) {
    input.addEventListener("change", loopFromInputs);
    input.addEventListener("keydown", (e) => e.stopPropagation());
  }
  $(".lr-edit").addEventListener("click", () => setEditing(!S.editing));
  $(".lr-undo").addEventListener("click", undo);
  scroller.addEventListener("scroll", () => { hideTip(); draw(); });
  if (window.ResizeObserver) new ResizeObserver(() => { if (S.data) draw(); }).observe(scroller);

  window.studioRoll = {
    json: () => JSON.stringify({ notes: S.notes.map((n) => [r6(n.s), r6(n.e), n.p, n.v]) }),
    used() { say("Your edited melody is now the melody in use: hear it under the keyboard, then press Generate."); },
    // The loop's bars as the page numbers them ("3-4"): what "Regenerate these bars" writes again.
    bars() {
      if (!S.data) return "";
      const n = S.data.bar_numbers;
      return `${n[Math.min(S.loop.from, S.loop.to)]}-${n[Math.max(S.loop.from, S.loop.to)]}`;
    },
    playhead: () => S.playhead,
    zoom: () => S.pps, // pixels a second
    data: () => S.data,
    chords: () => S.drawnChords.map((ch) => ({ ...ch })), // the chord names drawn now, where
    notes: () => S.notes.map((n) => [r6(n.s), r6(n.e), n.p, n.v]),
    // Where a person would touch to reach time `s` and pitch `p`: page coordinates (scrolled into view).
    point(s, p) {
      const v = view();
      if (xOf(s) < GUTTER + 2 || xOf(s) > v.width - 2) { scroller.scrollLeft = Math.max(0, s * S.pps - 40); draw(); }
      const box = canvas.getBoundingClientRect();
      return { x: box.left + xOf(s), y: box.top + (p === undefined ? RULER / 2 : yOf(v, p) + v.rowH / 2) };
    },
    timeAtStep: (step) => timeOf(step),
  };
  load(props.value);
  watch("value", () => load(props.value));
})();
