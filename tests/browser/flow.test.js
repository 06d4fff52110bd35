// The free flow: paste lyrics, pick a style, generate, watch progress, hear the preview,
// download a WAV of exactly the chosen length; a lyric error on its line; reload mid-render.
"use strict";
const fs = require("node:fs");
const L = require("./lib");
const { assert } = L;

L.run("flow", async (t) => {
  const songd = await t.startSongd();
  const browser = await t.launch();
  const page = await L.newPage(browser);
  t.setPage(page);
  const foreign = [];
  page.on("request", (r) => { if (!r.url().startsWith(songd.url) && !/^(data|blob):/.test(r.url())) foreign.push(r.url()); });
  await page.goto(songd.url + "/");
  await page.waitForSelector("body[data-ready='1']");
  await L.checkA11y(page, "empty");
  await L.screenshots(page, "1-empty");

  // A lyric error shows on its line: line 3 has no time while the others do.
  await page.getByRole("textbox", { name: "Lyrics", exact: true }).fill("[00:10.00]First line sings\n[00:15.00]Second line sings\nthis line has no time\n[00:25.00]Fourth");
  await page.getByText("pop", { exact: true }).click();
  await page.getByRole("button", { name: "Generate" }).click();
  const error = page.locator("#lyrics-error");
  await error.waitFor({ state: "visible" });
  assert.equal(await error.getAttribute("data-line"), "3");
  assert.match(await error.innerText(), /Line 3: .this line has no time./);
  assert.match(await error.innerText(), /timestamp/);
  assert.equal(await page.getByRole("textbox", { name: "Lyrics", exact: true }).getAttribute("aria-invalid"), "true");
  await L.checkA11y(page, "lyric-error");
  await L.screenshots(page, "2-lyric-error");

  // Plain sectioned lyrics, a style, 95 s.
  await page.getByRole("textbox", { name: "Lyrics", exact: true }).fill(L.LYRICS);
  await page.getByText("happy", { exact: true }).click();
  await page.getByRole("textbox", { name: "Style", exact: true }).fill("summer evening");
  assert.equal(await page.locator("#style-prompt").innerText(), "pop, happy, summer evening");
  await page.getByRole("button", { name: "Generate" }).click();
  await page.locator("#job").waitFor({ state: "visible" });
  const progress = page.getByRole("progressbar");
  await L.until("progress to move", async () => Number(await progress.getAttribute("value")) > 0, 30000);
  await L.checkA11y(page, "rendering");
  await L.screenshots(page, "3-rendering");

  // Reload mid-render: the page follows the same job again.
  const id = await page.evaluate(() => localStorage.getItem("songd.current"));
  assert.ok(id, "current job remembered");
  const before = Number(await progress.getAttribute("value"));
  await page.reload();
  await page.waitForSelector("body[data-ready='1']");
  await page.locator("#job").waitFor({ state: "visible" });
  assert.equal(await page.evaluate(() => localStorage.getItem("songd.current")), id);
  await L.until("progress after reload", async () => Number(await progress.getAttribute("value")) >= before || (await page.locator("#player").isVisible()), 30000);
  assert.match(await page.locator("#song-list").innerText(), /Morning light on the water/);

  // Done: the preview plays and has a duration; the waveform is drawn.
  await page.locator("#player").waitFor({ state: "visible", timeout: 60000 });
  const audio = page.locator("audio[controls]");
  const duration = await L.until("audio duration", async () => {
    const d = await audio.evaluate((a) => a.duration);
    return d > 0 && isFinite(d) ? d : 0;
  }, 20000);
  assert.ok(duration > 5 && duration < 12, "preview duration " + duration);
  await audio.evaluate((a) => a.play());
  await L.until("audio to play", async () => audio.evaluate((a) => a.currentTime > 0.2 && !a.paused), 20000);
  await audio.evaluate((a) => a.pause());
  await L.until("waveform", async () => (await page.locator("#waveform").getAttribute("data-peaks")) === "1", 20000);
  assert.match(await page.locator("#expiry").innerText(), /Kept until/);
  await L.checkA11y(page, "done");
  await L.screenshots(page, "4-done");

  // Download the WAV: exactly the chosen length.
  const [download] = await Promise.all([
    page.waitForEvent("download"),
    page.getByRole("button", { name: "Download WAV" }).click(),
  ]);
  const file = await download.path();
  const seconds = L.wavSeconds(fs.readFileSync(file));
  // Exactly the length the job reports (the old backend's 95 s is 2^22 samples at 44.1 kHz).
  const status = JSON.parse((await L.get(songd.url + "/api/v1/status/" + id)).body.toString());
  assert.equal(seconds, status.audio.duration_seconds, "WAV length " + seconds);
  assert.ok(seconds >= 95 && seconds < 96, "WAV length " + seconds);
  assert.match(download.suggestedFilename(), /\.wav$/);

  // The same lyrics and seed again, for another take or an expired song.
  await page.getByRole("button", { name: "Same lyrics and seed again" }).click();
  assert.equal(await page.getByRole("textbox", { name: "Lyrics", exact: true }).inputValue(), L.LYRICS);
  assert.equal(await page.locator("#seed").inputValue(), String(status.seed));
  assert.equal(await page.locator("#style-prompt").innerText(), "pop, happy, summer evening");
  assert.deepEqual(foreign, [], "payments off: nothing from another origin (no Stripe.js)");
  assert.deepEqual(page.problems, []);
});
