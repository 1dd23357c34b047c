// End-to-end: a fresh server whose models folder holds only the fetched reference models
// (scripts/fetch-models.sh; HEARTH_TEST_MODELS_DIR names the folder) answers in the browser with
// no provider configured: the built-in model is the one offered.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import { ARTIFACTS, createFirstAdmin, launchBrowser, openPage, startServer, stopProcess } from './support.mjs';

const MODELS = process.env.HEARTH_TEST_MODELS_DIR || path.join(homedir(), '.cache/hearth/models');
const CHAT = 'SmolLM2-135M-Instruct.Q4_1';
const ADMIN = { email: 'admin@example.com', name: 'Admin', password: 'correct-horse-battery-9' };

describe('the built-in model in the browser', { timeout: 300_000 }, () => {
  let server;
  let browser;
  let page;
  const pageErrors = [];

  before(async () => {
    assert.ok(
      existsSync(path.join(MODELS, `${CHAT}.gguf`)),
      `the reference models are not in ${MODELS}: run scripts/fetch-models.sh ${MODELS} (make test does)`,
    );
    server = await startServer({
      HEARTH_LOCAL__MODELS_DIR: MODELS,
      HEARTH_LOCAL__PARALLEL: '2',
      HEARTH_LOCAL__CONTEXT_PER_SEQUENCE: '1024',
    });
    browser = await launchBrowser();
    page = await openPage(browser, pageErrors, { height: 860, timeout: 30000 });
  });

  after(async () => {
    await browser?.close();
    await stopProcess(server, 'e2e-local-server.log');
  });

  it('answers a first question with nothing configured', async () => {
    await createFirstAdmin(page, server.url, ADMIN);

    const picker = page.getByLabel('Model', { exact: true });
    await picker.locator('option', { hasText: CHAT }).waitFor({ state: 'attached' });
    assert.equal(await picker.inputValue(), CHAT, 'the only model is picked');

    await page.getByLabel('Message', { exact: true }).fill('What is the capital of France?');
    await page.getByRole('button', { name: 'Send', exact: true }).click();
    await page.waitForURL(/\/chat\/[0-9a-f-]{36}$/);
    // CPU inference: the whole answer (at most the 1,024-token context) may take a while.
    await page.getByRole('button', { name: 'Stop', exact: true }).waitFor({ state: 'hidden', timeout: 150_000 });
    await page.getByRole('button', { name: 'Send', exact: true }).waitFor();
    const answer = page.locator('[data-testid=message][data-role=assistant]').last();
    assert.ok((await answer.innerText()).trim().length > 0, 'the answer has text');
    await page.screenshot({ path: path.join(ARTIFACTS, 'e2e-local-chat.png') });
    assert.deepEqual(pageErrors, []);
  });

  it('lists the Built-in provider for the admin', async () => {
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Admin' }).click();
    await page.getByRole('navigation', { name: 'Admin' }).getByRole('link', { name: 'Providers' }).click();
    const row = page.getByRole('row').filter({ hasText: 'Built-in' });
    await row.waitFor();
    assert.match(await row.innerText(), /Local \(built-in\)/);
  });
});
