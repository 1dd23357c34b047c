// Shared by the end-to-end tests: start the real binaries on free ports, launch Chromium, and
// keep their logs as artifacts. Not a test file itself (node --test only runs *.test.mjs here).
//
//   HEARTH_BIN     the server binary (default: ../target/debug/hearth relative to web/)
//   FAKE_LLM_BIN   the scripted LLM upstream (default: ../target/debug/hearth-fake-llm)
//   CHROMIUM_PATH  the browser (default: /usr/bin/chromium)

import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const WEB_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const REPO_DIR = path.resolve(WEB_DIR, '..');
export const ARTIFACTS = path.join(REPO_DIR, 'artifacts');
export const HEARTH_BIN = process.env.HEARTH_BIN
  ? path.resolve(process.env.HEARTH_BIN)
  : path.resolve(WEB_DIR, '../target/debug/hearth');
export const FAKE_LLM_BIN = process.env.FAKE_LLM_BIN
  ? path.resolve(process.env.FAKE_LLM_BIN)
  : path.resolve(WEB_DIR, '../target/debug/hearth-fake-llm');
export const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

const READY_TIMEOUT_MS = 60_000;
const HEARTH_READY = /Hearth is ready at (http:\/\/127\.0\.0\.1:\d+\/)/;
const FAKE_READY = /fake LLM upstream: OpenAI at (http:\/\/127\.0\.0\.1:\d+)\/v1\b/;

/**
 * Spawns `bin` and resolves with the first match of `ready` on its stdout, collecting all output
 * in `log`. Rejects if the process exits or stays silent for too long.
 */
