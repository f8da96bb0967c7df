// PoseScope's review player: the original video (or a blank stage) with the skeleton, angle labels, trails and
// measurements drawn on a canvas over it, a timeline of the chosen angles, frame stepping, speed and a loop.
//
// The poses come as one float32 buffer, in analysis/review.py's TRACK_BLOCKS order.
// Streamlit (components v2) calls the default export with new `data` on every rerun, on the same parentElement:
// one Player per element keeps the video, the fetched poses and what the user did. Everything it loads comes
// from the app's own server (data.video and data.poses are its /media/ URLs, read with range requests).
// Python gets back `frame` (the frame shown once the video is paused or has seeked) and `measurements`.

const BLANK = "rgb(18, 18, 24)";  // analysis/drawing.py's PRIVACY_BACKGROUND
const BONE = "rgb(255, 255, 255)";
const JOINT = "rgb(230, 30, 30)";
const LABEL = "rgb(255, 230, 80)";
const MEASURE = "rgb(80, 220, 255)";
const POINTS_PER = { angle: 3, distance: 2 };
const TRAIL_S = 0.6;
const REPORT_DELAY_MS = 120;
const TIMELINE_HEIGHT = 96;

const PLAYERS = new WeakMap();

export default function (component) {
  const { data, parentElement, setStateValue } = component;
  let player = PLAYERS.get(parentElement);
  if (!player) {
    player = new Player(parentElement);
    PLAYERS.set(parentElement, player);
  }
  player.setState = setStateValue;
  player.update(data);
  return () => {
    player.destroy();
    PLAYERS.delete(parentElement);
  };
}

function el(tag, attrs = {}, parent = null) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (name === "text") node.textContent = value;
    else node.setAttribute(name, value);
  }
  if (parent) parent.appendChild(node);
  return node;
}

// The index of the frame whose time is nearest t, in a sorted Float32Array.
function nearest(times, t) {
  let lo = 0, hi = times.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (times[mid] < t) lo = mid + 1; else hi = mid;
  }
  return lo > 0 && t - times[lo - 1] < times[lo] - t ? lo - 1 : lo;
}

class Player {
  constructor(parent) {
    this.root = el("div", { class: "ps-player", tabindex: "0", "data-frame": "-1", "data-state": "loading" }, parent);
    this.stage = el("div", { class: "ps-stage" }, this.root);
    this.video = el("video", { class: "ps-video", muted: "", playsinline: "", preload: "auto" }, this.stage);
    this.video.muted = true;
    this.overlay = el("canvas", { class: "ps-overlay" }, this.stage);
    this.message = el("div", { class: "ps-message" }, this.stage);
    this.timeline = el("canvas", { class: "ps-timeline", title: "Click or drag to go to that moment" }, this.root);
    this.controls = el("div", { class: "ps-controls" }, this.root);
    this.buildControls();

    this.data = null;
    this.track = null;           // {times, landmarks, angles, anchors} Float32Array views
    this.poseUrl = null;
    this.videoUrl = undefined;
    this.seekNonce = null;
    this.frame = 0;              // the frame whose pose is drawn
    this.reported = null;
    this.clockTime = 0;          // the blank stage's clock, seconds
    this.clockPlaying = false;
    this.rate = 1;
    this.loop = { on: false, start: null, end: null };
    this.pending = [];           // clicks of a measurement not yet complete
    this.measurements = [];
    this.measurementsFromPython = false;
    this.scrubbing = false;
    this.queuedSeek = null;
    this.goingTo = null;         // the frame a step or a scrub is seeking to, until the video is there
    this.resumeFrame = null;     // the frame to show once a new source (the review copy) has loaded
    this.curveCache = null;
    this.raf = null;
    this.destroyed = false;

    this.video.addEventListener("loadedmetadata", () => {
      this.applyRate();
      const frame = this.resumeFrame;
      this.resumeFrame = null;
      if (frame !== null && this.track) this.seekToFrame(frame);
      else this.seekTo(this.currentTime());
    });
    this.video.addEventListener("seeked", () => this.afterSeek());
    this.video.addEventListener("play", () => this.refreshButtons());
    this.video.addEventListener("pause", () => { this.refreshButtons(); this.scheduleReport(); });
    this.video.addEventListener("ended", () => this.onEnded());
    this.video.addEventListener("error", () => this.showMessage("The browser could not play this video."));
    const onVideoFrame = (now, meta) => {
      if (this.destroyed) return;
      this.root.dataset.shownTime = meta.mediaTime.toFixed(6);
      this.onTime(meta.mediaTime);
      if (!this.video.seeking && this.queuedSeek === null && this.resumeFrame === null) this.goingTo = null;  // on screen
      if (this.video.paused) this.scheduleReport();  // the frame now on screen, once the seeking has settled
      this.video.requestVideoFrameCallback(onVideoFrame);
    };
    this.video.requestVideoFrameCallback(onVideoFrame);

    this.overlay.addEventListener("click", (event) => this.onStageClick(event));
    this.root.addEventListener("keydown", (event) => this.onKey(event));
    this.timeline.addEventListener("pointerdown", (event) => this.onTimelinePointer(event, true));
    this.timeline.addEventListener("pointermove", (event) => { if (this.scrubbing) this.onTimelinePointer(event, false); });
    const endScrub = () => { if (this.scrubbing) { this.scrubbing = false; this.scheduleReport(); } };
    this.timeline.addEventListener("pointerup", endScrub);
    this.timeline.addEventListener("pointercancel", endScrub);
    this.resizer = new ResizeObserver(() => this.layout());
    this.resizer.observe(this.root);
  }

