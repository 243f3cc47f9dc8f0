// Drives the admin page in a real Chromium (the system's, through playwright-core) and prints
// what it saw, one JSON object per line, for tests/api/admin.rs to check:
//
//   node admin_page.mjs <base url> <admin token> <device,device,…> <preferred master> [screenshot]
//
// It opens /admin, is refused with a wrong token, opens with the right one, waits until every
// named device is listed, elects the preferred master with the page's form, waits until the
// page shows it as master, and takes the screenshot. Every step has a timeout.
import { chromium } from 'playwright-core';

const [base, token, devices, preferred, screenshot] = process.argv.slice(2);
const STEP_MS = 15000;
const say = (object) => console.log(JSON.stringify(object));

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  // Root in CI: Chromium's sandbox needs an unprivileged user.
  args: ['--no-sandbox'],
});
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  page.setDefaultTimeout(STEP_MS);
  const urls = [];
  const outside = [];
  page.on('request', (request) => {
    urls.push(request.url());
    if (!request.url().startsWith(base)) outside.push(request.url());
  });
  // Script errors, and every answer that was not a success (the console's own line for a
  // failed load is left out: `failed` has it, with its address).
  const problems = [];
  const failed = [];
  page.on('pageerror', (error) => problems.push(String(error)));
  page.on('console', (message) => {
    if (message.type() === 'error' && !message.text().startsWith('Failed to load resource')) problems.push(message.text());
  });
  page.on('response', (response) => {
    if (response.status() >= 400) failed.push({ path: new URL(response.url()).pathname, status: response.status() });
  });

  await page.goto(`${base}/admin`);
  say({ step: 'opened', url: page.url(), login: await page.isVisible('#login-form') });

  await page.fill('#token', 'not-the-token');
  await page.click('#login-form button');
  await page.waitForFunction(() => document.getElementById('login-error').textContent.length > 0);
  say({ step: 'refused', error: await page.textContent('#login-error') });

  await page.fill('#token', token);
  await page.click('#login-form button');
  await page.waitForSelector('#live.on');
  const wanted = devices.split(',');
  for (const id of wanted) await page.waitForSelector(`#devices tr[data-device="${id}"]`);
  const rows = await page.$$eval('#devices tbody tr', (trs) => trs.map((tr) => ({
    device: tr.dataset.device,
    role: tr.querySelector('.role').textContent,
    active: tr.querySelector('.active').textContent,
  })));
  say({ step: 'devices', rows, master: await page.textContent('#master') });

  await page.selectOption('#preferred', preferred);
  await page.click('#elect');
  await page.waitForFunction((id) => document.getElementById('master').textContent === id, preferred);
  await page.waitForFunction(() => document.getElementById('action-result').textContent.startsWith('Master is now'));
  say({
    step: 'elected',
    master: await page.textContent('#master'),
    result: await page.textContent('#action-result'),
    elections: await page.$$eval('#elections tbody tr', (trs) => trs.length),
  });

  // Enrol a device: its token is shown once, with the QR code to scan.
  await page.fill('#enrol-device', 'kiosk-9');
  await page.click('#enrol');
  await page.waitForFunction(() => document.getElementById('enrol-token').textContent.startsWith('dst_'));
  say({
    step: 'enrolled',
    token: await page.textContent('#enrol-token'),
    qr: await page.$eval('#enrol-qr', (img) => img.complete && img.naturalWidth > 0 && img.src.startsWith('data:image/svg+xml')),
  });

  if (screenshot) await page.screenshot({ path: screenshot, fullPage: true });
  say({
    step: 'done',
    requests: urls.length,
    token_in_urls: urls.filter((u) => u.includes(token)).length,
    outside,
    problems,
    failed,
  });
} finally {
  await browser.close();
}
