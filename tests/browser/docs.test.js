// /docs is Swagger UI (embedded, no CDN) over /openapi.json, and "Try it out" on
// POST /api/v1/generate creates a job on this server.
"use strict";
const L = require("./lib");
const { assert } = L;

L.run("docs", async (t) => {
  const songd = await t.startSongd();
  const browser = await t.launch();
  const page = await L.newPage(browser);
  t.setPage(page);
  const foreign = [];
  page.on("request", (r) => { if (!r.url().startsWith(songd.url) && !r.url().startsWith("data:")) foreign.push(r.url()); });
  await page.goto(songd.url + "/docs");
  const op = page.locator("#operations-default-post_api_v1_generate, .opblock-post:has-text('/api/v1/generate')").first();
  await op.waitFor({ timeout: 20000 });
  await L.screenshots(page, "9-docs");
  await op.locator(".opblock-summary").first().click();
  await page.getByRole("button", { name: "Try it out" }).click();
  const body = op.locator("textarea.body-param__text");
  await body.fill(JSON.stringify({ lyrics: "[00:10.00]Hello from the docs page\n[00:20.00]Second line", style_prompt: "jazz, calm, piano", audio_length: 95 }));
  await op.getByRole("button", { name: "Execute" }).click();
  const live = op.locator(".live-responses-table tbody");
  await L.until("Swagger's response", async () => /^\s*202\b/.test(await live.locator(".response-col_status").first().innerText()), 20000);
  const id = /"job_id":\s*"([0-9a-f-]{36})"/.exec(await live.innerText())[1];
  assert.match(id, /^[0-9a-f-]{36}$/);
  const status = await L.get(songd.url + "/api/v1/status/" + id);
  assert.equal(status.status, 200, "the job exists");
  assert.deepEqual(foreign, [], "nothing loaded from another origin");
  assert.deepEqual(page.problems, []);
});