  buildControls() {
    const row = (name) => el("div", { class: `ps-row ps-${name}` }, this.controls);
    const button = (parent, action, text, title) => {
      const node = el("button", { type: "button", "data-action": action, title, "aria-label": title, text }, parent);
      node.addEventListener("click", () => { this.root.focus({ preventScroll: true }); this.act(action); });
      return node;
    };
    const transport = row("transport");
    button(transport, "back", "◀ 1", "One frame back (←)");
    this.playButton = button(transport, "play", "▶", "Play or pause (space)");
    button(transport, "forward", "1 ▶", "One frame on (→)");
    this.clock = el("span", { class: "ps-clock", text: "–" }, transport);
    const speed = el("label", { class: "ps-speed", text: "Speed " }, transport);
    this.speed = el("input", { type: "range", min: "0.1", max: "2", step: "0.05", value: "1", "aria-label": "Playback speed" }, speed);
    this.speedText = el("span", { text: "1.00×" }, speed);
    this.speed.addEventListener("input", () => { this.rate = Number(this.speed.value); this.applyRate(); });

    const loop = row("loop");
    button(loop, "loop-start", "[ From here", "Loop from the current frame");
    button(loop, "loop-end", "To here ]", "Loop up to the current frame");
    const loopLabel = el("label", { text: " " }, loop);
    this.loopBox = el("input", { type: "checkbox", "aria-label": "Loop" }, loopLabel);
    loopLabel.append("Loop");
    this.loopBox.addEventListener("change", () => { this.loop.on = this.loopBox.checked; this.drawTimeline(); });
    this.loopText = el("span", { class: "ps-loop-text" }, loop);

    const tools = row("tools");
    el("span", { text: "Measure:" }, tools);
    this.tool = el("select", { "aria-label": "Measuring tool" }, tools);
    for (const [value, text] of [["", "off"], ["angle", "angle (3 clicks)"], ["distance", "distance (2 clicks)"]]) {
      el("option", { value, text }, this.tool);
    }
    this.tool.addEventListener("change", () => { this.pending = []; this.pause(); this.draw(); this.refreshHint(); });
    button(tools, "undo", "Undo", "Remove the last measurement");
    button(tools, "clear", "Clear", "Remove every measurement");
    this.toggles = {};
    for (const [name, text] of [["skeleton", "Skeleton"], ["angles", "Angles"], ["trails", "Trails"]]) {
      const label = el("label", {}, tools);
      this.toggles[name] = el("input", { type: "checkbox", "aria-label": text }, label);
      this.toggles[name].checked = name !== "trails";
      label.append(text);
      this.toggles[name].addEventListener("change", () => this.draw());
    }
    this.hint = el("div", { class: "ps-hint" }, this.controls);
  }

