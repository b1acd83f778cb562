// Browser tests of Aviso's web pages in headless Chromium (Debian `chromium`
// driven by playwright-core). Run by crates/aviso/tests/it/portal.rs against
// a live Aviso: AVISO_BASE (http://127.0.0.1:port), AVISO_ADMIN_KEY, and
// SHOTS (folder for one screenshot per test, saved as its last page).
// A real receiver runs here on a loopback port. Exits non-zero on failure.
import { chromium } from "playwright-core";
import http from "node:http";
import fs from "node:fs";
import path from "node:path";
import assert from "node:assert/strict";

const BASE = process.env.AVISO_BASE;
const ADMIN = process.env.AVISO_ADMIN_KEY;
const SHOTS = process.env.SHOTS || "target/browser";
fs.mkdirSync(SHOTS, { recursive: true });

// --- the API, as the platform's backend uses it -----------------------------
async function api(method, p, body, key = ADMIN) {
  const res = await fetch(BASE + "/v1" + p, {
    method,
    headers: { authorization: "Bearer " + key, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  const json = text ? JSON.parse(text) : null;
  if (res.status >= 300) throw new Error(`${method} ${p} → ${res.status} ${text}`);
  return json;
}

// Waits for `check` to return a truthy value (polling, with a deadline).
async function until(what, check, ms = 20000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > end) throw new Error("timed out waiting for " + what);
    await new Promise((r) => setTimeout(r, 100));
  }
}

// --- a receiver on a loopback port -------------------------------------------
const received = [];
let answer = 200;
const receiver = http.createServer((req, res) => {
  let body = "";
  req.on("data", (c) => (body += c));
  req.on("end", () => {
    received.push({ headers: req.headers, body: JSON.parse(body || "null"), status: answer });
    res.writeHead(answer, { "content-type": "text/plain" });
    res.end(answer === 200 ? "ok" : "receiver is down");
  });
});
await new Promise((r) => receiver.listen(0, "127.0.0.1", r));
const HOOK = `http://127.0.0.1:${receiver.address().port}/hooks`;

// --- fixtures: catalogue with groups, two tenants, their portal links --------
const stamp = Date.now().toString(36);
const T1 = `COIG.PUBLICADO`;
const T2 = `BOLETIM.EOLICA`;
const T3 = `BOLETIM.ESTADO`;
await api("POST", "/event-types", { name: T1, description: "COIG - Comunicação de Ocorrência em Instalações de Geração", group: "Análise de ocorrências e perturbações/Ocorrências", example: { produto: "COIG" } });
await api("POST", "/event-types", { name: T2, description: "Boletim Mensal de Geração Eólica", group: "Resultados da operação/Boletins", example: { produto: "eolica" } });
await api("POST", "/event-types", { name: T3, description: "Boletim Mensal de Geração por Estado", group: "Resultados da operação/Boletins" });
const acme = await api("POST", "/tenants", { uid: "acme-" + stamp, name: "Acme Energia" });
const other = await api("POST", "/tenants", { uid: "other-" + stamp, name: "Other Co" });
const link = async (t, lang) => (await api("POST", `/tenants/${t}/portal-link`, lang ? { lang } : {})).url;

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
});

const results = [];
async function test(name, fn) {
  const ctx = await browser.newContext({ locale: "en-US" });
  const page = await ctx.newPage();
  const t0 = Date.now();
  try {
    await fn(page, ctx);
    results.push([name, "ok", Date.now() - t0]);
  } catch (e) {
    results.push([name, "FAILED", Date.now() - t0]);
    console.error(`--- ${name} failed on ${page.url()}:\n${e.stack}`);
  } finally {
    await page.screenshot({ path: path.join(SHOTS, name + ".png"), fullPage: true }).catch(() => {});
    await ctx.close();
  }
}

const USER = "sintegre";
const PASS = "s3nha-" + stamp;
const BASIC = "Basic " + Buffer.from(`${USER}:${PASS}`).toString("base64");
let endpointId = null;

const flash = (page) => page.locator("p.flash").innerText();
const rowStatus = (page, type) => page.locator(`tr[data-type="${type}"] [data-status]`).getAttribute("data-status");

