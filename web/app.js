// songd's page: lyrics and style in, a song out. Plain JavaScript, no framework.
// It uses what the server offers (read from /openapi.json): live events and cancel when there,
// else status polling every 2 s with If-None-Match; plain lyrics when the server lays them out,
// else lyrics.js stamps the lines.
(function () {
  "use strict";

  const config = JSON.parse(document.querySelector('meta[name="songd-config"]').content);
  const P = config.api_prefix;
  const $ = (id) => document.getElementById(id);
  const STORE_KEY = "songd.songs";
  const CURRENT_KEY = "songd.current";
  const TERMINAL = ["completed", "failed", "expired", "canceled"];
  const reducedMotion = window.matchMedia("(prefers-reduced-motion: reduce)");

  const CHIPS = {
    Genre: ["pop", "rock", "folk", "jazz", "electronic", "hip hop", "classical", "country"],
    Mood: ["happy", "sad", "calm", "energetic", "romantic", "dark"],
    Instruments: ["piano", "acoustic guitar", "electric guitar", "strings", "drums", "synth", "bass"],
    Voice: ["female voice", "male voice", "choir"],
  };

  const features = { events: false, cancel: false, plainLyrics: false, instrumental: false };
  let current = null; // {id, etag, status, doc, source, timer, intentId}
  let stripe = null;

  // ---------- small helpers ----------
  function show(el, on) { el.hidden = !on; }
  function setText(el, text) { el.textContent = text; show(el, !!text); }
  function minutes(n) { return n <= 1 ? "about a minute" : "about " + n + " minutes"; }
  function clock(seconds) {
    const s = Math.round(seconds);
    return Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0");
  }
  function money(cents, currency) {
    try {
      return new Intl.NumberFormat(undefined, { style: "currency", currency: currency.toUpperCase() }).format(cents / 100);
    } catch (e) {
      return (cents / 100).toFixed(2) + " " + currency.toUpperCase();
    }
  }
  function when(iso) {
    if (!iso) return "";
    const d = new Date(iso);
    return d.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
  }
  function waitWords(seconds) {
    if (!seconds || seconds < 1) return "in a moment";
    if (seconds < 90) return "in " + seconds + " seconds";
    return "in " + Math.ceil(seconds / 60) + " minutes";
  }

  /// A failed answer in words a person can act on.
  function explain(status, problem, headers, what) {
    const retry = Number(headers && headers.get("Retry-After")) || 0;
    const detail = (problem && problem.detail) || "";
    switch (status) {
      case 0: return "Can't reach the server. Check your connection; the page keeps trying.";
      case 401: return "This server only makes songs for callers with an API key, and this page has none. Ask the people who run it.";
      case 402: return "This song has to be paid for before it can be downloaded.";
      case 404: return what === "job" ? "This song is not on the server (it may have been removed)." : "Not found on the server.";
      case 409:
        if (/paid/i.test(detail)) return "This song is already paid for.";
        return "The song isn't ready for that yet (" + (detail || "still being made") + ").";
      case 410: return "This song has expired: its files were deleted. To make it again, use “Same lyrics and seed again” (for songs made in this browser).";
      case 413: return "The lyrics are too long to send. Shorten them and try again.";
      case 429: return "Too many songs from this address for now. Try again " + waitWords(retry) + ".";
      case 503: return "The server is busy or a service it needs is down. Try again " + waitWords(retry) + ".";
      default:
        if (status >= 500) return "Something went wrong on the server" + (problem && problem.detail ? " (" + problem.detail + ")" : "") + ". Try again in a minute.";
        return detail || "The request failed (" + status + ").";
    }
  }

  async function api(method, path, body, extraHeaders) {
    const headers = Object.assign({ Accept: "application/json" }, extraHeaders || {});
    const init = { method: method, headers: headers, cache: "no-store" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(path, init);
    } catch (e) {
      return { ok: false, status: 0, headers: new Headers(), body: null };
    }
    let parsed = null;
    const type = response.headers.get("Content-Type") || "";
    if (response.status !== 304 && type.includes("json")) {
      try { parsed = await response.json(); } catch (e) { parsed = null; }
    }
    return { ok: response.ok, status: response.status, headers: response.headers, body: parsed };
  }

  // ---------- my songs (localStorage) ----------
  function loadSongs() {
    try { return JSON.parse(localStorage.getItem(STORE_KEY)) || []; } catch (e) { return []; }
  }
  function saveSongs(songs) {
    try { localStorage.setItem(STORE_KEY, JSON.stringify(songs.slice(0, 50))); } catch (e) { /* private mode */ }
  }
  function updateSong(id, fields) {
    const songs = loadSongs();
    const i = songs.findIndex((s) => s.id === id);
    if (i >= 0) Object.assign(songs[i], fields); else songs.unshift(Object.assign({ id: id }, fields));
    saveSongs(songs);
    renderSongs();
  }
  function songRecord(id) { return loadSongs().find((s) => s.id === id) || null; }

  function statusWords(s) {
    switch (s.status) {
      case "queued": return "waiting in line";
      case "processing": return "being made" + (s.progress != null ? " (" + s.progress + "%)" : "");
      case "completed": return s.paid ? "ready, paid" : "ready";
      case "failed": return "failed";
      case "expired": return "expired";
      case "canceled": return "canceled";
      default: return s.status || "unknown";
    }
  }

  /// Updates the list in place (keyed by job id), so a focused button keeps its focus while
  /// statuses change.
  function renderSongs() {
    const list = $("song-list");
    const songs = loadSongs();
    show($("songs-empty"), songs.length === 0);
    const existing = new Map(Array.from(list.children).map((li) => [li.dataset.id, li]));
    songs.forEach((s, index) => {
      let li = existing.get(s.id);
      existing.delete(s.id);
      if (!li) {
        li = document.createElement("li");
        li.dataset.id = s.id;
        const title = document.createElement("span");
        title.className = "song-name";
        const meta = document.createElement("span");
        meta.className = "hint";
        const open = document.createElement("button");
        open.type = "button";
        open.className = "link";
        open.textContent = "Open";
        open.addEventListener("click", () => follow(s.id, { focus: true }));
        const wav = document.createElement("a");
        wav.textContent = "WAV";
        wav.setAttribute("download", "");
        li.append(title, meta, open, wav);
      }
      const [title, meta, open, wav] = li.children;
      const name = s.title || "Untitled song";
      if (title.textContent !== name) title.textContent = name;
      let text = statusWords(s);
      if (s.expires_at && s.status === "completed") text += " · until " + when(s.expires_at);
      if (meta.textContent !== text) meta.textContent = text;
      open.setAttribute("aria-label", "Open " + name);
      const downloadable = s.status === "completed" && (!config.payments || s.paid);
      wav.hidden = !downloadable;
      if (downloadable) {
        wav.href = downloadUrl(s.id, "wav", s.intent_id);
        wav.setAttribute("aria-label", "Download " + name + " as WAV");
      }
      if (list.children[index] !== li) list.insertBefore(li, list.children[index] || null);
    });
    for (const li of existing.values()) li.remove();
  }

  // ---------- the form ----------
  function buildChips() {
    const host = $("chips");
    for (const [group, words] of Object.entries(CHIPS)) {
      const fs = document.createElement("fieldset");
      fs.className = "chips";
      fs.dataset.group = group;
      const legend = document.createElement("legend");
      legend.textContent = group;
      fs.append(legend);
      for (const w of words) {
        const id = "chip-" + group.toLowerCase() + "-" + w.replace(/\s+/g, "-");
        const input = document.createElement("input");
        input.type = "checkbox";
        input.id = id;
        input.value = w;
        input.className = "chip-input";
        const label = document.createElement("label");
        label.htmlFor = id;
        label.className = "chip";
        label.textContent = w;
        fs.append(input, label);
        input.addEventListener("change", composeStyle);
      }
      host.append(fs);
    }
  }

  function stylePrompt() {
    const picked = Array.from(document.querySelectorAll(".chip-input:checked"))
      .filter((c) => !(c.closest("fieldset").dataset.group === "Voice" && $("instrumental").checked))
      .map((c) => c.value);
    const own = $("style").value.trim();
    if (own) picked.push(own);
    return picked.join(", ");
  }
  function composeStyle() {
    const prompt = stylePrompt();
    $("style-prompt").value = prompt || "(pick a chip or write a style)";
  }

  function showLength() {
    const v = Number($("length").value);
    $("length-out").value = clock(v);
    $("length").setAttribute("aria-valuetext", clock(v) + " (" + v + " seconds)");
    updatePriceHint();
  }

  let priceTimer = 0;
  function updatePriceHint() {
    if (!config.payments) {
      $("price-hint").textContent = "Free to make, hear and download.";
      return;
    }
    clearTimeout(priceTimer);
    priceTimer = setTimeout(async () => {
      const r = await api("GET", P + "/payments/price?audio_length=" + $("length").value);
      if (r.ok && r.body) {
        $("price-hint").textContent = "Free to make and hear; the download costs " + money(r.body.price_cents, r.body.currency) + ".";
      }
    }, 150);
  }

  function clearFieldErrors() {
    for (const id of ["lyrics-error", "style-error", "length-error", "seed-error", "form-error"]) setText($(id), "");
    for (const id of ["lyrics", "style", "length", "seed"]) $(id).removeAttribute("aria-invalid");
  }

  /// Shows the validator's message for the lyrics on the line it names, and selects that line.
  function showLyricsError(message, lineMap) {
    const box = $("lyrics-error");
    const area = $("lyrics");
    const line = SongLyrics.errorLine(message, lineMap);
    const typed = area.value.replace(/\r\n?/g, "\n").split("\n");
    const reason = message.replace(/^line \d+:\s*/i, "");
    box.replaceChildren();
    if (line > 0 && line <= typed.length) {
      const head = document.createElement("strong");
      head.textContent = "Line " + line + ": ";
      const quote = document.createElement("code");
      quote.className = "bad-line";
      quote.textContent = "“" + typed[line - 1].trim() + "”";
      const why = document.createElement("span");
      why.textContent = " — " + reason.charAt(0).toUpperCase() + reason.slice(1) + ".";
      box.append(head, quote, why);
      box.dataset.line = String(line);
      let start = 0;
      for (let i = 0; i < line - 1; i++) start += typed[i].length + 1;
      area.focus();
      area.setSelectionRange(start, start + typed[line - 1].length);
    } else {
      box.textContent = reason.charAt(0).toUpperCase() + reason.slice(1) + ".";
      delete box.dataset.line;
      area.focus();
    }
    area.setAttribute("aria-invalid", "true");
    show(box, true);
  }

  async function onGenerate(event) {
    event.preventDefault();
    clearFieldErrors();
    const lengthSeconds = Number($("length").value);
    const instrumental = features.instrumental && $("instrumental").checked;
    const text = $("lyrics").value;
    if (!instrumental && !text.trim()) {
      showLyricsError("Write the lyrics first: one line per sung line", null);
      return;
    }
    const prompt = stylePrompt();
    if (prompt.length < 3) {
      setText($("style-error"), "Pick at least one chip or write a style of three letters or more.");
      $("style").setAttribute("aria-invalid", "true");
      $("style").focus();
      return;
    }
    let lyrics = text;
    let lineMap = null;
    if (!features.plainLyrics && !instrumental) {
      const laid = SongLyrics.toLrc(text, lengthSeconds);
      lyrics = laid.lrc;
      lineMap = laid.lineMap;
    }
    const body = { lyrics: instrumental ? "" : lyrics, style_prompt: prompt, audio_length: lengthSeconds };
    if (instrumental) body.instrumental = true;
    const seed = $("seed").value.trim();
    if (seed !== "") {
      if (!/^\d+$/.test(seed)) {
        setText($("seed-error"), "The seed is a whole number, 0 or more.");
        $("seed").setAttribute("aria-invalid", "true");
        $("advanced").open = true;
        $("seed").focus();
        return;
      }
      body.seed = Number(seed);
    }
    if ($("preset").value) body.preset = $("preset").value;
    if ($("master-preset").value) body.master_preset = $("master-preset").value;

    const button = $("generate");
    button.disabled = true;
    button.textContent = "Sending…";
    const r = await api("POST", P + "/generate", body);
    button.disabled = false;
    button.textContent = "Generate";
    if (r.status === 202 && r.body) {
      const title = (text.split("\n").map((l) => l.replace(/^\s*(\[[^\]]*\])+/, "").trim()).find((l) => l) || prompt).slice(0, 60);
      const form = { lyrics: text, style: $("style").value, length: lengthSeconds, instrumental: instrumental,
        chips: Array.from(document.querySelectorAll(".chip-input:checked")).map((c) => c.id),
        seed: seed, preset: $("preset").value, master_preset: $("master-preset").value };
      updateSong(r.body.job_id, { title: title, status: "queued", created: new Date().toISOString(), form: form });
      follow(r.body.job_id, { focus: true, accepted: r.body });
      return;
    }
    if (r.status === 422 && r.body && Array.isArray(r.body.errors)) {
      let focused = false;
      for (const e of r.body.errors) {
        const field = (e.loc || [])[1];
        if (field === "lyrics") { showLyricsError(e.msg, lineMap); focused = true; continue; }
        const target = { style_prompt: "style", audio_length: "length", seed: "seed" }[field];
        if (target) {
          setText($(target + "-error"), e.msg);
          $(target).setAttribute("aria-invalid", "true");
          if (target === "seed") $("advanced").open = true;
          if (!focused) { $(target).focus(); focused = true; }
        } else {
          setText($("form-error"), (field ? field + ": " : "") + e.msg);
        }
      }
      return;
    }
    setText($("form-error"), explain(r.status, r.body, r.headers, "generate"));
  }

  /// Puts a song's lyrics, style and seed back into the form, to make it again or change it.
  function refill() {
    const rec = current && songRecord(current.id);
    if (!rec || !rec.form) return;
    const f = rec.form;
    $("lyrics").value = f.lyrics || "";
    $("style").value = f.style || "";
    document.querySelectorAll(".chip-input").forEach((c) => { c.checked = (f.chips || []).includes(c.id); });
    $("length").value = String(f.length || 95);
    $("instrumental").checked = !!f.instrumental && features.instrumental;
    $("instrumental").dispatchEvent(new Event("change"));
    $("seed").value = rec.seed != null ? String(rec.seed) : (f.seed || "");
    $("preset").value = f.preset || "";
    $("master-preset").value = f.master_preset || "";
    $("advanced").open = true;
    showLength();
    composeStyle();
    $("lyrics").focus();
  }

  // ---------- following a job ----------
  function stopFollowing() {
    if (!current) return;
    if (current.source) current.source.close();
    clearTimeout(current.timer);
    current = null;
  }

  function follow(id, options) {
    options = options || {};
    stopFollowing();
    current = { id: id, etag: null, status: null, doc: null, source: null, timer: 0, intentId: null };
    try { localStorage.setItem(CURRENT_KEY, id); } catch (e) { /* ignore */ }
    const rec = songRecord(id);
    current.intentId = rec && rec.intent_id;
    resetJobView(rec);
    show($("job"), true);
    if (options.accepted) {
      render({ job_id: id, status: "queued", queue_position: options.accepted.queue_position,
               estimated_wait_minutes: options.accepted.estimated_wait_minutes, progress: 0 });
    } else {
      $("job-status").textContent = "Checking the song…";
    }
    if (options.focus) {
      $("job").focus();
      $("job").scrollIntoView({ behavior: reducedMotion.matches ? "auto" : "smooth", block: "start" });
    }
    if (features.events && typeof EventSource !== "undefined") listen(id); else poll(id);
  }

  function listen(id) {
    const source = new EventSource(P + "/jobs/" + id + "/events");
    current.source = source;
    source.addEventListener("status", (e) => {
      if (!current || current.id !== id) return;
      try { render(JSON.parse(e.data)); } catch (err) { /* ignore a bad event */ }
      if (current && TERMINAL.includes(current.status)) source.close();
    });
    source.onerror = () => {
      if (!current || current.id !== id) return;
      source.close();
      current.source = null;
      if (!TERMINAL.includes(current.status)) poll(id); // fall back
    };
  }

  async function poll(id) {
    if (!current || current.id !== id) return;
    const headers = current.etag ? { "If-None-Match": current.etag } : {};
    const r = await api("GET", P + "/status/" + id, undefined, headers);
    if (!current || current.id !== id) return;
    let delay = 2000;
    if (r.status === 200 && r.body) {
      current.etag = r.headers.get("ETag");
      setText($("job-error"), "");
      render(r.body);
    } else if (r.status === 304) {
      // unchanged
    } else if (r.status === 404) {
      setText($("job-error"), explain(404, r.body, r.headers, "job"));
      $("job-status").textContent = "";
      show($("progress-row"), false);
      updateSong(id, { status: "gone" });
      return;
    } else {
      setText($("job-error"), explain(r.status, r.body, r.headers, "status"));
      const retry = Number(r.headers.get("Retry-After")) || 0;
      delay = Math.max(delay, retry * 1000);
    }
    if (current && current.id === id && !TERMINAL.includes(current.status)) {
      current.timer = setTimeout(() => poll(id), delay);
    }
  }

  function resetJobView(rec) {
    $("job-title").textContent = rec && rec.title ? "“" + rec.title + "”" : "";
    $("progress").value = 0;
    $("progress-text").textContent = "0%";
    show($("progress-row"), true);
    show($("player"), false);
    show($("pay"), false);
    show($("downloads"), false);
    show($("cancel"), false);
    show($("refill"), !!(rec && rec.form));
    setText($("job-error"), "");
    setText($("pay-error"), "");
    $("expiry").textContent = "";
    $("audio").removeAttribute("src");
    $("payment-element").replaceChildren();
    $("pay-button").disabled = true;
    const canvas = $("waveform");
    canvas.getContext("2d").clearRect(0, 0, canvas.width, canvas.height);
  }

  function render(doc) {
    const id = doc.job_id;
    const before = current.status;
    current.status = doc.status;
    current.doc = doc;
    const progress = doc.status === "completed" ? 100 : Math.max(0, Math.min(100, doc.progress || 0));
    $("progress").value = progress;
    $("progress").textContent = progress + "%";
    $("progress-text").textContent = progress + "%";
    const status = $("job-status");
    show($("cancel"), features.cancel && (doc.status === "queued" || doc.status === "processing"));
    const paid = doc.payment && doc.payment.paid;
    updateSong(id, { status: doc.status, progress: progress, expires_at: doc.expires_at, paid: !!paid, seed: doc.seed });
    const rec = songRecord(id);
    show($("refill"), !!(rec && rec.form));
    switch (doc.status) {
      case "queued": {
        const pos = doc.queue_position;
        status.textContent = pos > 1
          ? "Waiting in line: number " + pos + ", " + minutes(doc.estimated_wait_minutes || 1) + "."
          : "Next in line: starting " + (doc.estimated_wait_minutes > 1 ? "in " + minutes(doc.estimated_wait_minutes) : "soon") + ".";
        break;
      }
      case "processing":
        status.textContent = "Making your song: " + progress + "% done.";
        break;
      case "completed":
        status.textContent = "Done. Listen to the preview below.";
        show($("progress-row"), false);
        if (before !== "completed") onCompleted(doc);
        break;
      case "failed":
        status.textContent = "";
        show($("progress-row"), false);
        setText($("job-error"), "The song could not be made" + (doc.error ? ": " + doc.error : "") + ". Change the lyrics or style and try again.");
        break;
      case "expired":
        status.textContent = "";
        show($("progress-row"), false);
        setText($("job-error"), explain(410));
        break;
      case "canceled":
        status.textContent = "Canceled. Nothing was made.";
        show($("progress-row"), false);
        break;
      default:
        status.textContent = "Status: " + doc.status;
    }
    if (doc.expires_at && doc.status === "completed") {
      $("expiry").textContent = "Kept until " + when(doc.expires_at) + "; after that the files are deleted.";
    }
  }

  function onCompleted(doc) {
    if (doc.preview_url) {
      show($("player"), true);
      const audio = $("audio");
      audio.src = doc.preview_url;
      const seconds = config.preview_seconds;
      $("preview-note").textContent = (config.payments && !(doc.payment && doc.payment.paid))
        ? "A free preview of the first " + seconds + " seconds. The full song is " + clock((doc.audio && doc.audio.duration_seconds) || 0) + " long."
        : "A preview of the first " + seconds + " seconds; the download is the whole song (" + clock((doc.audio && doc.audio.duration_seconds) || 0) + ").";
      drawWaveform(doc.preview_url);
    }
    const paid = doc.payment && doc.payment.paid;
    if (!config.payments || paid || current.intentId) {
      showDownloads();
    } else {
      offerPayment(doc);
    }
  }

  async function onCancel() {
    if (!current) return;
    const id = current.id;
    $("cancel").disabled = true;
    const r = await api("POST", P + "/jobs/" + id + "/cancel");
    $("cancel").disabled = false;
    if (r.ok && r.body) {
      if (r.body.status) render(r.body);
      else { current.etag = null; }
    } else {
      setText($("job-error"), r.status === 409 ? "Too late to cancel: the song is already finished." : explain(r.status, r.body, r.headers, "job"));
    }
  }

  // ---------- waveform ----------
  async function drawWaveform(url) {
    const canvas = $("waveform");
    const ctx = canvas.getContext("2d");
    const Ctx = window.AudioContext || window.webkitAudioContext;
    if (!Ctx) return;
    try {
      const response = await fetch(url);
      if (!response.ok) return;
      const data = await response.arrayBuffer();
      const audioCtx = new Ctx();
      const buffer = await audioCtx.decodeAudioData(data);
      audioCtx.close();
      const width = canvas.width;
      const height = canvas.height;
      const channel = buffer.getChannelData(0);
      const per = Math.max(1, Math.floor(channel.length / width));
      const peaks = new Float32Array(width);
      let top = 0.0001;
      for (let x = 0; x < width; x++) {
        let peak = 0;
        for (let i = x * per, end = Math.min(channel.length, i + per); i < end; i++) {
          const v = Math.abs(channel[i]);
          if (v > peak) peak = v;
        }
        peaks[x] = peak;
        if (peak > top) top = peak;
      }
      canvas.dataset.peaks = "1";
      const paint = (played) => {
        const styles = getComputedStyle(canvas);
        ctx.clearRect(0, 0, width, height);
        for (let x = 0; x < width; x++) {
          const h = Math.max(1, (peaks[x] / top) * (height - 4));
          ctx.fillStyle = x / width <= played ? styles.getPropertyValue("--wave-played") : styles.getPropertyValue("--wave");
          ctx.fillRect(x, (height - h) / 2, 1, h);
        }
      };
      paint(0);
      const audio = $("audio");
      audio.ontimeupdate = () => paint(audio.duration ? audio.currentTime / audio.duration : 0);
      window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", () => paint(audio.duration ? audio.currentTime / audio.duration : 0));
    } catch (e) {
      canvas.dataset.peaks = "0";
    }
  }

  // ---------- downloads ----------
  function downloadUrl(id, format, intentId) {
    let url = P + "/download/" + id + "?format=" + format;
    if (intentId) url += "&payment_intent_id=" + encodeURIComponent(intentId);
    return url;
  }

  function showDownloads() {
    show($("pay"), false);
    show($("downloads"), true);
  }

  async function onDownload(format, button) {
    if (!current) return;
    const url = downloadUrl(current.id, format, current.intentId);
    setText($("job-error"), "");
    button.disabled = true;
    const label = button.textContent;
    button.textContent = "Preparing " + format.toUpperCase() + "…";
    // Ask first, so a refusal is explained here instead of a failed download.
    let r;
    try {
      r = await fetch(url, { method: "HEAD", cache: "no-store" });
    } catch (e) {
      r = { ok: false, status: 0, headers: new Headers() };
    }
    button.disabled = false;
    button.textContent = label;
    if (!r.ok) {
      setText($("job-error"), explain(r.status, null, r.headers, "download"));
      if (r.status === 402) offerPayment(current.doc);
      return;
    }
    const a = document.createElement("a");
    a.href = url;
    a.download = "";
    document.body.append(a);
    a.click();
    a.remove();
  }

  // ---------- payment ----------
  function loadStripeJs() {
    if (window.Stripe) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const s = document.createElement("script");
      s.src = config.stripe_js_url;
      s.onload = resolve;
      s.onerror = () => reject(new Error("Stripe.js did not load"));
      document.head.append(s);
    });
  }

  async function offerPayment(doc) {
    if (!current) return;
    const id = current.id;
    show($("pay"), true);
    show($("downloads"), false);
    setText($("pay-error"), "");
    if (doc && doc.payment) $("price").textContent = "Price: " + money(doc.payment.amount, doc.payment.currency) + " for the whole song in WAV, MP3 and FLAC.";
    const r = await api("POST", P + "/payments/" + id + "/intent");
    if (!current || current.id !== id) return;
    if (r.status === 409 && r.body && /paid/i.test(r.body.detail || "")) { showDownloads(); return; }
    if (!r.ok || !r.body) {
      setText($("pay-error"), explain(r.status, r.body, r.headers, "pay"));
      return;
    }
    $("price").textContent = "Price: " + money(r.body.amount, r.body.currency) + " for the whole song in WAV, MP3 and FLAC.";
    try {
      await loadStripeJs();
      stripe = stripe || window.Stripe(r.body.publishable_key || config.publishable_key);
      const dark = window.matchMedia("(prefers-color-scheme: dark)").matches;
      const elements = stripe.elements({ clientSecret: r.body.client_secret, appearance: { theme: dark ? "night" : "stripe" } });
      const element = elements.create("payment");
      $("payment-element").replaceChildren();
      element.mount("#payment-element");
      current.elements = elements;
      current.pendingIntent = r.body.payment_intent_id;
      $("pay-button").disabled = false;
    } catch (e) {
      setText($("pay-error"), "The payment form could not load. Check your connection and reload the page.");
    }
  }

  async function onPay() {
    if (!current || !current.elements) return;
    const id = current.id;
    const button = $("pay-button");
    button.disabled = true;
    button.textContent = "Paying…";
    setText($("pay-error"), "");
    const returnUrl = new URL(location.href);
    returnUrl.search = "?job=" + id;
    returnUrl.hash = "";
    let result;
    try {
      result = await stripe.confirmPayment({ elements: current.elements, redirect: "if_required", confirmParams: { return_url: returnUrl.toString() } });
    } catch (e) {
      result = { error: { message: "The payment could not be sent. Check your connection and try again." } };
    }
    button.textContent = "Pay";
    if (!current || current.id !== id) return;
    if (result.error) {
      button.disabled = false;
      const msg = result.error.type === "card_error" || result.error.type === "validation_error"
        ? result.error.message
        : "The payment did not go through: " + (result.error.message || "unknown error") + ".";
      setText($("pay-error"), msg + " You have not been charged. Try another card.");
      return;
    }
    const intent = result.paymentIntent;
    if (intent && (intent.status === "succeeded" || intent.status === "processing")) {
      current.intentId = intent.id;
      updateSong(id, { intent_id: intent.id, paid: intent.status === "succeeded" });
      if (intent.status === "processing") {
        setText($("pay-error"), "Your payment is being processed. The download works once it completes.");
      }
      showDownloads();
      $("downloads").querySelector("button").focus();
    } else {
      button.disabled = false;
      setText($("pay-error"), "The payment was not completed. Try again.");
    }
  }

  /// Back from a payment page (3-D Secure): Stripe adds payment_intent to our return URL.
  function resumeFromRedirect() {
    const q = new URLSearchParams(location.search);
    const job = q.get("job");
    const intent = q.get("payment_intent");
    if (!job) return null;
    if (intent && q.get("redirect_status") !== "failed") updateSong(job, { intent_id: intent });
    history.replaceState(null, "", location.pathname);
    return job;
  }

  // ---------- start ----------
  async function detectFeatures() {
    const r = await api("GET", "/openapi.json");
    if (!r.ok || !r.body) return;
    const paths = Object.keys(r.body.paths || {});
    // Whatever the path parameter is called ({job_id} or {id}).
    const offers = (tail) => paths.some((k) => k.startsWith(P + "/jobs/{") && k.endsWith("}/" + tail));
    features.events = offers("events");
    features.cancel = offers("cancel");
    features.plainLyrics = offers("lyrics");
    const generate = JSON.stringify([((r.body.components || {}).schemas || {}).GenerateRequest || null,
                                     (r.body.paths || {})[P + "/generate"] || null]);
    features.instrumental = generate.includes('"instrumental"');
    show($("instrumental-field"), features.instrumental);
  }

  async function refreshSongs() {
    for (const s of loadSongs()) {
      if (TERMINAL.includes(s.status) && s.status !== "completed") continue;
      if (current && current.id === s.id) continue;
      const r = await api("GET", P + "/status/" + s.id);
      if (r.ok && r.body) {
        updateSong(s.id, { status: r.body.status, progress: r.body.progress, expires_at: r.body.expires_at, paid: !!(r.body.payment && r.body.payment.paid) });
      } else if (r.status === 404) {
        updateSong(s.id, { status: "gone" });
      }
    }
  }

  async function start() {
    buildChips();
    composeStyle();
    showLength();
    $("length").max = String(config.max_audio_length || 285);
    $("song-form").addEventListener("submit", onGenerate);
    $("style").addEventListener("input", composeStyle);
    $("instrumental").addEventListener("change", () => {
      const on = $("instrumental").checked;
      $("lyrics").disabled = on;
      document.querySelectorAll('fieldset[data-group="Voice"] input').forEach((c) => { c.disabled = on; });
      composeStyle();
    });
    $("length").addEventListener("input", showLength);
    $("lyrics").addEventListener("input", () => {
      if (!$("lyrics-error").hidden) { setText($("lyrics-error"), ""); $("lyrics").removeAttribute("aria-invalid"); }
    });
    $("cancel").addEventListener("click", onCancel);
    $("refill").addEventListener("click", refill);
    $("pay-button").addEventListener("click", onPay);
    $("new-song").addEventListener("click", () => {
      stopFollowing();
      try { localStorage.removeItem(CURRENT_KEY); } catch (e) { /* ignore */ }
      show($("job"), false);
      $("lyrics").focus();
    });
    for (const b of $("downloads").querySelectorAll("button")) {
      b.addEventListener("click", () => onDownload(b.dataset.format, b));
    }
    if (config.api_key_required) {
      setText($("notice"), "This server asks for an API key to make new songs, and this page does not send one: Generate will be refused. Songs already made can still be played and downloaded.");
    }
    renderSongs();
    await detectFeatures();
    const back = resumeFromRedirect();
    let resume = back;
    if (!resume) {
      try { resume = localStorage.getItem(CURRENT_KEY); } catch (e) { resume = null; }
    }
    if (resume) follow(resume, { focus: false });
    document.body.dataset.ready = "1";
    refreshSongs();
  }

  start();
})();
