// The web view in a real browser: headless Debian chromium driven by puppeteer-core.
//
//   node browser_check.js WEB_URL PROXY_URL SCREENSHOT_DIR
//
// Sends requests to https://api.openai.com through the proxy (NODE_EXTRA_CA_CERTS trusts its
// CA) and checks the page: it loads without console errors; a request appears in the list; a
// streamed flow shows in flight, then done, with the timeline of its events; the filter
// narrows the list; a tool-calling conversation shows the call and its result; "<script>alert(1)</script>" in a prompt renders
// as text (no dialog, no script element). Prints "OK" and exits 0, or prints what failed and
// exits 1. Saves web-flows.png and web-conversation.png in SCREENSHOT_DIR.
"use strict";

const https = require("https");
const path = require("path");
const puppeteer = require("puppeteer-core");
const { HttpsProxyAgent } = require("https-proxy-agent");

const [webUrl, proxyUrl, shots] = process.argv.slice(2);
const agent = new HttpsProxyAgent(proxyUrl);
// How long the page may take to show what it must. The page updates within a second on a quiet
// machine; this bound is only for a loaded one (the suite runs two tests at a time beside
// chromium): a wait that never ends still fails the check.
const WAIT = 30000;

function send(method, urlPath, body, headers = {}) {
  return new Promise((resolve, reject) => {
    const req = https.request(
      { host: "api.openai.com", path: urlPath, method, agent, headers: { "Content-Type": "application/json", ...headers } },
      (res) => {
        let text = "";
        res.on("data", (d) => (text += d));
        res.on("end", () => resolve({ status: res.statusCode, text }));
      }
    );
    req.on("error", reject);
    if (body) req.write(JSON.stringify(body));
    req.end();
  });
}