await test("portal-integration-lifecycle", async (page) => {
  await page.goto(await link(acme.id));
  assert.equal(new URL(page.url()).pathname, "/portal");
  await page.getByText("No webhook yet").waitFor();

  // New: a bad URL first — the API's error shows next to the field.
  await page.getByRole("link", { name: "New" }).click();
  await page.getByLabel("Description").fill("ERP de medição");
  await page.getByLabel("Webhook URL").fill("ftp://example.com/x");
  await page.getByLabel("Basic authentication").check();
  await page.getByLabel("User").fill(USER);
  await page.getByLabel("Password").fill(PASS);
  await page.getByLabel(/COIG - Comunicação/).check();
  // The group checkbox ticks every product of "Boletins"; untick one of them.
  await page.getByRole("checkbox", { name: "Boletins" }).check();
  assert.equal(await page.getByLabel(/Geração por Estado/).isChecked(), true);
  await page.getByLabel(/Geração por Estado/).uncheck();
  await page.locator("details.settings summary").click();
  await page.getByRole("radio", { name: "Schedule (waits after each failure)" }).check();
  await page.locator("#schedule").fill("1s");
  await page.getByRole("button", { name: "Save" }).click();
  await page.locator("#err-url").waitFor();
  assert.match(await page.locator("#err-url").innerText(), /url/i);
  assert.equal(await page.getByLabel(/COIG - Comunicação/).isChecked(), true, "ticks survive the error");

  await page.getByLabel("Webhook URL").fill(HOOK);
  await page.getByLabel("Password").fill(PASS);
  await page.getByRole("button", { name: "Save" }).click();
  assert.match(await flash(page), /Integration created/);
  endpointId = page.url().match(/\/portal\/i\/(ep_[^?/]+)/)[1];
  const stored = await api("GET", `/tenants/${acme.id}/endpoints/${endpointId}`);
  assert.deepEqual([...stored.event_types].sort(), [T2, T1].sort());
  assert.deepEqual(stored.policy.retry, { schedule: ["1s"] });

  // Send: one test request now; the receiver gets it and the page says so.
  await page.getByRole("button", { name: "Send", exact: true }).click();
  assert.match(await flash(page), /receiver answered HTTP 200/);
  assert.equal(received.length, 1);
  assert.equal(received[0].headers.authorization, BASIC);
  assert.ok(received[0].headers["webhook-signature"].startsWith("v1,"));

  // Publications: the two ticked products arrive, the unticked one does not.
  const before = received.length;
  const e1 = await api("POST", `/tenants/${acme.id}/events`, { type: T1, payload: { produto: "COIG", n: 1 } });
  const e2 = await api("POST", `/tenants/${acme.id}/events`, { type: T2, payload: { produto: "eolica", n: 1 } });
  const e3 = await api("POST", `/tenants/${acme.id}/events`, { type: T3, payload: { produto: "estado" } });
  assert.equal(e3.deliveries.length, 0, "an unticked product is not delivered");
  await until("two deliveries", () => received.length >= before + 2);
  await until("both succeeded", async () => {
    const ev = await api("GET", `/tenants/${acme.id}/events/${e2.id}`);
    const ev1 = await api("GET", `/tenants/${acme.id}/events/${e1.id}`);
    return ev.deliveries[0].status === "succeeded" && ev1.deliveries[0].status === "succeeded";
  });
  // Show details: each ticked product and its last delivery.
  await page.getByRole("link", { name: "Show details" }).first().click();
  assert.equal(await rowStatus(page, T1), "succeeded");
  assert.equal(await rowStatus(page, T2), "succeeded");
  assert.equal(await page.locator(`tr[data-type="${T3}"]`).count(), 0);

  // The receiver fails: the delivery fails after its one retry …
  answer = 500;
  const failing = await api("POST", `/tenants/${acme.id}/events`, { type: T1, payload: { produto: "COIG", n: 2 } });
  await until("the delivery to fail", async () => {
    const ev = await api("GET", `/tenants/${acme.id}/events/${failing.id}`);
    return ev.deliveries[0].status === "failed";
  });
  await page.reload();
  assert.equal(await rowStatus(page, T1), "failed");
  // … then recovers, and Resend pending sends that latest failed product again.
  answer = 200;
  const n = received.length;
  await page.getByRole("button", { name: "Resend pending" }).click();
  assert.match(await flash(page), /Queued/);
  const again = await until("the resend", () => received.slice(n).find((r) => r.headers["webhook-id"] === failing.id));
  assert.deepEqual(again.body, { produto: "COIG", n: 2 });
  await until("details to show it succeeded", async () => {
    await page.reload();
    return (await rowStatus(page, T1)) === "succeeded";
  });

  // Delivery log with a filter, and the attempt view of that delivery.
  await page.getByRole("link", { name: "Delivery log" }).click();
  await page.getByLabel("Product / event type").fill(T1);
  await page.getByRole("button", { name: "Filter" }).click();
  const rows = page.locator("table.log tbody tr");
  assert.equal(await rows.count(), 2);
  await rows.first().locator("a").click();
  await page.locator("section.attempt").first().waitFor();
  const text = await page.locator("main").innerText();
  assert.match(text, /HTTP 500/);
  assert.match(text, /HTTP 200/);
  assert.match(text, /receiver is down/);
  assert.match(text, /content-type: text\/plain/, "response headers are shown");
  assert.match(text, /authorization: Basic ••••/);
  assert.ok(!text.includes(PASS), "no secret in the attempt view");
  assert.ok(!(await page.content()).includes(PASS), "no secret anywhere in the page");

  // Signing secret, revealed on demand.
  await page.goto(`${BASE}/portal/i/${endpointId}`);
  await page.getByRole("link", { name: "Reveal signing secret" }).click();
  const secret = await page.locator("#secret").innerText();
  assert.equal(secret, (await api("GET", `/tenants/${acme.id}/endpoints/${endpointId}/secret`)).secret);
  await page.getByRole("button", { name: "Rotate secret" }).click();
  assert.notEqual(await page.locator("#secret").innerText(), secret);

  // Deactivate: a new publication creates no delivery for it.
  await page.goto(`${BASE}/portal/i/${endpointId}`);
  await page.getByRole("switch").click();
  assert.match(await flash(page), /deactivated/);
  const off = await api("POST", `/tenants/${acme.id}/events`, { type: T1, payload: { n: 3 } });
  assert.equal(off.deliveries.length, 0);
  await page.getByRole("switch").click();
  assert.match(await flash(page), /activated/);

  // Edit: new description, one product less; the stored password is kept.
  await page.getByRole("link", { name: "Edit" }).click();
  assert.equal(await page.getByLabel("Description").inputValue(), "ERP de medição");
  await page.getByLabel("Description").fill("ERP — só COIG");
  await page.getByLabel(/Geração Eólica/).uncheck();
  await page.getByRole("button", { name: "Save" }).click();
  assert.match(await flash(page), /Changes saved/);
  assert.equal(await page.locator("h1").innerText(), "ERP — só COIG");
  const edited = await api("GET", `/tenants/${acme.id}/endpoints/${endpointId}`);
  assert.deepEqual(edited.event_types, [T1]);
  const k = received.length;
  await page.getByRole("button", { name: "Send", exact: true }).click();
  assert.match(await flash(page), /HTTP 200/);
  assert.equal(received[k].headers.authorization, BASIC, "the password survived the edit");

  // Portuguese labels.
  await page.getByRole("link", { name: "PT" }).click();
  await page.getByRole("button", { name: "Reenviar pendentes" }).waitFor();
  await page.getByRole("link", { name: "Configuração de webhook" }).click();
  await page.getByRole("link", { name: "Novo" }).waitFor();
});

