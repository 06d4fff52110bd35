// What the page does when the server offers more (live events, cancel, plain lyrics,
// instrumental) and how it explains refusals (429, 503). The server's answers for those are
// stood in with Playwright's routing; everything else is the real binary.
"use strict";
const L = require("./lib");
const { assert } = L;

const FAKE = "00000000-0000-4000-8000-0000000000aa";

function statusDoc(fields) {
  return Object.assign({ job_id: FAKE, status: "queued", created_at: new Date().toISOString(), progress: 0,
    queue_position: null, estimated_wait_minutes: null, expires_at: null, error: null, audio: null,
    payment: { required: false, paid: false, amount: 99, currency: "usd", paid_at: null },
    download_url: null, preview_url: null }, fields);
}

L.run("features", async (t) => {
  const songd = await t.startSongd();
  const browser = await t.launch();
  const page = await L.newPage(browser);
  t.setPage(page);
  const sent = [];
  let generateAnswer = null;
  let eventsOpened = 0;
  let cancelCalls = 0;
  await page.route("**/openapi.json", async (route) => {
    const response = await route.fetch();
    const doc = await response.json();
    doc.paths["/api/v1/jobs/{job_id}/events"] = { get: { responses: { 200: { description: "events" } } } };
    doc.paths["/api/v1/jobs/{job_id}/cancel"] = { post: { responses: { 200: { description: "canceled" } } } };
    doc.paths["/api/v1/jobs/{job_id}/lyrics"] = { get: { responses: { 200: { description: "LRC" } } } };
    doc.components.schemas.GenerateRequest.properties.instrumental = { type: "boolean" };
    await route.fulfill({ response, json: doc });
  });
  await page.route("**/api/v1/generate", async (route) => {
    sent.push(JSON.parse(route.request().postData()));
    if (generateAnswer) return route.fulfill(generateAnswer);
    return route.fulfill({ status: 202, json: { job_id: FAKE, status: "queued", queue_position: 3, estimated_wait_minutes: 4, message: "queued" } });
  });
  await page.route("**/api/v1/jobs/" + FAKE + "/events", async (route) => {
    eventsOpened++;
    const events = [statusDoc({ queue_position: 3, estimated_wait_minutes: 4 }), statusDoc({ queue_position: 2, estimated_wait_minutes: 3 })]
      .map((d) => "event: status\ndata: " + JSON.stringify(d) + "\n\n").join("");
    await route.fulfill({ status: 200, headers: { "Content-Type": "text/event-stream", "Cache-Control": "no-cache" }, body: events });
  });
  await page.route("**/api/v1/status/" + FAKE, (route) =>
    route.fulfill({ status: 200, headers: { ETag: '"q2"' }, json: statusDoc({ queue_position: 2, estimated_wait_minutes: 3 }) }));
  await page.route("**/api/v1/jobs/" + FAKE + "/cancel", (route) => {
    cancelCalls++;
    return route.fulfill({ status: 200, json: statusDoc({ status: "canceled" }) });
  });

  await page.goto(songd.url + "/");
  await page.waitForSelector("body[data-ready='1']");

  // Instrumental: the switch is offered, the voice chips and lyrics step aside.
  const instrumental = page.getByRole("switch", { name: "Instrumental (no vocals)" });
  await instrumental.check();
  assert.equal(await page.getByRole("textbox", { name: "Lyrics", exact: true }).isDisabled(), true);
  assert.equal(await page.locator("#chip-voice-choir").isDisabled(), true);
  await page.getByText("jazz", { exact: true }).click();
  await page.getByText("piano", { exact: true }).click();
  await page.getByRole("button", { name: "Generate" }).click();
  await L.until("generate", async () => sent.length === 1);
  assert.equal(sent[0].instrumental, true);
  assert.equal(sent[0].lyrics, "");
  assert.equal(sent[0].style_prompt, "jazz, piano");

  // Live events: queue position from the stream, then Cancel.
  const status = page.locator("#job-status");
  await L.until("queue position", async () => /number 2, about 3 minutes/.test(await status.innerText()), 10000);
  assert.ok(eventsOpened >= 1, "the page listened to the events");
  const cancel = page.getByRole("button", { name: "Cancel" });
  await cancel.waitFor({ state: "visible" });
  await L.checkA11y(page, "queued");
  await L.screenshots(page, "8-queued");
  await cancel.click();
  await L.until("canceled", async () => /Canceled/.test(await status.innerText()), 10000);
  assert.equal(cancelCalls, 1);
  assert.ok(!(await cancel.isVisible()), "no Cancel once canceled");

  // Plain sectioned lyrics go as typed: the server lays them out.
  await page.getByRole("button", { name: "Make another song" }).click();
  await instrumental.uncheck();
  await page.getByRole("textbox", { name: "Lyrics", exact: true }).fill(L.LYRICS);
  generateAnswer = { status: 429, headers: { "Retry-After": "120", "Content-Type": "application/problem+json" },
    body: JSON.stringify({ type: "about:blank", title: "Too Many Requests", status: 429, detail: "rate limit" }) };
  await page.getByRole("button", { name: "Generate" }).click();
  const formError = page.locator("#form-error");
  await L.until("429 explained", async () => /Too many songs.*in 2 minutes/.test(await formError.innerText()), 10000);
  assert.equal(sent[1].lyrics, L.LYRICS);
  await L.screenshots(page, "10-rate-limited");

  generateAnswer = { status: 503, headers: { "Retry-After": "30", "Content-Type": "application/problem+json" },
    body: JSON.stringify({ status: 503, detail: "busy" }) };
  await page.getByRole("button", { name: "Generate" }).click();
  await L.until("503 explained", async () => /busy.*in 30 seconds/.test(await formError.innerText()), 10000);

  // A song that expired: My songs says so, and opening it explains what happened.
  const OLD = "00000000-0000-4000-8000-0000000000bb";
  await page.route("**/api/v1/status/" + OLD, (route) =>
    route.fulfill({ status: 200, headers: { ETag: '"x"' }, json: statusDoc({ job_id: OLD, status: "expired" }) }));
  await page.evaluate((id) => {
    const songs = JSON.parse(localStorage.getItem("songd.songs"));
    songs.push({ id, title: "An old song", status: "completed" });
    localStorage.setItem("songd.songs", JSON.stringify(songs));
    localStorage.removeItem("songd.current");
  }, OLD);
  await page.reload();
  await page.waitForSelector("body[data-ready='1']");
  const row = page.locator("#song-list li", { hasText: "An old song" });
  await L.until("expired in My songs", async () => /expired/.test(await row.innerText()), 10000);
  await row.getByRole("button", { name: "Open An old song" }).click();
  await L.until("expiry explained", async () => /expired: its files were deleted/.test(await page.locator("#job-error").innerText()), 10000);
  assert.ok(!(await page.locator("#downloads").isVisible()));
  await L.checkA11y(page, "expired");
  await L.screenshots(page, "11-expired");
  assert.deepEqual(page.problems, []);
});
