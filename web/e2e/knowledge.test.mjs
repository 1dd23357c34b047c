// End-to-end: knowledge bases in the browser, against the real server with the built-in embedder
// (all-MiniLM-L6-v2 from scripts/fetch-models.sh; HEARTH_TEST_MODELS_DIR names the folder). The
// server gets a models folder holding only the embedder, so it does not load the chat model too.
//
// Creates a base, attaches two files (Markdown about autovacuum, text about bread), follows both
// to "indexed" over the WebSocket, drops a duplicate and an unsupported file on the drop zone,
// searches with the terms highlighted, deletes a document, then renames and deletes the base from
// the list.
//
//   HEARTH_BIN, CHROMIUM_PATH: see support.mjs.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, symlink } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import path from 'node:path';
import { ARTIFACTS, createFirstAdmin, launchBrowser, openPage, startServer, stopProcess } from './support.mjs';

const MODELS = process.env.HEARTH_TEST_MODELS_DIR || path.join(homedir(), '.cache/hearth/models');
const EMBEDDER = 'all-MiniLM-L6-v2';
const ADMIN = { email: 'admin@example.com', name: 'Admin', password: 'correct-horse-battery-9' };
/** Parsing, chunking and embedding on a CPU, possibly a busy one. */
const INDEXED_WITHIN_MS = 120_000;

const AUTOVACUUM_MD = `# PostgreSQL maintenance

## Autovacuum

The autovacuum daemon runs VACUUM and ANALYZE on its own. It wakes up every
autovacuum_naptime seconds, looks at each table's count of dead tuples, and vacuums the tables
that passed their threshold, so that dead rows are reclaimed and statistics stay fresh.

## Checkpoints

A checkpoint writes every dirty page from shared buffers to disk, so that crash recovery only has
to replay the write-ahead log written since.
`;

const BREAD_TXT = `Bread is made from flour, water, salt and yeast. Knead the dough until it is smooth,
let it rise for an hour or two, shape the loaf, and bake it in a hot oven until the crust is
golden and the bottom sounds hollow when tapped.
`;

const file = (name, mimeType, text) => ({ name, mimeType, buffer: Buffer.from(text, 'utf8') });