  update(data) {
    this.data = data;
    this.root.style.setProperty("--ps-aspect", `${data.width} / ${data.height}`);
    if (!this.measurementsFromPython) {
      this.measurements = (data.measurements || []).map((m) => ({ id: m.id, frame: m.frame, kind: m.kind, points: m.points }));
      this.measurementsFromPython = true;
    }
    this.labels = new Map((data.measurements || []).map((m) => [m.id, m.label]));
    if (data.poses !== this.poseUrl) {
      this.poseUrl = data.poses;
      this.loadTrack(data.poses);
    }
    if (data.video !== this.videoUrl) {
      const at = this.currentTime(), wasPlaying = this.playing(), swapped = this.videoUrl !== undefined;
      this.videoUrl = data.video;
      if (data.video) {  // the upload, then its review copy: same clock, so it goes on where it was
        if (swapped && this.track && !wasPlaying) this.resumeFrame = this.goingTo ?? this.frame;  // steps go on
        this.video.src = data.video;
        this.video.currentTime = at;
        if (wasPlaying) this.video.play().catch(() => {});
      } else {
        this.video.removeAttribute("src");
        this.video.load();
        this.clockTime = at;
      }
      this.video.hidden = !data.video;
    }
    this.showMessage(data.message || "");
    this.curveCache = null;
    this.layout();
    if (data.seek && data.seek.nonce !== this.seekNonce) {
      const first = this.seekNonce === null;
      this.seekNonce = data.seek.nonce;
      if (!first || data.seek.time_s > 0) {
        if (this.track) this.seekToFrame(nearest(this.track.times, data.seek.time_s));  // on the frame, not before it
        else this.seekTo(data.seek.time_s);
      }
    }
    this.refreshHint();
  }

  async loadTrack(url) {
    this.root.dataset.state = "loading";
    try {
      const response = await fetch(url);
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      const buffer = await response.arrayBuffer();
      if (url !== this.poseUrl) return;
      const { frames, people, angles } = this.data;
      const sizes = [frames, frames, frames * people * 33 * 3, frames * people * angles, frames * people * angles * 2];
      const blocks = [];
      let offset = 0;
      for (const size of sizes) {
        blocks.push(new Float32Array(buffer, offset * 4, size));
        offset += size;
      }
      const [times, frameNumbers, landmarks, values, anchors] = blocks;
      this.track = { times, frameNumbers, landmarks, values, anchors, frames, people, angles };
      this.root.dataset.state = "ready";
      this.curveCache = null;
      this.onTime(this.currentTime());
    } catch (error) {
      this.root.dataset.state = "error";
      this.showMessage(`The poses could not be loaded (${error.message}).`);
    }
  }

  destroy() {
    this.destroyed = true;
    this.resizer.disconnect();
    if (this.raf) cancelAnimationFrame(this.raf);
    this.video.pause();
    this.video.removeAttribute("src");
    this.video.load();
    this.root.remove();
  }

  // ---- time -------------------------------------------------------------------------------------------------

  hasVideo() { return Boolean(this.data && this.data.video); }

  currentTime() { return this.hasVideo() ? this.video.currentTime : this.clockTime; }

  playing() { return this.hasVideo() ? !this.video.paused && !this.video.ended : this.clockPlaying; }

  duration() {
    const times = this.track ? this.track.times : null;
    const end = times && times.length ? times[times.length - 1] : 0;
    return this.hasVideo() && Number.isFinite(this.video.duration) ? Math.max(this.video.duration, end) : end;
  }

  applyRate() {  // the default too: a new source (the review copy) resets playbackRate to it
    this.video.defaultPlaybackRate = this.rate;
    this.video.playbackRate = this.rate;
    this.speedText.textContent = `${this.rate.toFixed(2)}×`;
  }

