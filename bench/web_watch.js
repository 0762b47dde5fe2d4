// bench/web_watch.js: keeps the web view open in headless Debian chromium (puppeteer-core) so a
// benchmark measures the proxy with a browser attached: the page loads, follows the event
// stream and redraws its list and charts as flows arrive, until this process is stopped.
//
//   NODE_PATH=~/.cache/llm_proxy/test-node/node_modules node bench/web_watch.js WEB_URL
//
// Prints "ready" once the page has loaded its flows and opened the event stream, then, when
// stopped (SIGTERM or SIGINT), the number of rows the page shows.
"use strict";
const puppeteer = require("puppeteer-core");

async function main() {
  const url = process.argv[2];
  const browser = await puppeteer.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    // This process decides when the browser goes (puppeteer would close it on our SIGTERM
    // before the page could be asked how many rows it shows).
    handleSIGTERM: false,
    handleSIGINT: false,
    args: ["--no-sandbox", "--disable-gpu", "--no-proxy-server"],
  });
  const page = await browser.newPage();
  await page.setViewport({ width: 1400, height: 900 });
  page.on("pageerror", (e) => console.error("page error: " + e.message));
  await page.goto(url, { waitUntil: "load" });
  await page.waitForSelector("body[data-ready=true]", { timeout: 30000 });
  console.log("ready");
  const stop = async () => {
    const rows = await page.$$eval("#flows tbody tr", (r) => r.length).catch(() => -1);
    console.log("rows " + rows);
    await browser.close();
    process.exit(0);
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
