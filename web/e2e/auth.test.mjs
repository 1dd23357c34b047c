// End-to-end: the real hearth binary serving the embedded UI, driven by Debian's Chromium.
//
//   HEARTH_BIN     the server binary (default: ../target/debug/hearth relative to web/)
//   CHROMIUM_PATH  the browser (default: /usr/bin/chromium)
//
// Run with `npm run e2e` (node --test e2e/). Screenshots go to <repo>/artifacts/.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const WEB_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const REPO_DIR = path.resolve(WEB_DIR, '..');
const ARTIFACTS = path.join(REPO_DIR, 'artifacts');
const HEARTH_BIN = process.env.HEARTH_BIN
  ? path.resolve(process.env.HEARTH_BIN)
  : path.resolve(WEB_DIR, '../target/debug/hearth');
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const READY_TIMEOUT_MS = 60_000;
const READY_LINE = /Hearth is ready at (http:\/\/127\.0\.0\.1:\d+\/)/;

const ADMIN = { email: 'admin@example.com', name: 'Admin', password: 'correct-horse-battery-9' };

/** Starts the server on a free port in a fresh data dir; resolves once it prints its ready line. */
async function startServer() {
  if (!existsSync(HEARTH_BIN)) {
    throw new Error(`hearth binary not found at ${HEARTH_BIN}: build it (cargo build) or set HEARTH_BIN`);
  }
  const dataDir = await mkdtemp(path.join(tmpdir(), 'hearth-e2e-'));
  const child = spawn(HEARTH_BIN, ['serve', '--listen', '127.0.0.1:0', '--data-dir', dataDir], {
    env: { ...process.env, HEARTH_LOG__FORMAT: 'pretty' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const log = [];
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk) => log.push(chunk));

  const url = await new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stdout });
    const timer = setTimeout(() => {
      reject(new Error(`no ready line within ${READY_TIMEOUT_MS} ms; output so far:\n${log.join('')}`));
    }, READY_TIMEOUT_MS);
    lines.on('line', (line) => {
      log.push(line + '\n');
      const match = READY_LINE.exec(line);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    });
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`hearth exited early (code ${code}, signal ${signal}); output:\n${log.join('')}`));
    });
  });
  return { child, dataDir, url, log };
}

async function stopServer(server) {
  if (!server) return;
  const { child, dataDir, log } = server;
  if (child.exitCode === null && child.signalCode === null) {
    const exited = once(child, 'exit');
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  }
  await mkdir(ARTIFACTS, { recursive: true });
  await writeFile(path.join(ARTIFACTS, 'e2e-server.log'), log.join(''));
  await rm(dataDir, { recursive: true, force: true });
}

describe('auth flow against the real server', { timeout: 180_000 }, () => {
  /** @type {Awaited<ReturnType<typeof startServer>> | undefined} */
  let server;
  /** @type {import('playwright-core').Browser | undefined} */
  let browser;
  /** @type {import('playwright-core').Page} */
  let page;
  const pageErrors = [];
  let apiKey = '';

  before(async () => {
    server = await startServer();
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    page = await context.newPage();
    page.setDefaultTimeout(15_000);
    page.on('pageerror', (err) => pageErrors.push(err.message));
    await mkdir(ARTIFACTS, { recursive: true });
  });

  after(async () => {
    await browser?.close();
    await stopServer(server);
  });

  const currentUser = () => page.getByTestId('current-user');

  /** Waits until the user menu shows the admin, i.e. the app is signed in. */
  async function expectSignedIn() {
    await currentUser().filter({ hasText: ADMIN.email }).waitFor();
    const text = await currentUser().innerText();
    assert.match(text, /Admin/);
    assert.match(text, /admin@example\.com/);
  }

  it('first visit lands on setup and creates the admin', async () => {
    await page.goto(server.url);
    await page.waitForURL('**/setup');
    await page.getByRole('heading', { name: 'Create the admin account' }).waitFor();
    assert.equal(await page.title(), 'Hearth');

    await page.getByLabel('Email', { exact: true }).fill(ADMIN.email);
    await page.getByLabel('Name', { exact: true }).fill(ADMIN.name);
    await page.getByLabel('Password', { exact: true }).fill(ADMIN.password);
    await page.getByRole('button', { name: 'Create admin' }).click();

    await page.waitForURL('**/chat');
    await expectSignedIn();
    await page.getByText('Coming soon').waitFor();
  });

  it('reloading keeps the session (refresh cookie)', async () => {
    await page.reload();
    await expectSignedIn();
    assert.match(new URL(page.url()).pathname, /^\/chat$/);
  });

  it('creates an API key in Settings that authenticates API calls', async () => {
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Settings' }).click();
    await page.waitForURL('**/settings');

    await page.getByLabel('Key name', { exact: true }).fill('e2e');
    await page.getByRole('button', { name: 'Create key' }).click();

    const keyBox = page.getByTestId('new-api-key');
    await keyBox.waitFor();
    apiKey = (await keyBox.innerText()).trim();
    assert.match(apiKey, /^hk_\S+$/, `unexpected key text: ${apiKey}`);
    await page.getByRole('row').filter({ hasText: 'e2e' }).waitFor();

    const res = await fetch(new URL('api/v1/me', server.url), { headers: { Authorization: `Bearer ${apiKey}` } });
    assert.equal(res.status, 200, await res.clone().text());
    const me = await res.json();
    assert.equal(me.email, ADMIN.email);

    await page.screenshot({ path: path.join(ARTIFACTS, 'e2e-settings.png') });
  });

  it('logging out goes to /login and a reload stays there', async () => {
    await page.getByRole('button', { name: 'Log out' }).click();
    await page.waitForURL('**/login');
    await page.getByRole('button', { name: 'Log in' }).waitFor();

    await page.reload();
    await page.getByRole('button', { name: 'Log in' }).waitFor();
    assert.equal(new URL(page.url()).pathname, '/login');
    assert.equal(await currentUser().count(), 0);
  });

  it('shows the server error for a wrong password', async () => {
    await page.getByLabel('Email', { exact: true }).fill(ADMIN.email);
    await page.getByLabel('Password', { exact: true }).fill('not-the-password-1');
    await page.getByRole('button', { name: 'Log in' }).click();
    const alert = page.getByRole('alert');
    await alert.waitFor();
    assert.notEqual((await alert.innerText()).trim(), '');
    assert.equal(new URL(page.url()).pathname, '/login');
  });

  it('logs in again with the same credentials', async () => {
    await page.getByLabel('Email', { exact: true }).fill(ADMIN.email);
    await page.getByLabel('Password', { exact: true }).fill(ADMIN.password);
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.waitForURL('**/chat');
    await expectSignedIn();
  });

  it('lists the admin in Admin > Users', async () => {
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Admin' }).click();
    await page.waitForURL('**/admin/users');
    const row = page.getByRole('row').filter({ hasText: ADMIN.email });
    await row.waitFor();
    const text = await row.innerText();
    assert.match(text, /Admin/);
    assert.match(text, /admin/);
    assert.match(text, /Active/);

    await page.screenshot({ path: path.join(ARTIFACTS, 'e2e-users.png') });
  });

  it('raised no uncaught errors in the page', () => {
    assert.deepEqual(pageErrors, []);
  });
});