  play() {
    if (this.tool.value) { this.tool.value = ""; this.pending = []; this.refreshHint(); }
    if (this.hasVideo()) {
      if (this.video.ended) this.video.currentTime = this.loop.on && this.loop.start !== null ? this.loop.start : 0;
      this.video.play().catch(() => {});
      return;
    }
    if (this.clockTime >= this.duration()) this.clockTime = 0;
    this.clockPlaying = true;
    let last = performance.now();
    const tick = (now) => {
      if (!this.clockPlaying || this.destroyed) return;
      this.clockTime = Math.min(this.duration(), this.clockTime + ((now - last) / 1000) * this.rate);
      last = now;
      this.onTime(this.clockTime);
      if (this.clockTime >= this.duration()) this.onEnded();
      else this.raf = requestAnimationFrame(tick);
    };
    this.raf = requestAnimationFrame(tick);
    this.refreshButtons();
  }

  pause() {
    if (this.hasVideo()) this.video.pause();
    else if (this.clockPlaying) {
      this.clockPlaying = false;
      this.refreshButtons();
      this.scheduleReport();
    }
  }

  onEnded() {
    if (this.loop.on && this.loopRange()) {
      this.seekTo(this.loop.start);
      this.play();
      return;
    }
    this.clockPlaying = false;
    this.refreshButtons();
    this.scheduleReport();
  }

  // Seek so that frame `index` is shown: a hair after its own time, never on the boundary with the one before.
  seekToFrame(index) {
    const times = this.track.times;
    const i = Math.max(0, Math.min(times.length - 1, index));
    const gap = i + 1 < times.length ? times[i + 1] - times[i] : 0.004;
    this.drawFrame(i);
    if (this.hasVideo()) this.goingTo = i;  // until the video has got there, steps count from here
    if (this.resumeFrame !== null) { this.resumeFrame = i; return; }  // a new source is loading: there, once loaded
    this.seekTo(times[i] + Math.min(0.001, gap / 4), false);
  }

  seekTo(t, redraw = true) {
    t = Math.max(0, Math.min(t, this.duration() || t));
    if (this.hasVideo()) {
      if (this.video.seeking) { this.queuedSeek = t; return; }
      this.video.currentTime = t;
    } else {
      this.clockTime = t;
      this.onTime(t);
      this.scheduleReport();
    }
    if (redraw && this.track) this.drawFrame(nearest(this.track.times, t));
  }

  afterSeek() {
    if (this.queuedSeek !== null) {
      const t = this.queuedSeek;
      this.queuedSeek = null;
      this.video.currentTime = t;
      return;
    }
    this.scheduleReport();
  }

  // One frame on or back from the frame on screen, or from the one a seek in flight goes to, so that quick steps
  // add up (not from currentTime: paused in the second half of a frame, that is nearer the next one).
  step(delta) {
    if (!this.track) return;
    this.pause();
    this.seekToFrame((this.goingTo ?? this.frame) + delta);
  }

  onTime(t) {
    if (!this.track) return;
    if (this.loop.on && this.playing() && this.loopRange() && t >= this.loop.end) {
      this.seekTo(this.loop.start);
      return;
    }
    this.drawFrame(nearest(this.track.times, t));
  }

  loopRange() { return this.loop.start !== null && this.loop.end !== null && this.loop.end > this.loop.start; }

  scheduleReport() {
    clearTimeout(this.reportTimer);
    this.reportTimer = setTimeout(() => {
      if (this.playing() || this.scrubbing || this.video.seeking || this.queuedSeek !== null || !this.track
          || !this.setState) return;
      if (this.frame !== this.reported) {
        this.reported = this.frame;
        this.setState("frame", this.frame);
      }
    }, REPORT_DELAY_MS);
  }

  // ---- input ------------------------------------------------------------------------------------------------