async function spawnUntilReady(bin, args, env, ready, what) {
  if (!existsSync(bin)) throw new Error(`${what} binary not found at ${bin}: build it (cargo build) or set its env variable`);
  const child = spawn(bin, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const log = [];
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk) => log.push(chunk));
  const match = await new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stdout });
    const timer = setTimeout(() => {
      reject(new Error(`${what}: no ready line within ${READY_TIMEOUT_MS} ms; output so far:\n${log.join('')}`));
    }, READY_TIMEOUT_MS);
    lines.on('line', (line) => {
      log.push(line + '\n');
      const found = ready.exec(line);
      if (found) {
        clearTimeout(timer);
        resolve(found);
      }
    });
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${what} exited early (code ${code}, signal ${signal}); output:\n${log.join('')}`));
    });
  });
  return { child, log, match };
}

/** Starts hearth on a free port in a fresh data dir; `url` ends in a slash. */
export async function startServer(env = {}) {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'hearth-e2e-'));
  try {
    const { child, log, match } = await spawnUntilReady(
      HEARTH_BIN,
      ['serve', '--listen', '127.0.0.1:0', '--data-dir', dataDir],
      { HEARTH_LOG__FORMAT: 'pretty', ...env },
      HEARTH_READY,
      'hearth',
    );
    const server = { child, dataDir, url: match[1], log };
    const shell = await fetch(server.url).catch((err) => err);
    if (!(shell instanceof Response) || shell.status !== 200) {
      await stopProcess(server, 'e2e-server-not-ready.log');
      // Debug builds read web/dist from disk, but rust-embed fixes the folder's canonical path at
      // compile time: a binary built while web/dist was missing never serves it.
      throw new Error(
        `hearth at ${server.url} does not serve the web UI (${shell instanceof Response ? `HTTP ${shell.status}` : shell}): ` +
          'run `npm run build` in web/, and rebuild hearth if web/dist did not exist when it was built',
      );
    }
    return server;
  } catch (err) {
    await rm(dataDir, { recursive: true, force: true });
    throw err;
  }
}

/** Starts the fake LLM upstream on a free port; `base` has no trailing slash, `openaiUrl` is `base/v1`. */
export async function startFakeLlm() {
  const { child, log, match } = await spawnUntilReady(FAKE_LLM_BIN, ['127.0.0.1:0'], {}, FAKE_READY, 'hearth-fake-llm');
  return { child, log, base: match[1], openaiUrl: `${match[1]}/v1` };
}

/** Stops a process started above (SIGTERM, then SIGKILL after 10 s) and saves its log. */
export async function stopProcess(proc, logName) {
  if (!proc) return;
  const { child, log } = proc;
  if (child.exitCode === null && child.signalCode === null) {
    const exited = once(child, 'exit');
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  }
  await mkdir(ARTIFACTS, { recursive: true });
  await writeFile(path.join(ARTIFACTS, logName), log.join(''));
  if (proc.dataDir) await rm(proc.dataDir, { recursive: true, force: true });
}

/** Debian's Chromium, headless. */
export function launchBrowser() {
  return chromium.launch({
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
}

/**
 * A new page in `browser` (1280 wide, `height` tall) whose uncaught errors are pushed to
 * `pageErrors`; also makes sure the artifacts folder exists for screenshots.
 */
export async function openPage(browser, pageErrors, { height = 860, timeout = 15_000 } = {}) {
  const context = await browser.newContext({ viewport: { width: 1280, height } });
  const page = await context.newPage();
  page.setDefaultTimeout(timeout);
  page.on('pageerror', (err) => pageErrors.push(err.message));
  await mkdir(ARTIFACTS, { recursive: true });
  return page;
}

/** Creates the first (admin) account on the first-run page of `url` and waits for the chat page. */
export async function createFirstAdmin(page, url, { email, name, password }) {
  await page.goto(url);
  await page.waitForURL('**/setup');
  await page.getByLabel('Email', { exact: true }).fill(email);
  await page.getByLabel('Name', { exact: true }).fill(name);
  await page.getByLabel('Password', { exact: true }).fill(password);
  await page.getByRole('button', { name: 'Create admin' }).click();
  await page.waitForURL('**/chat');
}

/** The built-in embedder the knowledge tests index with. */
export const EMBEDDER = 'all-MiniLM-L6-v2';

/**
 * A models folder holding only a link to the built-in embedder (`all-MiniLM-L6-v2` from
 * `HEARTH_TEST_MODELS_DIR`, default ~/.cache/hearth/models), so the server does not load a chat
 * model too. Returns its path; remove it after the server stopped.
 */
export async function embedderOnlyModelsDir() {
  const models = process.env.HEARTH_TEST_MODELS_DIR || path.join(homedir(), '.cache/hearth/models');
  const embedder = path.join(models, EMBEDDER);
  if (!existsSync(path.join(embedder, 'model.safetensors'))) {
    throw new Error(`the reference embedder is not in ${models}: run scripts/fetch-models.sh ${models} (make test does)`);
  }
  const dir = await mkdtemp(path.join(tmpdir(), 'hearth-e2e-models-'));
  await symlink(embedder, path.join(dir, EMBEDDER), 'dir');
  return dir;
}

/**
 * Signs in over the API with Node's fetch and returns a tiny client with that bearer token, for
 * setting up fixtures faster than through the UI. `call` throws on an unexpected status.
 */
export async function apiSession(baseUrl, { email, password }) {
  const login = await fetch(new URL('api/v1/auth/login', baseUrl), {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ email, password }),
  });
  if (login.status !== 200) throw new Error(`login: HTTP ${login.status} ${await login.text()}`);
  const { access_token: token } = await login.json();
  const call = async (method, route, body, expected = [200, 201, 204]) => {
    const init = { method, headers: { Authorization: `Bearer ${token}` } };
    if (body instanceof FormData) init.body = body;
    else if (body !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    const res = await fetch(new URL(route.replace(/^\//, ''), baseUrl), init);
    const text = await res.text();
    if (!expected.includes(res.status)) throw new Error(`${method} ${route}: HTTP ${res.status} ${text}`);
    return text ? JSON.parse(text) : undefined;
  };
  return { token, call };
}
