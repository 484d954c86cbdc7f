// JsSIP in headless Chromium against sip-transport-ws (run by ../browser.rs).
//
//   node harness.js ws://127.0.0.1:PORT wss://localhost:PORT ...
//
// For each URL: a JsSIP UA connects over that WebSocket (subprotocol "sip"), sends OPTIONS
// (ua.sendOptions) and MESSAGE (ua.sendMessage), REGISTERs (ua.register()), then stops.
// Prints one JSON line with the status codes per URL; exits 0 when every one is 200.
//
// The browser is Debian's /usr/bin/chromium (or $CHROMIUM), driven by playwright-core; no
// browser is downloaded. JsSIP's npm package ships CommonJS only, so it is bundled for the
// page with esbuild at run time (in memory). The test certificate is accepted with
// --ignore-certificate-errors. Everything is bounded: 20 s per step, 90 s in all.
'use strict';

const esbuild = require('esbuild');
const { chromium } = require('playwright-core');

const STEP_MS = 20000;

// Runs inside the page (serialized by page.evaluate).
async function scenario({ url, stepMs }) {
  const within = (what, p) =>
    Promise.race([
      p,
      new Promise((_, reject) => setTimeout(() => reject(new Error(`${what} timed out`)), stepMs)),
    ]);
  const result = { url };
  const socket = new JsSIP.WebSocketInterface(url);
  const ua = new JsSIP.UA({
    sockets: [socket],
    uri: 'sip:alice@sip-transport.test',
    register: false,
    register_expires: 600,
    connection_recovery_min_interval: 2,
    connection_recovery_max_interval: 4,
  });
  const connected = new Promise((resolve, reject) => {
    ua.on('connected', resolve);
    ua.on('disconnected', (e) => reject(new Error(`disconnected: ${e && e.code}`)));
  });
  const statusOf = (send) =>
    new Promise((resolve) =>
      send({
        succeeded: (e) => resolve(e.response.status_code),
        failed: (e) => resolve(`failed: ${e.cause}${e.response ? ' ' + e.response.status_code : ''}`),
      }),
    );
  try {
    ua.start();
    await within('connect', connected);
    result.options = await within(
      'OPTIONS',
      statusOf((eventHandlers) => ua.sendOptions('sip:ping@sip-transport.test', null, { eventHandlers })),
    );
    result.message = await within(
      'MESSAGE',
      statusOf((eventHandlers) =>
        ua.sendMessage('sip:bob@sip-transport.test', 'hello over RFC 7118', { eventHandlers }),
      ),
    );
    result.register = await within(
      'REGISTER',
      new Promise((resolve) => {
        ua.on('registered', (e) => resolve(e.response.status_code));
        ua.on('registrationFailed', (e) => resolve(`failed: ${e.cause}`));
        ua.register();
      }),
    );
  } catch (e) {
    result.error = String(e);
  } finally {
    ua.stop();
  }
  return result;
}

async function main() {
  const urls = process.argv.slice(2);
  if (urls.length === 0) {
    console.error('usage: node harness.js WS_URL...');
    return 2;
  }
  const built = esbuild.buildSync({
    entryPoints: [require.resolve('jssip/lib/JsSIP.js')],
    bundle: true,
    format: 'iife',
    globalName: 'JsSIP',
    platform: 'browser',
    write: false,
    logLevel: 'silent',
  });
  const bundle = built.outputFiles[0].text;
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    timeout: STEP_MS,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--ignore-certificate-errors',
    ],
  });
  let ok = false;
  try {
    const context = await browser.newContext({ ignoreHTTPSErrors: true });
    const page = await context.newPage();
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') console.error(`[page ${m.type()}] ${m.text()}`);
    });
    await page.setContent('<!doctype html><title>JsSIP over sip-transport-ws</title>');
    await page.addScriptTag({ content: bundle });
    const results = [];
    for (const url of urls) {
      results.push(await page.evaluate(scenario, { url, stepMs: STEP_MS }));
    }
    console.log(JSON.stringify({ userAgent: await page.evaluate(() => navigator.userAgent), results }));
    ok = results.every((r) => r.options === 200 && r.message === 200 && r.register === 200);
  } finally {
    await browser.close();
  }
  return ok ? 0 : 1;
}

const deadline = setTimeout(() => {
  console.error('harness: 90 s deadline passed');
  process.exit(1);
}, 90000);
main().then(
  (code) => {
    clearTimeout(deadline);
    process.exit(code);
  },
  (e) => {
    console.error(`harness: ${e && e.stack ? e.stack : e}`);
    process.exit(1);
  },
);