  act(action) {
    const t = this.track ? this.track.times[this.frame] : this.currentTime();
    switch (action) {
      case "play": this.playing() ? this.pause() : this.play(); break;
      case "back": this.step(-1); break;
      case "forward": this.step(1); break;
      case "loop-start": this.loop.start = t; this.loop.on = this.loopBox.checked = this.loopRange() || this.loop.end === null; break;
      case "loop-end": this.loop.end = t; this.loop.on = this.loopBox.checked = this.loopRange(); break;
      case "undo": this.measurements.pop(); this.pending = []; this.sendMeasurements(); break;
      case "clear": this.measurements = []; this.pending = []; this.sendMeasurements(); break;
    }
    this.refreshLoop();
    this.draw();
  }

  onKey(event) {
    if (event.target instanceof HTMLSelectElement || event.target instanceof HTMLInputElement && event.target.type === "range") return;
    const keys = { ArrowLeft: () => this.step(event.shiftKey ? -10 : -1), ArrowRight: () => this.step(event.shiftKey ? 10 : 1),
                   " ": () => this.act("play"), Escape: () => { this.pending = []; this.draw(); } };
    if (keys[event.key]) {
      event.preventDefault();
      keys[event.key]();
    }
  }

  onStageClick(event) {
    this.root.focus({ preventScroll: true });
    const kind = this.tool.value;
    if (!kind) { this.act("play"); return; }
    if (!this.track) return;
    this.pause();
    const box = this.overlay.getBoundingClientRect();
    this.pending.push([(event.clientX - box.left) / box.width, (event.clientY - box.top) / box.height]);
    if (this.pending.length === POINTS_PER[kind]) {
      const id = `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 7)}`;
      this.measurements.push({ id, frame: this.frame, kind, points: this.pending });
      this.pending = [];
      this.sendMeasurements();
    }
    this.draw();
  }

  sendMeasurements() {
    if (this.setState) this.setState("measurements", this.measurements.map((m) => ({ ...m })));
  }

  onTimelinePointer(event, first) {
    if (!this.track) return;
    if (first) {
      this.scrubbing = true;
      this.pause();
      this.timeline.setPointerCapture(event.pointerId);
    }
    const box = this.timeline.getBoundingClientRect();
    const share = Math.max(0, Math.min(1, (event.clientX - box.left) / box.width));
    const times = this.track.times;
    this.seekToFrame(nearest(times, times[0] + share * (times[times.length - 1] - times[0])));
  }

  // ---- drawing ----------------------------------------------------------------------------------------------

  layout() {
    if (!this.data) return;
    const aspect = this.data.width / this.data.height;
    const maxHeight = Math.max(240, Math.min(window.innerHeight * 0.7, this.data.max_height || 640));
    const width = Math.min(this.root.clientWidth || 640, maxHeight * aspect);
    const height = width / aspect;
    this.stage.style.width = `${width}px`;
    this.stage.style.height = `${height}px`;
    const ratio = window.devicePixelRatio || 1;
    for (const [canvas, w, h] of [[this.overlay, width, height], [this.timeline, this.root.clientWidth || width, TIMELINE_HEIGHT]]) {
      canvas.style.width = `${w}px`;
      canvas.style.height = `${h}px`;
      canvas.width = Math.round(w * ratio);
      canvas.height = Math.round(h * ratio);
    }
    this.curveCache = null;
    this.draw();
  }

  draw() { if (this.track) this.drawFrame(this.frame); else this.drawBlank(); }

  drawBlank() {
    const ctx = this.overlay.getContext("2d");
    ctx.clearRect(0, 0, this.overlay.width, this.overlay.height);
    if (!this.hasVideo()) { ctx.fillStyle = BLANK; ctx.fillRect(0, 0, this.overlay.width, this.overlay.height); }
  }

  point(person, frame, landmark) {
    const { landmarks, people } = this.track;
    const at = ((frame * people + person) * 33 + landmark) * 3;
    return [landmarks[at], landmarks[at + 1], landmarks[at + 2]];
  }

