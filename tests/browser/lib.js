// Shared by the browser tests: start songd (and the Stripe stand-ins), launch Debian's chromium,
// check accessibility with axe-core, take screenshots. Node's standard library + npm packages.
"use strict";
const { spawn } = require("node:child_process");
const fs = require("node:fs");
const http = require("node:http");
const net = require("node:net");
const os = require("node:os");
const path = require("node:path");
const assert = require("node:assert/strict");
const { chromium } = require("playwright-core");

const SONGD = process.env.SONGD_BINARY || path.resolve(__dirname, "../../build/songd");
const SHOTS = process.env.SCREENSHOT_DIR || path.resolve(__dirname, "../../build/browser-screenshots");
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const AXE = fs.readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, "127.0.0.1", () => { const p = s.address().port; s.close(() => resolve(p)); });
    s.on("error", reject);
  });
}

async function until(what, fn, timeoutMs = 60000, everyMs = 100) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    try { last = await fn(); if (last) return last; } catch (e) { last = e; }
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error("timed out waiting for " + what + (last instanceof Error ? ": " + last.message : ""));
}

async function get(url) {
  return new Promise((resolve, reject) => {
    http.get(url, (res) => {
      const chunks = [];
      res.on("data", (c) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
    }).on("error", reject);
  });
}

/// Starts `songd serve` in a fresh folder with the tone engine; returns {url, stop}.
async function startSongd(env = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "songd-browser-"));
  const port = await freePort();
  const child = spawn(SONGD, ["serve"], {
    cwd: dir,
    env: Object.assign({ PATH: process.env.PATH, HOME: process.env.HOME, HOST: "127.0.0.1", PORT: String(port),
      ENGINE: "tone", TONE_RENDER_MS: "3000", ENABLE_RATE_LIMIT: "false", LOG_FORMAT: "text", LOG_LEVEL: "warning",
      WORKERS: "1", PREVIEW_SECONDS: "10" }, env),
    stdio: ["ignore", "ignore", fs.openSync(path.join(dir, "songd.log"), "w")],
  });
  const url = "http://127.0.0.1:" + port;
  await until("songd /healthz", async () => (await get(url + "/healthz")).status === 200, 30000);
  return {
    url, dir,
    stop: () => new Promise((resolve) => { child.once("exit", resolve); child.kill("SIGTERM"); }),
  };
}

/// tests/stripe_mock plus a front server at another port that serves stripe_js_standin.js at
/// /v3/ and forwards everything else to the mock, so the page's CSP (the origin of
/// STRIPE_JS_URL) covers both. Returns {apiBase, jsUrl, stop}.
async function startStripe() {
  const mock = spawn("/usr/bin/python3", [path.resolve(__dirname, "../stripe_mock/stripe_mock.py"), "serve"], { stdio: ["ignore", "pipe", "inherit"] });
  const mockPort = await new Promise((resolve, reject) => {
    let out = "";
    mock.stdout.on("data", (d) => { out += d; const m = /(\d+)\n/.exec(out); if (m) resolve(Number(m[1])); });
    mock.once("exit", (code) => reject(new Error("stripe_mock exited " + code)));
  });
  const standin = fs.readFileSync(path.join(__dirname, "stripe_js_standin.js"));
  const front = http.createServer((req, res) => {
    if (req.method === "GET" && req.url.startsWith("/v3")) {
      res.writeHead(200, { "Content-Type": "text/javascript", "Cache-Control": "no-store" });
      res.end(standin);
      return;
    }
    const upstream = http.request({ host: "127.0.0.1", port: mockPort, method: req.method, path: req.url, headers: req.headers }, (up) => {
      res.writeHead(up.statusCode, up.headers);
      up.pipe(res);
    });
    upstream.on("error", () => { res.writeHead(502); res.end(); });
    req.pipe(upstream);
  });
  await new Promise((resolve) => front.listen(0, "127.0.0.1", resolve));
  const frontUrl = "http://127.0.0.1:" + front.address().port;
  return {
    apiBase: "http://127.0.0.1:" + mockPort,
    jsUrl: frontUrl + "/v3/",
    stop: async () => {
      front.close();
      await new Promise((resolve) => { mock.once("exit", resolve); mock.kill("SIGTERM"); });
    },
  };
}

