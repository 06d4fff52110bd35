// The whole flow with the keyboard only (payments on): Tab, Space, arrows, typing and Enter;
// every focused control shows a visible focus ring.
"use strict";
const fs = require("node:fs");
const L = require("./lib");
const { assert } = L;

/// Presses Tab until the focused element matches `selector`; checks its focus is visible.
async function tabTo(page, selector, max = 80) {
  for (let i = 0; i < max; i++) {
    await page.keyboard.press("Tab");
    const state = await page.evaluate((sel) => {
      const el = document.activeElement;
      if (!el || !el.matches(sel)) return null;
      // Chips are visually hidden checkboxes: the ring is drawn on their label.
      const shown = el.classList.contains("chip-input") ? el.nextElementSibling : el;
      const style = getComputedStyle(shown);
      return { outline: style.outlineStyle !== "none" && parseFloat(style.outlineWidth) >= 2 };
    }, selector);
    if (state) {
      assert.ok(state.outline, "visible focus on " + selector);
      return;
    }
  }
  throw new Error("Tab never reached " + selector);
}

L.run("keyboard", async (t) => {
  const stripe = await t.startStripe();
  const songd = await t.startSongd(L.paymentEnv(stripe));
  const browser = await t.launch();
  const page = await L.newPage(browser);
  t.setPage(page);
  await page.goto(songd.url + "/");
  await page.waitForSelector("body[data-ready='1']");

  // The skip link comes first and leads to the form.
  await page.keyboard.press("Tab");
  assert.equal(await page.evaluate(() => document.activeElement.className), "skip");
  await tabTo(page, "#lyrics");
  await page.keyboard.type("Morning light on the water\nWe sing along the shore\nHold the sun a little longer");
  await tabTo(page, "#chip-genre-rock");
  await page.keyboard.press("Space");
  await tabTo(page, "#chip-mood-energetic");
  await page.keyboard.press("Space");
  await tabTo(page, "#style");
  await page.keyboard.type("late night drive");
  await tabTo(page, "#length");
  await page.keyboard.press("ArrowRight");
  await page.keyboard.press("ArrowRight");
  assert.equal(await page.locator("#length").inputValue(), "105");
  assert.equal(await page.locator("#length-out").innerText(), "1:45");
  await tabTo(page, "#advanced > summary");
  await page.keyboard.press("Enter");
  await tabTo(page, "#seed");
  await page.keyboard.type("42");
  await tabTo(page, "#generate");
  await page.keyboard.press("Enter");

  await page.locator("#player").waitFor({ state: "visible", timeout: 60000 });
  assert.equal(await page.evaluate(() => document.activeElement.id), "job", "focus moves to the song");
  await L.until("the payment form", async () => await page.locator("#pay-button").isEnabled(), 20000);
  await tabTo(page, "audio");
  await tabTo(page, "#standin-card-number");
  await page.keyboard.type("4242424242424242");
  await tabTo(page, "#pay-button");
  await page.keyboard.press("Enter");
  await page.locator("#downloads").waitFor({ state: "visible" });
  assert.equal(await page.evaluate(() => document.activeElement.dataset.format), "wav", "focus on Download WAV");
  const [download] = await Promise.all([page.waitForEvent("download"), page.keyboard.press("Enter")]);
  const seconds = L.wavSeconds(fs.readFileSync(await download.path()));
  assert.ok(Math.abs(seconds - 105) < 0.5, "WAV length " + seconds);
  const id = await page.evaluate(() => localStorage.getItem("songd.current"));
  const status = JSON.parse((await L.get(songd.url + "/api/v1/status/" + id)).body.toString());
  assert.equal(status.seed, 42);
  assert.equal(seconds, status.audio.duration_seconds);

  // My songs: open the song again from the list by keyboard.
  await tabTo(page, "#song-list button");
  await page.keyboard.press("Enter");
  await page.locator("#downloads").waitFor({ state: "visible" });
  assert.deepEqual(page.problems, []);
});
