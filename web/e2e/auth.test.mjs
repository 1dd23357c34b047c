// End-to-end: the real hearth binary serving the embedded UI, driven by Debian's Chromium.
//
//   HEARTH_BIN     the server binary (default: ../target/debug/hearth relative to web/)
//   CHROMIUM_PATH  the browser (default: /usr/bin/chromium)
//
// Run with `npm run e2e` (node --test e2e/). Screenshots go to <repo>/artifacts/.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { ARTIFACTS, launchBrowser, openPage, startServer, stopProcess } from './support.mjs';

const ADMIN = { email: 'admin@example.com', name: 'Admin', password: 'correct-horse-battery-9' };

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
    browser = await launchBrowser();
    page = await openPage(browser, pageErrors, { height: 800 });
  });

  after(async () => {
    await browser?.close();
    await stopProcess(server, 'e2e-server.log');
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
    // No provider yet: the chat page says so.
    await page.getByText('No models are available yet.').waitFor();
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
    // The password is asked again: a wrong one is refused next to its field.
    await page.getByLabel('Your password', { exact: true }).fill('not-the-password-1');
    await page.getByRole('button', { name: 'Create key' }).click();
    await page.getByRole('alert').filter({ hasText: 'password' }).waitFor();
    await page.getByLabel('Your password', { exact: true }).fill(ADMIN.password);
    // Read only: the key can read but not write, and not reach the admin API.
    await page.getByLabel('Chat', { exact: true }).uncheck();
    await page.getByRole('button', { name: 'Create key' }).click();

    const keyBox = page.getByTestId('new-api-key');
    await keyBox.waitFor();
    apiKey = (await keyBox.innerText()).trim();
    assert.match(apiKey, /^hk_\S+$/, `unexpected key text: ${apiKey}`);
    const row = page.getByRole('row').filter({ hasText: 'e2e' });
    await row.waitFor();
    assert.match(await row.innerText(), /read/);

    const bearer = { Authorization: `Bearer ${apiKey}` };
    const res = await fetch(new URL('api/v1/me', server.url), { headers: bearer });
    assert.equal(res.status, 200, await res.clone().text());
    const me = await res.json();
    assert.equal(me.email, ADMIN.email);
    const list = await fetch(new URL('api/v1/conversations', server.url), { headers: bearer });
    assert.equal(list.status, 200, 'read scope reads');
    const write = await fetch(new URL('api/v1/conversations', server.url), {
      method: 'POST',
      headers: { ...bearer, 'Content-Type': 'application/json' },
      body: '{}',
    });
    assert.equal(write.status, 403, 'read scope cannot write');
    const admin = await fetch(new URL('api/v1/admin/users', server.url), { headers: bearer });
    assert.equal(admin.status, 403, 'no admin scope');
    // Its last use shows in the list after a reload.
    await page.reload();
    assert.doesNotMatch(await page.getByRole('row').filter({ hasText: 'e2e' }).innerText(), /Never\s+Never/);

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

  it('a password change can revoke every API key', async () => {
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Settings' }).click();
    await page.waitForURL('**/settings');
    const before = await fetch(new URL('api/v1/me', server.url), { headers: { Authorization: `Bearer ${apiKey}` } });
    assert.equal(before.status, 200, 'the key works before');
    await page.getByLabel('Current password', { exact: true }).fill(ADMIN.password);
    await page.getByLabel('New password', { exact: true }).fill('another-horse-battery-10');
    await page.getByLabel('Also revoke all my API keys').check();
    await page.getByRole('button', { name: 'Change password' }).click();
    await page.getByText('Your password was changed.').waitFor();
    // The key list follows: the revoked key is gone from it.
    await page.getByText('No API keys yet', { exact: false }).waitFor();
    await page.screenshot({ path: path.join(ARTIFACTS, 'e2e-password-keys.png') });
    const after = await fetch(new URL('api/v1/me', server.url), { headers: { Authorization: `Bearer ${apiKey}` } });
    assert.equal(after.status, 401, 'the key was revoked');
    // This session stays signed in.
    await page.reload();
    await expectSignedIn();
  });

  it('raised no uncaught errors in the page', () => {
    assert.deepEqual(pageErrors, []);
  });
});
