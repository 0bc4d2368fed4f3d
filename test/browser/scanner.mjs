// The browser half of test/browser (browser_test.go starts the platform, buys the tickets and
// renders their QR codes into Y4M videos, then runs this with node). It drives Debian's
// Chromium through playwright-core: the fake camera plays <video dir>/camera.y4m, which this
// script swaps between scans (Chromium opens the file anew each time the page starts the
// camera). Exits non-zero, after a screenshot, on the first thing that goes wrong.
import { createRequire } from "node:module";
import { copyFileSync, mkdirSync, renameSync } from "node:fs";
import { join } from "node:path";

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};
const gateway = env("SBOR_GATEWAY");
const eventId = env("SBOR_EVENT_ID");
const tickets = env("SBOR_TICKET_IDS").split(",");
const videoDir = env("SBOR_VIDEO_DIR");
const shots = env("SBOR_SCREENSHOT_DIR");
const camera = join(videoDir, "camera.y4m");

const { chromium } = createRequire(join(env("SBOR_PLAYWRIGHT_DIR"), "/"))("playwright-core");

/** Points the fake camera at ticket n's QR; written aside and renamed, never half-written. */
function showTicket(n) {
  copyFileSync(join(videoDir, `ticket${n}.y4m`), camera + ".tmp");
  renameSync(camera + ".tmp", camera);
}

const step = (what) => console.log(`[${new Date().toISOString().slice(11, 23)}] ${what}`);

mkdirSync(shots, { recursive: true });
showTicket(1);
const browser = await chromium.launch({
  executablePath: env("SBOR_CHROMIUM"),
  headless: true,
  // The flags this closed network needs (no background connections), and the fake camera.
  args: [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    `--use-file-for-fake-video-capture=${camera}`,
  ],
});
const context = await browser.newContext({
  viewport: { width: 390, height: 844 }, // a phone
  deviceScaleFactor: 2,
  isMobile: true,
  hasTouch: true,
  permissions: ["camera"],
});
const page = await context.newPage();
const consoleLines = [];
page.on("console", (m) => consoleLines.push(`console.${m.type()}: ${m.text()}`));
page.on("pageerror", (e) => consoleLines.push(`pageerror: ${e.message}`));
page.on("requestfailed", (r) => consoleLines.push(`requestfailed: ${r.method()} ${r.url()} ${r.failure()?.errorText}`));

const verdict = page.locator("#verdict");
async function expectVerdict(state, timeout = 20_000) {
  try {
    await page.waitForSelector(`#verdict[data-state="${state}"]`, { timeout });
  } catch (err) {
    const now = await verdict.getAttribute("data-state");
    const text = await verdict.innerText();
    throw new Error(`verdict ${now} (${text.replace(/\s+/g, " ")}), want ${state}: ${err.message}`);
  }
  step(`verdict ${state}: ${(await verdict.innerText()).replace(/\s+/g, " ")}`);
}
const short = (id) => id.replace(/-/g, "").slice(-8); // as the page shows it

try {
  step("open /scan");
  const resp = await page.goto(`${gateway}/scan`);
  if (!resp.ok() || !resp.headers()["content-security-policy"]) throw new Error(`/scan: ${resp.status()} without CSP`);

  step("log in as door staff");
  await page.getByLabel("Email").fill(env("SBOR_STAFF_EMAIL"));
  await page.getByLabel("Password").fill(env("SBOR_STAFF_PASSWORD"));
  await page.getByRole("button", { name: "Log in" }).tap();

  step("pick the event");
  await page.locator(`button[data-event-id="${eventId}"]`).tap({ timeout: 15_000 });

  // 1. Online: VALID, one tap, CHECKED IN.
  await expectVerdict("valid", 30_000);
  if (!(await verdict.innerText()).includes(short(tickets[0]))) throw new Error("the verdict names another ticket");
  await page.screenshot({ path: join(shots, "1-valid.png"), fullPage: true });
  await page.getByRole("button", { name: "Check in" }).tap();
  await expectVerdict("checked-in");
  await page.waitForSelector(`#log li[data-ticket="${tickets[0]}"][data-state="sent"]`);

  // 2. Offline: the signature is checked on the device, the check-in is queued and goes out
  //    when the network is back.
  showTicket(2);
  await context.setOffline(true);
  await page.waitForSelector('#network[data-online="false"]');
  step("offline; scan the second ticket");
  await page.getByRole("button", { name: "Scan next" }).tap();
  await expectVerdict("valid");
  if (!(await verdict.innerText()).includes(short(tickets[1]))) throw new Error("the verdict names another ticket");
  await page.getByRole("button", { name: "Check in" }).tap();
  await expectVerdict("queued");
  await page.waitForSelector('#pending[data-count="1"]');
  await page.screenshot({ path: join(shots, "2-queued.png"), fullPage: true });
  step("back online");
  await context.setOffline(false);
  await expectVerdict("checked-in");
  await page.waitForSelector(`#log li[data-ticket="${tickets[1]}"][data-state="sent"]`);
  await page.waitForSelector('#pending[data-count="0"]');

  // 3. Offline again with a ticket someone already used: it looks valid on the device, the
  //    check-in is queued, and the server's 409 comes back as a DOUBLE ENTRY.
  showTicket(3);
  await context.setOffline(true);
  await page.waitForSelector('#network[data-online="false"]');
  step("offline; scan the third (already used) ticket");
  await page.getByRole("button", { name: "Scan next" }).tap();
  await expectVerdict("valid");
  if (!(await verdict.innerText()).includes(short(tickets[2]))) throw new Error("the verdict names another ticket");
  await page.getByRole("button", { name: "Check in" }).tap();
  await expectVerdict("queued");
  step("back online");
  await context.setOffline(false);
  await expectVerdict("double-entry");
  await page.waitForSelector(`#alerts .alert[data-kind="double-entry"][data-ticket="${tickets[2]}"]`);
  await page.waitForSelector(`#log li[data-ticket="${tickets[2]}"][data-state="double_entry"]`);
  await page.screenshot({ path: join(shots, "3-double-entry.png"), fullPage: true });

  // Scanning the first ticket again shows USED.
  showTicket(1);
  await page.getByRole("button", { name: "Scan next" }).tap();
  await expectVerdict("used");
  if (!(await verdict.innerText()).includes(short(tickets[0]))) throw new Error("the verdict names another ticket");
  if (consoleLines.some((l) => l.includes("Content Security Policy"))) throw new Error("CSP violations:\n" + consoleLines.join("\n"));
  step("done");
} catch (err) {
  mkdirSync(shots, { recursive: true });
  const path = join(shots, "failure.png");
  await page.screenshot({ path, fullPage: true }).catch(() => {});
  console.error(`FAILED: ${err.stack || err}\nscreenshot: ${path}\nbrowser console:\n${consoleLines.join("\n")}`);
  process.exitCode = 1;
} finally {
  await browser.close();
}