function paymentEnv(stripe) {
  return { REQUIRE_PAYMENT_FOR_GENERATION: "true", STRIPE_SECRET_KEY: "sk_test_browser123",
           STRIPE_PUBLISHABLE_KEY: "pk_test_browser123", STRIPE_API_BASE: stripe.apiBase,
           STRIPE_JS_URL: stripe.jsUrl, PRICE_CENTS: "199", PRICE_CURRENCY: "usd" };
}

async function launch() {
  return chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox", "--autoplay-policy=no-user-gesture-required", "--mute-audio"] });
}

/// A page that fails the test on any script error or CSP violation.
async function newPage(browser, options = {}) {
  const context = await browser.newContext(Object.assign({ acceptDownloads: true, viewport: { width: 1280, height: 900 } }, options));
  const page = await context.newPage();
  page.problems = [];
  page.on("pageerror", (e) => page.problems.push("page error: " + e.message));
  page.on("console", (m) => {
    if (m.type() === "error" && !/Failed to load resource/.test(m.text())) page.problems.push("console: " + m.text());
  });
  return page;
}

/// axe-core over the page, light and dark: no serious or critical violation (contrast included).
async function checkA11y(page, state) {
  if (!(await page.evaluate(() => !!window.axe))) await page.evaluate(AXE);
  for (const scheme of ["light", "dark"]) {
    await page.emulateMedia({ colorScheme: scheme });
    const result = await page.evaluate(async () => await window.axe.run(document, { resultTypes: ["violations"] }));
    const bad = result.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
    assert.deepEqual(bad.map((v) => v.id + ": " + v.nodes.map((n) => n.target.join(" ")).join(", ")), [],
      "axe violations in state " + state + " (" + scheme + ")");
  }
  await page.emulateMedia({ colorScheme: "light" });
}

/// Screenshots of the current state at 360 and 1280 px, light and dark.
async function screenshots(page, state) {
  fs.mkdirSync(SHOTS, { recursive: true });
  const size = page.viewportSize();
  for (const scheme of ["light", "dark"]) {
    await page.emulateMedia({ colorScheme: scheme });
    for (const width of [360, 1280]) {
      await page.setViewportSize({ width, height: 900 });
      await page.waitForTimeout(50);
      await page.screenshot({ path: path.join(SHOTS, `${state}-${width}-${scheme}.png`), fullPage: true });
    }
  }
  await page.emulateMedia({ colorScheme: "light" });
  await page.setViewportSize(size);
}

/// The length in seconds of a PCM WAV file.
function wavSeconds(buffer) {
  assert.equal(buffer.toString("ascii", 0, 4), "RIFF");
  let offset = 12, rate = 0, blockAlign = 0;
  while (offset + 8 <= buffer.length) {
    const id = buffer.toString("ascii", offset, offset + 4);
    const size = buffer.readUInt32LE(offset + 4);
    if (id === "fmt ") { rate = buffer.readUInt32LE(offset + 12); blockAlign = buffer.readUInt16LE(offset + 20); }
    if (id === "data") return size / blockAlign / rate;
    offset += 8 + size + (size % 2);
  }
  throw new Error("no data chunk");
}

const LYRICS = "[Verse]\nMorning light on the water\nWe sing along the shore\n\n[Chorus]\nHold the sun a little longer\nNever ask for more";

/// Runs `body` with a fresh songd and browser; prints ok/failed, exit code for ctest.
async function run(name, body) {
  let songd, browser, page, stripe;
  try {
    await body({
      startSongd: async (env) => (songd = await startSongd(env)),
      startStripe: async () => (stripe = await startStripe()),
      launch: async () => (browser = await launch()),
      setPage: (p) => (page = p),
    });
    console.log("ok - " + name);
  } catch (e) {
    console.error("not ok - " + name + "\n" + (e && e.stack || e));
    if (page) {
      try { fs.mkdirSync(SHOTS, { recursive: true }); await page.screenshot({ path: path.join(SHOTS, "FAILED-" + name + ".png"), fullPage: true }); } catch (err) { /* ignore */ }
    }
    if (songd) { try { console.error(fs.readFileSync(path.join(songd.dir, "songd.log"), "utf8").slice(-3000)); } catch (err) { /* ignore */ } }
    process.exitCode = 1;
  } finally {
    if (browser) await browser.close();
    if (songd) await songd.stop();
    if (stripe) await stripe.stop();
  }
}

module.exports = { paymentEnv, startStripe, assert, until, get, startSongd, launch, newPage, checkA11y, screenshots, wavSeconds, run, LYRICS, freePort, SHOTS };