  drawFrame(frame) {
    const track = this.track;
    this.frame = frame;
    const ctx = this.overlay.getContext("2d");
    const w = this.overlay.width, h = this.overlay.height;
    this.drawBlank();
    const size = Math.max(1.5, 0.004 * Math.hypot(w, h));
    const threshold = this.data.threshold;
    const selected = this.data.person;
    for (let person = 0; person < track.people; person++) {
      if (!this.toggles.skeleton.checked) break;
      if (!Number.isFinite(this.point(person, frame, 0)[0])) continue;
      ctx.globalAlpha = person === selected ? 1 : 0.45;
      ctx.lineWidth = size;
      ctx.strokeStyle = BONE;
      ctx.lineCap = "round";
      ctx.beginPath();
      for (const [a, b] of this.data.bones) {
        const p = this.point(person, frame, a), q = this.point(person, frame, b);
        if (p[2] < threshold || q[2] < threshold) continue;
        ctx.moveTo(p[0] * w, p[1] * h);
        ctx.lineTo(q[0] * w, q[1] * h);
      }
      ctx.stroke();
      ctx.fillStyle = JOINT;
      for (let landmark = 0; landmark < 33; landmark++) {
        const p = this.point(person, frame, landmark);
        if (!(p[2] >= threshold)) continue;
        ctx.beginPath();
        ctx.arc(p[0] * w, p[1] * h, landmark <= this.data.face_last ? size * 0.6 : size * 1.2, 0, 2 * Math.PI);
        ctx.fill();
      }
    }
    ctx.globalAlpha = 1;
    if (selected !== null && selected < track.people) {
      if (this.toggles.trails.checked) this.drawTrails(ctx, frame, selected, w, h, size);
      if (this.toggles.angles.checked) this.drawLabels(ctx, frame, selected, w, h);
    }
    this.drawMeasurements(ctx, frame, w, h, size);
    const t = track.times[frame];
    this.clock.textContent = `${t.toFixed(2)} s · frame ${track.frameNumbers[frame]}`
      + ` (${frame + 1} of ${track.frames})`;
    this.root.dataset.frame = String(frame);
    this.root.dataset.time = t.toFixed(6);
    this.drawTimeline();
    this.moveChartCursors(t);
  }

  // The page's Plotly charts over time (x axis titled data.time_title) get a cursor that follows the video while
  // it plays: a line placed with Plotly's own axis mapping. When paused, the page redraws its own marker there.
  moveChartCursors(t) {
    for (const plot of document.querySelectorAll(".js-plotly-plot")) {
      const layout = plot._fullLayout;
      const xaxis = layout && layout.xaxis, yaxis = layout && layout.yaxis;
      const container = plot.querySelector(".svg-container");
      if (!xaxis || !yaxis || !container || !xaxis.d2p || !layout.xaxis.title || layout.xaxis.title.text !== this.data.time_title) continue;
      let cursor = container.querySelector(":scope > .ps-chart-cursor");
      if (!cursor) {
        cursor = el("div", { class: "ps-chart-cursor" }, container);
        Object.assign(cursor.style, { position: "absolute", width: "0", borderLeft: "2px solid rgba(230, 30, 30, 0.75)",
                                      pointerEvents: "none", zIndex: "1" });
      }
      const x = xaxis._offset + xaxis.d2p(t);
      const inside = Number.isFinite(x) && x >= xaxis._offset && x <= xaxis._offset + xaxis._length;
      cursor.style.display = inside ? "block" : "none";
      cursor.style.left = `${x - 1}px`;
      cursor.style.top = `${yaxis._offset}px`;
      cursor.style.height = `${yaxis._length}px`;
    }
  }

  anchor(frame, person, angle) {
    const { anchors, people, angles } = this.track;
    const at = ((frame * people + person) * angles + angle) * 2;
    return [anchors[at], anchors[at + 1]];
  }

  value(frame, person, angle) {
    const { values, people, angles } = this.track;
    return values[(frame * people + person) * angles + angle];
  }

