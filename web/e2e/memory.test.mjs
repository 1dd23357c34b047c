// End-to-end: Settings › Memory against the real server. Opens the page from Settings, adds
// "I prefer metric units" (checked over the API too), edits it inline, reloads, deletes it, and
// sees a too-long memory refused before it is sent.
//
//   HEARTH_BIN, CHROMIUM_PATH: see support.mjs.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { apiSession, ARTIFACTS, createFirstAdmin, launchBrowser, openPage, startServer, stopProcess } from './support.mjs';

const ADMIN = { email: 'admin@example.com', name: 'Admin', password: 'correct-horse-battery-9' };
const FIRST = 'I prefer metric units';
const EDITED = 'I prefer metric units and a 24-hour clock';

describe('Settings › Memory', { timeout: 180_000 }, () => {
  /** @type {Awaited<ReturnType<typeof startServer>> | undefined} */
  let server;
  /** @type {import('playwright-core').Browser | undefined} */
  let browser;
  /** @type {import('playwright-core').Page} */
  let page;
  /** @type {Awaited<ReturnType<typeof apiSession>>} */
  let api;
  const pageErrors = [];

  before(async () => {
    server = await startServer();
    browser = await launchBrowser();
    page = await openPage(browser, pageErrors);
  });

  after(async () => {
    await browser?.close();
    await stopProcess(server, 'e2e-memory-server.log');
  });

  const rows = () => page.getByTestId('memory-row');

  it('opens Memory from Settings', async () => {
    await createFirstAdmin(page, server.url, ADMIN);
    api = await apiSession(server.url, ADMIN);
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Settings' }).click();
    await page.waitForURL('**/settings');
    await page.getByRole('navigation', { name: 'Settings' }).getByRole('link', { name: 'Memory' }).click();
    await page.waitForURL('**/settings/memory');
    await page.getByRole('heading', { name: 'Memory', level: 1 }).waitFor();
    await page.getByText('Hearth remembers facts you ask it to remember').waitFor();
    await page.getByText('No memories yet.').waitFor();
  });

  it('adds a memory', async () => {
    await page.getByLabel('New memory', { exact: true }).fill(FIRST);
    await page.getByRole('button', { name: 'Add memory' }).click();
    const row = rows().filter({ hasText: FIRST });
    await row.waitFor();
    await row.getByText('Added by you', { exact: true }).waitFor();
    assert.equal(await page.getByLabel('New memory', { exact: true }).inputValue(), '', 'the form is cleared');
    const stored = await api.call('GET', '/api/v1/memories');
    assert.deepEqual(
      stored.map((m) => [m.text, m.source]),
      [[FIRST, 'user']],
    );
  });

  it('edits it inline, and the change is kept', async () => {
    const row = rows().filter({ hasText: FIRST });
    await row.getByRole('button', { name: 'Edit', exact: true }).click();
    const editor = page.getByLabel('Edit memory', { exact: true });
    assert.equal(await editor.inputValue(), FIRST);
    await editor.fill(EDITED);
    await page.getByRole('button', { name: 'Save', exact: true }).click();
    await rows().getByTestId('memory-text').filter({ hasText: EDITED }).waitFor();
    await editor.waitFor({ state: 'detached' });
    await page.screenshot({ path: path.join(ARTIFACTS, 'e2e-memory.png'), fullPage: true, animations: 'disabled' });

    await page.reload();
    await rows().getByTestId('memory-text').filter({ hasText: EDITED }).waitFor();
    assert.equal(await rows().count(), 1);
  });

  it('refuses a memory over 2000 characters before sending it', async () => {
    await page.getByLabel('New memory', { exact: true }).fill('x'.repeat(2001));
    await page.getByRole('button', { name: 'Add memory' }).click();
    await page.getByRole('alert').filter({ hasText: 'at most 2000 characters' }).waitFor();
    assert.equal(await rows().count(), 1);
    await page.getByLabel('New memory', { exact: true }).fill('');
  });

  it('deletes it after a confirmation', async () => {
    const row = rows().filter({ hasText: EDITED });
    await row.getByRole('button', { name: 'Delete', exact: true }).click();
    await row.getByText('Delete this memory?').waitFor();
    await row.getByRole('button', { name: 'Keep', exact: true }).click();
    await row.getByRole('button', { name: 'Delete', exact: true }).click();
    await row.getByRole('button', { name: 'Yes, delete' }).click();
    await page.getByText('No memories yet.').waitFor();
    assert.deepEqual(await api.call('GET', '/api/v1/memories'), []);
    assert.deepEqual(pageErrors, []);
  });
});