await test("portal-other-tenant-sees-nothing", async (page) => {
  assert.ok(endpointId, "the first test made an integration");
  await page.goto(await link(other.id, "pt"));
  await page.getByText("Nenhum webhook encontrado").waitFor();
  for (const p of [`/portal/i/${endpointId}`, `/portal/i/${endpointId}/log`, `/portal/i/${endpointId}/secret`, `/portal/i/${endpointId}/edit`]) {
    const res = await page.goto(BASE + p);
    assert.equal(res.status(), 404, p);
  }
  // Its own session and CSRF token cannot act on acme's integration either.
  await page.goto(BASE + "/portal");
  const csrf = await page.locator('input[name="csrf"]').first().inputValue();
  const res = await page.request.post(`${BASE}/portal/i/${endpointId}/toggle`, { form: { csrf, enabled: "false" } });
  assert.equal(res.status(), 404);
  assert.equal((await api("GET", `/tenants/${acme.id}/endpoints/${endpointId}`)).enabled, true);
  // A link that was altered is refused.
  const good = await link(acme.id);
  const bad = good.replace(acme.id, other.id);
  assert.equal((await page.goto(bad)).status(), 403);
});

await test("portal-on-a-phone", async (page) => {
  await page.setViewportSize({ width: 390, height: 844 });
  await page.goto(await link(acme.id));
  await page.getByText("ERP — só COIG").waitFor();
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `the list fits a phone screen (overflow ${overflow}px)`);
  await page.goto(`${BASE}/portal/i/${endpointId}/edit`);
  const overflowForm = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflowForm <= 0, `the form fits a phone screen (overflow ${overflowForm}px)`);
});

