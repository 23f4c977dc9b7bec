import assert from "node:assert/strict";
import { chromium } from "playwright-core";
import { startServer } from "../server.ts";

const shared = new URL("../../shared/", import.meta.url);
const model = new URL("models/stories260K/stories260K.bin", shared).pathname;
const CHROMIUM = "/usr/bin/chromium";
let skip = "";
try {
  Deno.statSync(model);
} catch {
  skip = `${model} not found (../shared is absent)`;
}
try {
  Deno.statSync(CHROMIUM);
} catch {
  skip ||= `${CHROMIUM} not found (apt-get install chromium)`;
}
if (skip) console.warn(`skipping the chat page test: ${skip}`);

Deno.test({
  name: "chat page in headless Chromium: type a message, the reply streams in",
  ignore: skip !== "",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const s = await startServer({ model, port: 0, log: () => {}, tokensPerTurn: 4 });
    const profile = await Deno.makeTempDir({ prefix: "awq-edge-chromium-" });
    // A fresh profile directory (playwright passes it as --user-data-dir).
    const browser = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      timeout: 60_000,
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
    });
    try {
      await s.engine.ready;
      const page = await browser.newPage();
      page.setDefaultTimeout(30_000);
      await page.goto(s.url + "/");
      // Browser-side code as strings: this module is type-checked without the DOM library.
      await page.waitForFunction(
        `document.getElementById("model").textContent === "stories260K.bin"`,
      );
      // Record the reply's text each time it changes while it streams.
      await page.evaluate(`
        window.updates = [];
        new MutationObserver(() => {
          const el = document.querySelector(".msg.assistant");
          if (el) window.updates.push(el.textContent);
        }).observe(document.getElementById("log"), {
          subtree: true, childList: true, characterData: true,
        });
      `);
      await page.fill("#input", "Tell me a story about a cat.");
      await page.fill("#max", "48");
      await page.click("#send");
      await page.waitForSelector('.msg.assistant[data-done="true"]');
      const reply = await page.textContent(".msg.assistant");
      const updates = await page.evaluate(`window.updates`) as string[];
      assert.equal(await page.textContent(".msg.user"), "Tell me a story about a cat.");
      assert.ok(reply && reply.length > 0, "no reply text");
      const distinct = new Set(updates.filter(Boolean));
      assert.ok(distinct.size >= 2, `the reply did not stream (${distinct.size} updates)`);
      assert.equal([...distinct].at(-1), reply);
    } finally {
      await browser.close();
      await s.shutdown();
      await Deno.remove(profile, { recursive: true }).catch(() => {});
    }
  },
});
