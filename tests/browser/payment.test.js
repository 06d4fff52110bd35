// Payments on: the page shows the price, a declined card gets a clear message and no download,
// a good card pays and the WAV downloads. Stripe is tests/stripe_mock, Stripe.js a stand-in.
"use strict";
const fs = require("node:fs");
const L = require("./lib");
const { assert } = L;

L.run("payment", async (t) => {
  const stripe = await t.startStripe();
  const songd = await t.startSongd(L.paymentEnv(stripe));
  const browser = await t.launch();
  const page = await L.newPage(browser);
  t.setPage(page);
  const loaded = [];
  page.on("request", (r) => loaded.push(r.url()));
  await page.goto(songd.url + "/");
  await page.waitForSelector("body[data-ready='1']");
  const csp = (await L.get(songd.url + "/")).headers["content-security-policy"];
  assert.ok(csp.includes("script-src 'self' " + new URL(stripe.jsUrl).origin + ";"), csp);
  await L.until("price hint", async () => /\$1\.99/.test(await page.locator("#price-hint").innerText()), 10000);
  assert.ok(!loaded.some((u) => u.startsWith(stripe.jsUrl)), "Stripe.js waits until there is something to pay");

  await page.getByRole("textbox", { name: "Lyrics", exact: true }).fill(L.LYRICS);
  await page.getByText("folk", { exact: true }).click();
  await page.getByRole("button", { name: "Generate" }).click();
  await page.locator("#player").waitFor({ state: "visible", timeout: 60000 });
  const pay = page.getByRole("button", { name: "Pay" });
  await L.until("the payment form", async () => await pay.isEnabled(), 20000);
  assert.match(await page.locator("#price").innerText(), /\$1\.99/);
  assert.ok(!(await page.locator("#downloads").isVisible()), "no download before paying");
  await L.checkA11y(page, "pay");
  await L.screenshots(page, "5-pay");

  // A declined card: a clear message, still no download, the server still refuses (402).
  await page.getByLabel("Card number").fill("4000 0000 0000 0002");
  await pay.click();
  const error = page.locator("#pay-error");
  await error.waitFor({ state: "visible" });
  assert.match(await error.innerText(), /declined.*not been charged/s);
  assert.ok(!(await page.locator("#downloads").isVisible()), "no download after a decline");
  const id = await page.evaluate(() => localStorage.getItem("songd.current"));
  assert.equal((await L.get(songd.url + "/api/v1/download/" + id)).status, 402);
  await L.checkA11y(page, "declined");
  await L.screenshots(page, "6-declined");

  // A good card pays; the download binds the payment and is the whole song.
  await page.getByLabel("Card number").fill("4242 4242 4242 4242");
  await pay.click();
  await page.locator("#downloads").waitFor({ state: "visible" });
  assert.ok(!(await page.locator("#pay").isVisible()));
  await L.checkA11y(page, "paid");
  await L.screenshots(page, "7-paid");
  const [download] = await Promise.all([
    page.waitForEvent("download"),
    page.getByRole("button", { name: "Download WAV" }).click(),
  ]);
  const seconds = L.wavSeconds(fs.readFileSync(await download.path()));
  const status = JSON.parse((await L.get(songd.url + "/api/v1/status/" + id)).body.toString());
  assert.equal(seconds, status.audio.duration_seconds);
  assert.equal(status.payment.paid, true);
  assert.ok(loaded.some((u) => u.startsWith(stripe.jsUrl)), "Stripe.js came from STRIPE_JS_URL");
  assert.deepEqual(page.problems, []);
});