await test("admin-console", async (page) => {
  await page.goto(BASE + "/admin");
  assert.equal(new URL(page.url()).pathname, "/admin/login");
  await page.getByLabel("Admin key").fill("not-the-key");
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByText("That is not an admin key").waitFor();
  await page.getByLabel("Admin key").fill(ADMIN);
  await page.getByRole("button", { name: "Sign in" }).click();

  // Live view: figures from the metrics, and a failing endpoint listed.
  answer = 500;
  const sick = await api("POST", `/tenants/${other.id}/endpoints`, { url: HOOK, policy: { retry: { schedule: [] } } });
  const lost = await api("POST", `/tenants/${other.id}/events`, { type: T1, payload: { n: 9 } });
  await until("the other tenant's delivery to fail", async () =>
    (await api("GET", `/tenants/${other.id}/events/${lost.id}`)).deliveries[0].status === "failed");
  answer = 200;
  await until("live figures", async () => (await page.locator("#queue_ready").innerText()) !== "…");
  await until("a rate", async () => /^\d+(\.\d)?$/.test(await page.locator("#delivery_rate").innerText()));
  await page.locator("#failing tr", { hasText: "Other Co" }).waitFor();
  assert.equal(await page.locator("#failing tr", { hasText: "Acme Energia" }).count(), 0, "acme recovered");
  assert.ok(sick.id);

  // Catalogue: a type with a group and an example; the API's error by the field.
  await page.getByRole("link", { name: "Event-type catalogue" }).click();
  await page.getByLabel("Name").fill("not a name!");
  await page.getByRole("button", { name: "Create" }).click();
  await page.locator("#err-name").waitFor();
  await page.getByLabel("Name").fill("CARGA.VERIFICADA");
  await page.getByLabel("Group (macro-process/process)").fill("Resultados da operação/Carga");
  await page.getByLabel("Example payload (JSON)").fill('{"produto": "carga"}');
  await page.getByRole("button", { name: "Create" }).click();
  await page.getByRole("cell", { name: "CARGA.VERIFICADA" }).waitFor();
  const et = await api("GET", "/event-types/CARGA.VERIFICADA");
  assert.equal(et.group, "Resultados da operação/Carga");
  assert.deepEqual(et.example, { produto: "carga" });

  // Tenants and partners.
  await page.getByRole("link", { name: "Tenants" }).click();
  await page.getByLabel("External id (uid)").fill("novo-" + stamp);
  await page.getByLabel("Name").fill("Novo Cliente");
  await page.getByRole("button", { name: "Create" }).click();
  await page.getByRole("cell", { name: "Novo Cliente" }).waitFor();
  await page.getByRole("link", { name: "Partners" }).click();
  await page.getByLabel("Name").fill("Integrador XYZ");
  await page.getByRole("button", { name: "Create" }).click();
  await page.getByRole("cell", { name: "Integrador XYZ" }).waitFor();

  // Keys: made for a tenant, shown once, works, then revoked.
  await page.getByRole("link", { name: "API keys" }).click();
  await page.getByLabel("Tenant / Partner").selectOption({ label: `Tenant: Acme Energia (${acme.id})` });
  await page.getByLabel("Name").fill("erp");
  await page.getByRole("button", { name: "Create" }).click();
  const shown = await flash(page);
  const [, keyId, key] = shown.match(/(key_\S+) = (avk_\S+)/);
  assert.equal((await api("GET", `/tenants/${acme.id}`, undefined, key)).id, acme.id);
  await page.getByLabel("Key id (key_…)").fill(keyId);
  await page.getByRole("button", { name: "Revoke key" }).click();
  assert.match(await flash(page), /revoked/);
  await assert.rejects(api("GET", `/tenants/${acme.id}`, undefined, key), /401/);
});

await browser.close();
receiver.close();
for (const [name, status, ms] of results) console.log(`${status.padEnd(6)} ${name} (${ms} ms)`);
const failed = results.filter((r) => r[1] !== "ok").length;
console.log(`${results.length - failed} passed, ${failed} failed; screenshots in ${SHOTS}`);
process.exit(failed ? 1 : 0);