describe('knowledge bases in the browser', { timeout: 300_000 }, () => {
  /** @type {Awaited<ReturnType<typeof startServer>> | undefined} */
  let server;
  /** @type {import('playwright-core').Browser | undefined} */
  let browser;
  /** @type {import('playwright-core').Page} */
  let page;
  let modelsDir;
  const pageErrors = [];

  before(async () => {
    const embedder = path.join(MODELS, EMBEDDER);
    assert.ok(
      existsSync(path.join(embedder, 'model.safetensors')),
      `the reference embedder is not in ${MODELS}: run scripts/fetch-models.sh ${MODELS} (make test does)`,
    );
    modelsDir = await mkdtemp(path.join(tmpdir(), 'hearth-e2e-models-'));
    await symlink(embedder, path.join(modelsDir, EMBEDDER), 'dir');
    server = await startServer({ HEARTH_LOCAL__MODELS_DIR: modelsDir });
    browser = await launchBrowser();
    page = await openPage(browser, pageErrors, { height: 1400, timeout: 30_000 });
  });

  after(async () => {
    await browser?.close();
    await stopProcess(server, 'e2e-knowledge-server.log');
    if (modelsDir) await rm(modelsDir, { recursive: true, force: true });
  });

  const mainNav = () => page.getByRole('navigation', { name: 'Main' });
  const documentRow = (name) => page.getByTestId('document-row').filter({ hasText: name });
  const uploadItem = (name, outcome) => page.locator(`[data-testid=upload-item][data-outcome=${outcome}]`).filter({ hasText: name });
  const stats = (text) => page.getByTestId('knowledge-base-stats').filter({ hasText: text });

  it('creates a knowledge base from the Knowledge page', async () => {
    await createFirstAdmin(page, server.url, ADMIN);
    await mainNav().getByRole('link', { name: 'Knowledge' }).click();
    await page.waitForURL('**/knowledge');
    await page.getByText('No knowledge bases yet.').waitFor();

    await page.getByLabel('Name', { exact: true }).fill('Postgres notes');
    await page.getByLabel('Description', { exact: true }).fill('What the ops team knows');
    await page.getByRole('button', { name: 'Create knowledge base' }).click();
    await page.waitForURL(/\/knowledge\/[^/]+$/);
    await page.getByRole('heading', { name: 'Postgres notes', level: 1 }).waitFor();
    await stats(EMBEDDER).waitFor();
    await page.getByText('No documents yet.').waitFor();
  });

  it('uploads two files and follows them to indexed', async () => {
    await page
      .getByLabel('Choose files', { exact: true })
      .setInputFiles([file('autovacuum.md', 'text/markdown', AUTOVACUUM_MD), file('bread.txt', 'text/plain', BREAD_TXT)]);

    await uploadItem('autovacuum.md', 'queued').waitFor();
    await uploadItem('bread.txt', 'queued').waitFor();
    // Statuses arrive as WebSocket frames; nothing reloads the page.
    const md = page.locator('[data-testid=document-row][data-status=indexed]').filter({ hasText: 'autovacuum.md' });
    const txt = page.locator('[data-testid=document-row][data-status=indexed]').filter({ hasText: 'bread.txt' });
    await md.waitFor({ timeout: INDEXED_WITHIN_MS });
    await txt.waitFor({ timeout: INDEXED_WITHIN_MS });
    assert.equal(await md.locator('.badge').innerText(), 'md', 'the format is shown');
    assert.equal(await page.getByTestId('document-row').count(), 2);
    await stats('2 documents').waitFor();
  });

  it('takes dropped files, and says which were duplicates or refused', async () => {
    // A drop as the browser delivers it: a DataTransfer holding the files.
    const dropped = await page.evaluateHandle(
      ([md]) => {
        const data = new DataTransfer();
        data.items.add(new File([md], 'copy-of-autovacuum.md', { type: 'text/markdown' }));
        data.items.add(new File(['MZ'], 'tool.exe', { type: 'application/octet-stream' }));
        return data;
      },
      [AUTOVACUUM_MD],
    );
    await page.getByTestId('drop-zone').dispatchEvent('dragenter', { dataTransfer: dropped });
    await page.getByTestId('drop-zone').dispatchEvent('drop', { dataTransfer: dropped });

    const duplicate = uploadItem('copy-of-autovacuum.md', 'duplicate');
    await duplicate.waitFor();
    assert.match(await duplicate.innerText(), /Duplicate of existing document “autovacuum\.md”/);
    const refused = uploadItem('tool.exe', 'rejected');
    await refused.waitFor();
    assert.match(await refused.innerText(), /unsupported file type/);
    assert.equal(await page.getByTestId('document-row').count(), 2, 'no new rows');
  });

  it('searches with the query terms highlighted', async () => {
    await page.getByLabel('Query', { exact: true }).fill('autovacuum daemon');
    await page.getByLabel('Mode', { exact: true }).selectOption('hybrid');
    await page.getByRole('button', { name: 'Search', exact: true }).click();

    const hits = page.getByTestId('search-hit');
    await hits.first().waitFor();
    assert.match(await hits.first().innerText(), /autovacuum\.md/, 'a passage of the Markdown file ranks first');
    // The passage of the "Autovacuum" section (the chunker may give "Checkpoints" its own).
    const hit = hits.filter({ hasText: 'autovacuum.md' }).filter({ hasText: 'daemon' }).first();
    await hit.waitFor();
    const marks = await hit.locator('mark').allInnerTexts();
    assert.ok(
      marks.some((m) => m.toLowerCase() === 'autovacuum'),
      `"autovacuum" is marked; marks: ${JSON.stringify(marks)}`,
    );
    assert.ok(marks.some((m) => m.toLowerCase() === 'daemon'), `"daemon" is marked; marks: ${JSON.stringify(marks)}`);
    // Only whole words: "autovacuum_naptime" has its own word "autovacuum", never a partial mark.
    assert.ok(
      marks.every((m) => ['autovacuum', 'daemon'].includes(m.toLowerCase())),
      `only the terms are marked; marks: ${JSON.stringify(marks)}`,
    );
    await page.screenshot({ path: path.join(ARTIFACTS, 'e2e-knowledge.png'), fullPage: true, animations: 'disabled' });
  });

  it('deletes a document', async () => {
    await documentRow('bread.txt').getByRole('button', { name: 'Delete bread.txt' }).click();
    await page.getByRole('button', { name: 'Yes, delete' }).click();
    await documentRow('bread.txt').waitFor({ state: 'detached' });
    assert.equal(await page.getByTestId('document-row').count(), 1);
    await stats('1 document').waitFor();
  });

  it('renames and deletes the base from the list', async () => {
    await page.getByRole('link', { name: '← All knowledge bases' }).click();
    await page.waitForURL('**/knowledge');
    const row = page.getByTestId('knowledge-base-row').filter({ hasText: 'Postgres notes' });
    await row.waitFor();
    assert.match(await row.innerText(), new RegExp(EMBEDDER));

    await row.getByRole('button', { name: 'Rename Postgres notes' }).click();
    await page.getByLabel('New name', { exact: true }).fill('Database notes');
    await page.getByRole('button', { name: 'Save', exact: true }).click();
    const renamed = page.getByTestId('knowledge-base-row').filter({ hasText: 'Database notes' });
    await renamed.waitFor();

    await renamed.getByRole('button', { name: 'Delete Database notes' }).click();
    await page.getByRole('button', { name: 'Yes, delete' }).click();
    await page.getByText('No knowledge bases yet.').waitFor();
    assert.deepEqual(pageErrors, []);
  });
});