  // Each label sits beside its joint on the side away from the body's centre, so left and right do not collide.
  drawLabels(ctx, frame, person, w, h) {
    const ratio = window.devicePixelRatio || 1;
    const trunk = [11, 12, 23, 24].map((i) => this.point(person, frame, i)).filter((p) => Number.isFinite(p[0]));
    const centre = trunk.length ? trunk.reduce(([x, y], p) => [x + p[0] / trunk.length, y + p[1] / trunk.length], [0, 0]) : null;
    ctx.font = `600 ${Math.round(13 * ratio)}px sans-serif`;
    ctx.textBaseline = "middle";
    ctx.lineWidth = 3 * ratio;
    ctx.strokeStyle = "rgba(0, 0, 0, 0.8)";
    ctx.fillStyle = LABEL;
    for (const label of this.data.labels) {
      const value = this.value(frame, person, label.angle);
      const [x, y] = this.anchor(frame, person, label.angle);
      if (!Number.isFinite(value) || !Number.isFinite(x)) continue;
      const text = `${Math.round(value)}°`;
      const left = centre !== null && x < centre[0];
      ctx.textAlign = left ? "right" : "left";
      const at = x * w + (left ? -8 : 8) * ratio;
      ctx.strokeText(text, at, y * h);
      ctx.fillText(text, at, y * h);
    }
    ctx.textAlign = "left";
  }

  drawTrails(ctx, frame, person, w, h, size) {
    const times = this.track.times;
    this.data.labels.forEach((label, k) => {
      ctx.strokeStyle = this.data.colours[k % this.data.colours.length];
      ctx.lineWidth = size * 0.8;
      ctx.beginPath();
      let drawing = false;
      for (let i = frame; i >= 0 && times[frame] - times[i] <= TRAIL_S; i--) {
        const [x, y] = this.anchor(i, person, label.angle);
        if (!Number.isFinite(x)) { drawing = false; continue; }
        if (drawing) ctx.lineTo(x * w, y * h); else ctx.moveTo(x * w, y * h);
        drawing = true;
      }
      ctx.stroke();
    });
  }

  drawMeasurements(ctx, frame, w, h, size) {
    const ratio = window.devicePixelRatio || 1;
    const shapes = this.measurements.filter((m) => m.frame === frame).map((m) => [m.points, this.labels.get(m.id) || "…"]);
    if (this.pending.length) shapes.push([this.pending, ""]);
    ctx.strokeStyle = ctx.fillStyle = MEASURE;
    ctx.lineWidth = size;
    ctx.font = `600 ${Math.round(14 * ratio)}px sans-serif`;
    for (const [points, text] of shapes) {
      ctx.beginPath();
      points.forEach(([x, y], i) => (i ? ctx.lineTo(x * w, y * h) : ctx.moveTo(x * w, y * h)));
      ctx.stroke();
      for (const [x, y] of points) {
        ctx.beginPath();
        ctx.arc(x * w, y * h, size * 1.6, 0, 2 * Math.PI);
        ctx.fill();
      }
      if (text) {
        const [x, y] = points.length === 3 ? points[1] : [(points[0][0] + points[1][0]) / 2, (points[0][1] + points[1][1]) / 2];
        ctx.lineWidth = 3 * ratio;
        ctx.strokeStyle = "rgba(0, 0, 0, 0.85)";
        ctx.strokeText(text, x * w + 10 * ratio, y * h - 10 * ratio);
        ctx.fillText(text, x * w + 10 * ratio, y * h - 10 * ratio);
        ctx.strokeStyle = MEASURE;
        ctx.lineWidth = size;
      }
    }
  }

  // The timeline: the chosen angles of the chosen person over the clip, reps shaded, the loop, and a cursor.
  drawTimeline() {
    const canvas = this.timeline, track = this.track;
    if (!track || !canvas.width) return;
    const ctx = canvas.getContext("2d");
    const w = canvas.width, h = canvas.height;
    const times = track.times, t0 = times[0], span = Math.max(1e-6, times[times.length - 1] - t0);
    const x = (t) => ((t - t0) / span) * w;
    if (!this.curveCache) this.curveCache = this.renderCurves(w, h, x);
    ctx.clearRect(0, 0, w, h);
    ctx.drawImage(this.curveCache, 0, 0);
    if (this.loopRange()) {
      ctx.fillStyle = this.loop.on ? "rgba(80, 220, 255, 0.18)" : "rgba(128, 128, 128, 0.12)";
      ctx.fillRect(x(this.loop.start), 0, x(this.loop.end) - x(this.loop.start), h);
    }
    ctx.strokeStyle = "rgb(230, 30, 30)";
    ctx.lineWidth = 2 * (window.devicePixelRatio || 1);
    ctx.beginPath();
    ctx.moveTo(x(times[this.frame]), 0);
    ctx.lineTo(x(times[this.frame]), h);
    ctx.stroke();
  }

