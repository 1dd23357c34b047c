// End-to-end: knowledge in chat. The real server with the built-in embedder only (as
// knowledge.test.mjs) and the scripted fake LLM upstream (as chat.test.mjs); fixtures (provider,
// knowledge base, document) are made over the API, the rest in Chromium.
//
// Attaches a knowledge base to a new chat from the "Knowledge" checklist, has the fake answer
// "Yeast makes bread rise [1].", opens the passage from the citation button and from the Sources
// list, reloads (the stored answer keeps its sources), exports the conversation into the base,
// and detaches the base.
//
//   HEARTH_BIN, FAKE_LLM_BIN, CHROMIUM_PATH, HEARTH_TEST_MODELS_DIR: see support.mjs.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import {
  apiSession,
  ARTIFACTS,
  createFirstAdmin,
  embedderOnlyModelsDir,
  launchBrowser,
  openPage,
  startFakeLlm,
  startServer,
  stopProcess,
} from './support.mjs';

const ADMIN = { email: 'admin@example.com', name: 'Admin', password: 'correct-horse-battery-9' };
/** Parsing, chunking and embedding on a CPU, possibly a busy one. */
const INDEXED_WITHIN_MS = 120_000;
const KB_NAME = 'Bread notes';
const BREAD_TXT = `Bread is made from flour, water, salt and yeast. The yeast ferments the sugars in the dough
and gives off carbon dioxide, which makes the dough rise. Knead it until smooth, let it rise for an
hour or two, shape the loaf, and bake it in a hot oven until the crust is golden.
`;
const ANSWER = 'Yeast makes bread rise [1].';