async function main() {
  const browser = await puppeteer.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--no-proxy-server"],
  });
  const problems = [];
  try {
    const page = await browser.newPage();
    await page.setViewport({ width: 1400, height: 900 });
    page.on("console", (m) => {
      if (m.type() === "error") problems.push("console error: " + m.text());
    });
    page.on("pageerror", (e) => problems.push("page error: " + e.message));
    page.on("dialog", async (d) => {
      problems.push("a dialog opened: " + d.message());
      await d.dismiss();
    });

    await page.goto(webUrl, { waitUntil: "load" });
    await page.waitForSelector("body[data-ready=true]", { timeout: WAIT });

    // A request appears in the list.
    const models = await send("GET", "/v1/models");
    if (models.status !== 200) throw new Error("GET /v1/models through the proxy: " + models.status);
    const rowFor = (p, state) =>
      page.waitForFunction(
        (p, state) => [...document.querySelectorAll("#flows tbody tr")].some((tr) => tr.cells[3].textContent === p && (!state || tr.classList.contains("state-" + state))),
        { timeout: WAIT },
        p,
        state
      );
    await rowFor("/v1/models", "done");

    // A streamed flow: in flight, then done.
    const streamed = send(
      "POST",
      "/v1/chat/completions?streamed",
      { model: "gpt-4o-mini", stream: true, messages: [{ role: "user", content: "Stream to the web view." }] },
      { "X-Fake-Events": "8", "X-Fake-Interval-Ms": "400" }
    );
    await rowFor("/v1/chat/completions?streamed", "in_flight");
    await streamed;
    await rowFor("/v1/chat/completions?streamed", "done");

    // Its detail shows when the stream's events arrived.
    await page.evaluate(() => [...document.querySelectorAll("#flows tbody tr")].find((tr) => tr.cells[3].textContent === "/v1/chat/completions?streamed").click());
    await page.waitForSelector("#detail .timeline canvas", { timeout: WAIT });
    const timeline = await page.$eval("#detail .timeline-summary", (e) => e.textContent);
    const shown = /^(\d+) events/.exec(timeline);
    if (!shown || Number(shown[1]) < 8) problems.push("stream timeline of 8 events or more expected: " + timeline);
    const arrivals = await page.$$eval("#detail table.arrivals tbody tr", (r) => r.length);
    if (arrivals < 2) problems.push("expected the arrivals of the stream's pieces, got " + arrivals + " rows");
    await page.click("#detail .close");

    // A tool-calling conversation, with a prompt that holds a script tag.
    const convo = await send("POST", "/v1/chat/completions?tools", {
      model: "gpt-4o-mini",
      tools: [{ type: "function", function: { name: "get_weather", parameters: { type: "object", properties: { city: { type: "string" } } } } }],
      messages: [
        { role: "system", content: "You are a weather bot." },
        { role: "user", content: "Weather in Paris? <script>alert(1)</script>" },
        { role: "assistant", content: null, tool_calls: [{ id: "call_1", type: "function", function: { name: "get_weather", arguments: '{"city":"Paris"}' } }] },
        { role: "tool", tool_call_id: "call_1", content: "18 degrees and sunny <img src=x onerror=alert(2)>" },
      ],
    });
    if (convo.status !== 200) throw new Error("tool conversation through the proxy: " + convo.status);
    await rowFor("/v1/chat/completions?tools", "done");

    // The filter narrows the list.
    const count = () => page.$$eval("#flows tbody tr", (r) => r.length);
    const before = await count();
    await page.type("#f-text", "?tools");
    await page.waitForFunction(() => document.querySelectorAll("#flows tbody tr").length === 1, { timeout: WAIT });
    const totals = await page.$eval("#total-flows", (e) => e.textContent);
    if (!totals.startsWith("1 of ")) problems.push("totals of the filtered set: " + totals);
    if (before < 3) problems.push("expected at least 3 rows before filtering, got " + before);

    // The conversation: the call with its arguments, the result answering it, the prompt as text.
    await page.click("#flows tbody tr");
    await page.waitForFunction(() => {
      const h = document.querySelector("#detail h2");
      return h && h.textContent.includes("?tools") && document.querySelector("#detail .conversation");
    }, { timeout: WAIT });
    const detail = await page.$eval("#detail", (d) => ({
      text: d.textContent,
      scripts: d.querySelectorAll("script, img:not(.thumb)").length,
      calls: [...d.querySelectorAll(".tool-call")].map((c) => c.textContent),
      results: [...d.querySelectorAll(".role-tool")].map((c) => c.textContent),
      system: [...d.querySelectorAll(".role-system")].map((c) => c.textContent),
    }));
    if (!detail.calls.some((c) => c.includes("get_weather") && c.includes('"city": "Paris"'))) problems.push("no tool call get_weather with its arguments: " + JSON.stringify(detail.calls));
    if (!detail.results.some((c) => c.includes("get_weather") && c.includes("18 degrees and sunny"))) problems.push("no tool result answering get_weather: " + JSON.stringify(detail.results));
    if (!detail.system.some((c) => c.includes("You are a weather bot."))) problems.push("no system prompt");
    if (!detail.text.includes("Weather in Paris? <script>alert(1)</script>")) problems.push("the prompt is not shown as text");
    if (detail.scripts !== 0) problems.push("record text became markup: " + detail.scripts + " elements");
    await page.screenshot({ path: path.join(shots, "web-conversation.png") });

    // The list, unfiltered, for the README.
    await page.click("#detail .close");
    await page.$eval("#f-text", (e) => {
      e.value = "";
      e.dispatchEvent(new Event("input"));
    });
    await page.waitForFunction((n) => document.querySelectorAll("#flows tbody tr").length >= n, { timeout: WAIT }, before);
    await page.screenshot({ path: path.join(shots, "web-flows.png") });
    await new Promise((r) => setTimeout(r, 200)); // a late dialog or console error
  } finally {
    await browser.close();
  }
  if (problems.length) {
    console.log(problems.join("\n"));
    process.exit(1);
  }
  console.log("OK");
}

main().catch((e) => {
  console.log("FAILED: " + (e && e.stack ? e.stack : e));
  process.exit(1);
});