  renderCurves(w, h, x) {
    const canvas = document.createElement("canvas");
    canvas.width = w;
    canvas.height = h;
    const ctx = canvas.getContext("2d");
    const track = this.track, person = this.data.person;
    ctx.fillStyle = "rgba(128, 128, 128, 0.08)";
    ctx.fillRect(0, 0, w, h);
    ctx.fillStyle = "rgba(0, 204, 150, 0.18)";
    for (const [start, end] of this.data.reps || []) ctx.fillRect(x(start), 0, Math.max(1, x(end) - x(start)), h);
    if (person === null || person >= track.people || !this.data.labels.length) return canvas;
    let low = Infinity, high = -Infinity;
    for (const label of this.data.labels) {
      for (let i = 0; i < track.frames; i++) {
        const v = this.value(i, person, label.angle);
        if (Number.isFinite(v)) { low = Math.min(low, v); high = Math.max(high, v); }
      }
    }
    if (!Number.isFinite(low)) return canvas;
    const pad = Math.max(1, (high - low) * 0.08);
    const y = (v) => h - ((v - low + pad) / (high - low + 2 * pad)) * h;
    ctx.lineWidth = 1.5 * (window.devicePixelRatio || 1);
    this.data.labels.forEach((label, k) => {
      ctx.strokeStyle = this.data.colours[k % this.data.colours.length];
      ctx.beginPath();
      let drawing = false;
      for (let i = 0; i < track.frames; i++) {
        const v = this.value(i, person, label.angle);
        if (!Number.isFinite(v)) { drawing = false; continue; }
        if (drawing) ctx.lineTo(x(track.times[i]), y(v)); else ctx.moveTo(x(track.times[i]), y(v));
        drawing = true;
      }
      ctx.stroke();
    });
    const ratio = window.devicePixelRatio || 1;
    ctx.font = `${Math.round(11 * ratio)}px sans-serif`;
    ctx.textBaseline = "top";
    ctx.textAlign = "right";
    let right = w - 4 * ratio;
    [...this.data.labels].reverse().forEach((label, k) => {  // a legend, in the curves' colours
      ctx.fillStyle = this.data.colours[(this.data.labels.length - 1 - k) % this.data.colours.length];
      ctx.fillText(label.name, right, 2 * ratio);
      right -= ctx.measureText(label.name).width + 10 * ratio;
    });
    ctx.textAlign = "left";
    ctx.fillStyle = "rgba(128, 128, 128, 0.9)";
    ctx.fillText(`${Math.round(high)}°`, 4, 2);
    ctx.textBaseline = "bottom";
    ctx.fillText(`${Math.round(low)}°`, 4, h - 2);
    return canvas;
  }

  // ---- text -------------------------------------------------------------------------------------------------

  showMessage(text) {
    this.message.textContent = text;
    this.message.hidden = !text;
  }

  refreshButtons() { this.playButton.textContent = this.playing() ? "❚❚" : "▶"; }

  refreshLoop() {
    const f = (t) => (t === null ? "–" : `${t.toFixed(2)} s`);
    this.loopText.textContent = this.loop.start === null && this.loop.end === null ? "" : ` ${f(this.loop.start)} to ${f(this.loop.end)}`;
  }

  refreshHint() {
    const kind = this.tool.value;
    this.hint.textContent = kind
      ? `Click ${POINTS_PER[kind]} points on the paused frame${kind === "angle" ? " (the angle is at the second)" : ""}; Esc cancels.`
      : "Space plays or pauses, ← → step one frame (with Shift, ten). Drag along the timeline to scrub.";
  }
}