describe('knowledge in chat: attach, cite, export', { timeout: 300_000 }, () => {
  /** @type {Awaited<ReturnType<typeof startServer>> | undefined} */
  let server;
  /** @type {Awaited<ReturnType<typeof startFakeLlm>> | undefined} */
  let fake;
  /** @type {import('playwright-core').Browser | undefined} */
  let browser;
  /** @type {import('playwright-core').Page} */
  let page;
  let modelsDir;
  /** @type {Awaited<ReturnType<typeof apiSession>>} */
  let api;
  let kbId;
  let conversationId;
  const pageErrors = [];

  before(async () => {
    modelsDir = await embedderOnlyModelsDir();
    fake = await startFakeLlm();
    server = await startServer({ HEARTH_LOCAL__MODELS_DIR: modelsDir });
    browser = await launchBrowser();
    page = await openPage(browser, pageErrors, { height: 1000, timeout: 30_000 });
  });

  after(async () => {
    await browser?.close();
    await stopProcess(server, 'e2e-citations-server.log');
    await stopProcess(fake, 'e2e-citations-fake-llm.log');
    if (modelsDir) await rm(modelsDir, { recursive: true, force: true });
  });

  /** Queues what the fake upstream does on its next request. */
  async function pushScript(script) {
    const res = await fetch(`${fake.base}/_scripts`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(script),
    });
    assert.equal(res.status, 204, await res.text());
  }

  const answers = () => page.locator('[data-testid=message][data-role=assistant]');
  const lastAnswer = () => answers().last();
  const header = () => page.locator('.chat-header');

  async function waitIdle() {
    await page.getByRole('button', { name: 'Stop', exact: true }).waitFor({ state: 'hidden' });
    await page.getByRole('button', { name: 'Send', exact: true }).waitFor();
  }

  it('sets up the admin, the fake provider and an indexed knowledge base', async () => {
    await createFirstAdmin(page, server.url, ADMIN);
    api = await apiSession(server.url, ADMIN);

    const provider = await api.call('POST', '/api/v1/admin/providers', { kind: 'openai', name: 'fake', base_url: fake.openaiUrl });
    const synced = await api.call('POST', `/api/v1/admin/providers/${provider.id}/sync`, {});
    assert.ok(synced.some((m) => m.name === 'fake-chat'), 'the fake offers fake-chat');
    // The chat page lists models when it opens.
    await page.reload();
    await page.getByLabel('Model', { exact: true }).locator('option[value="fake-chat"]').waitFor({ state: 'attached' });

    const kb = await api.call('POST', '/api/v1/knowledge-bases', { name: KB_NAME, description: 'Baking' });
    kbId = kb.id;
    const form = new FormData();
    form.append('files', new Blob([BREAD_TXT], { type: 'text/plain' }), 'bread.txt');
    const upload = await api.call('POST', `/api/v1/knowledge-bases/${kbId}/documents`, form);
    assert.equal(upload.documents.length, 1, JSON.stringify(upload));

    // The knowledge page follows ingest over the WebSocket: its row turning "indexed" is the signal.
    await page.goto(new URL(`/knowledge/${kbId}`, server.url).href);
    await page
      .locator('[data-testid=document-row][data-status=indexed]')
      .filter({ hasText: 'bread.txt' })
      .waitFor({ timeout: INDEXED_WITHIN_MS });
    await page.goto(new URL('/chat', server.url).href);
    await page.getByLabel('Model', { exact: true }).locator('option[value="fake-chat"]').waitFor({ state: 'attached' });
  });

  it('attaches the knowledge base to a new chat', async () => {
    // The chat page listed the bases before this one existed: opening the checklist lists again.
    await page.getByLabel('Model', { exact: true }).selectOption('fake-chat');
    const knowledge = header().getByRole('button', { name: 'Knowledge', exact: true });
    await knowledge.click();
    const checklist = page.getByRole('dialog', { name: 'Knowledge bases' });
    const box = checklist.getByRole('checkbox', { name: new RegExp(KB_NAME) });
    await box.check();
    await page.getByTestId('kb-chip').filter({ hasText: KB_NAME }).waitFor();
    await page.screenshot({ path: path.join(ARTIFACTS, 'e2e-knowledge-picker.png'), animations: 'disabled' });
    await page.keyboard.press('Escape');
    await checklist.waitFor({ state: 'detached' });
    assert.equal(await knowledge.getAttribute('aria-expanded'), 'false');
  });

  it('answers with a citation that opens the passage', async () => {
    await pushScript({ steps: [{ text: ANSWER }] });
    await page.getByLabel('Message', { exact: true }).fill('Why does bread dough rise?');
    await page.getByRole('button', { name: 'Send', exact: true }).click();
    await page.waitForURL(/\/chat\/[0-9a-f-]{36}$/);
    conversationId = page.url().split('/').pop();
    await lastAnswer().filter({ hasText: 'Yeast makes bread rise' }).waitFor();
    await waitIdle();

    // Created with the base attached.
    const detail = await api.call('GET', `/api/v1/conversations/${conversationId}`);
    assert.deepEqual(detail.knowledge_base_ids, [kbId]);
    assert.equal(detail.messages.at(-1).sources?.[0]?.document_name, 'bread.txt');

    const citation = lastAnswer().getByRole('button', { name: 'Source 1', exact: true });
    await citation.waitFor();
    assert.equal(await citation.innerText(), '1');
    assert.match((await lastAnswer().locator('.markdown').innerText()).trim(), /^Yeast makes bread rise\s*1\.$/);
    const item = lastAnswer().getByTestId('source-item').first();
    assert.match(await item.innerText(), /bread\.txt/);

    await citation.click();
    const panel = lastAnswer().getByTestId('source-panel');
    await panel.waitFor();
    assert.equal(await panel.getAttribute('aria-label'), 'Source 1');
    assert.match(await panel.innerText(), /bread\.txt/);
    assert.match(await panel.getByTestId('source-text').innerText(), /yeast ferments the sugars/i);
    const link = panel.getByRole('link', { name: 'Open knowledge base' });
    assert.equal(await link.getAttribute('href'), `/knowledge/${kbId}`);
    await page.screenshot({ path: path.join(ARTIFACTS, 'e2e-citations.png'), animations: 'disabled' });

    // The same citation closes it; the Sources list opens it too; Escape closes it.
    await citation.click();
    await panel.waitFor({ state: 'detached' });
    await item.click();
    await panel.waitFor();
    await panel.press('Escape');
    await panel.waitFor({ state: 'detached' });
  });

  it('keeps the citations of the stored answer after a reload', async () => {
    await page.reload();
    await lastAnswer().filter({ hasText: 'Yeast makes bread rise' }).waitFor();
    await lastAnswer().getByRole('button', { name: 'Source 1', exact: true }).click();
    await lastAnswer().getByTestId('source-panel').filter({ hasText: /yeast ferments/i }).waitFor();
    await page.getByTestId('kb-chip').filter({ hasText: KB_NAME }).waitFor();
  });

  it('exports the conversation into the knowledge base', async () => {
    await header().getByRole('button', { name: 'Export to knowledge base' }).click();
    await page.getByLabel('Knowledge base', { exact: true }).selectOption({ label: KB_NAME });
    await page.getByRole('button', { name: 'Export', exact: true }).click();
    const notice = header().getByRole('status').filter({ hasText: `Exported to “${KB_NAME}”` });
    await notice.waitFor();
    assert.match(await notice.innerText(), /\.md/);
    const docs = await api.call('GET', `/api/v1/knowledge-bases/${kbId}/documents`);
    assert.equal(docs.length, 2, 'bread.txt and the exported chat');
    assert.ok(docs.some((d) => d.name.endsWith('.md')));
  });

  it('detaches the knowledge base', async () => {
    const saved = page.waitForResponse(
      (r) => r.request().method() === 'PATCH' && r.url().endsWith(`/api/v1/conversations/${conversationId}`),
    );
    await page.getByRole('button', { name: `Detach ${KB_NAME}` }).click();
    assert.equal((await saved).status(), 200);
    await page.getByTestId('kb-chip').waitFor({ state: 'detached' });
    const conversation = await api.call('GET', `/api/v1/conversations/${conversationId}`);
    assert.deepEqual(conversation.knowledge_base_ids, []);
    assert.deepEqual(pageErrors, []);
  });
});
