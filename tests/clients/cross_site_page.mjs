// A page on another site, in a real Chromium (the system's, through playwright-core), tries what
// an attacker's page on the shop's network would: open /ws and Socket.IO's websocket, read a REST
// answer, and send a text/plain POST to /sync/push (a "simple request", sent without asking).
// The same page on the server's own origin runs too, to show the page works where it is allowed.
// Prints one JSON line per origin for tests/api/admin.rs:
//
//   node cross_site_page.mjs <base url, http://127.0.0.1:PORT>
//
// The other site is a real web server this script starts on loopback (another port: another
// origin), so the browser treats its page as it would a page on the shop's network, and none of
// its own network policies stands in for the server's check. The own page is the server's own
// /admin/ page.
import { createServer } from 'node:http';
import { chromium } from 'playwright-core';

const [base] = process.argv.slice(2);
const STEP_MS = 15000;

const site = createServer((request, response) => {
  response.writeHead(200, { 'content-type': 'text/html' });
  response.end('<!doctype html><title>another site</title><p>nothing to see</p>');
});
await new Promise((resolve) => site.listen(0, '127.0.0.1', resolve));
const other = `http://127.0.0.1:${site.address().port}`;

// What the page runs: each attempt's outcome, by name.
const attempts = async ({ base, wsBase }) => {
  const socket = (url) => new Promise((resolve) => {
    const ws = new WebSocket(url);
    const timer = setTimeout(() => resolve('no answer'), 5000);
    ws.onopen = () => { clearTimeout(timer); ws.close(); resolve('open'); };
    ws.onerror = () => { clearTimeout(timer); resolve('refused'); };
  });
  const outcome = {};
  outcome.ws = await socket(`${wsBase}/ws`);
  outcome.socketio = await socket(`${wsBase}/socket.io/?EIO=4&transport=websocket`);
  try {
    const response = await fetch(`${base}/cashier/devices`);
    outcome.read = `read ${response.status}`;
  } catch (error) {
    outcome.read = 'refused';
  }
  const push = { device_id: 'intruder', events: [{ id: 'x1', type: 'device_added', deviceId: 'intruder-till' }] };
  try {
    await fetch(`${base}/sync/push`, {
      method: 'POST', mode: 'no-cors', headers: { 'Content-Type': 'text/plain' }, body: JSON.stringify(push),
    });
    outcome.push = 'sent';
  } catch (error) {
    outcome.push = 'refused';
  }
  return outcome;
};

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  // Root in CI: Chromium's sandbox needs an unprivileged user.
  args: ['--no-sandbox'],
});
try {
  const context = await browser.newContext();
  for (const [name, url] of [['other', `${other}/`], ['own', `${base}/admin/`]]) {
    const page = await context.newPage();
    page.setDefaultTimeout(STEP_MS);
    await page.goto(url);
    const outcome = await page.evaluate(attempts, { base, wsBase: base.replace(/^http/, 'ws') });
    console.log(JSON.stringify({ step: name, origin: await page.evaluate(() => location.origin), ...outcome }));
    await page.close();
  }
} finally {
  await browser.close();
  site.close();
}
