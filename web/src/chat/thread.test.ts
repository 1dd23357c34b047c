import { describe, expect, it } from 'vitest';
import type { ConversationDetail, MessageView, RunEvent, Source } from '../api/types';
import { applyEvent, conversationOf, EMPTY_THREAD, isRunning, PENDING_USER_ID, runToResume, threadReducer, withSources, type Thread } from './thread';

const CONV = 'c1';

function message(partial: Partial<MessageView> & Pick<MessageView, 'id' | 'role'>): MessageView {
  return {
    conversation_id: CONV,
    parent_id: null,
    content: '',
    parts: [],
    model: null,
    status: 'complete',
    error: null,
    created_at: '2025-01-01T00:00:00Z',
    sibling_ids: [partial.id],
    ...partial,
  };
}

function detail(messages: MessageView[]): ConversationDetail {
  return {
    id: CONV,
    title: 'Test',
    model: 'fake-chat',
    knowledge_base_ids: [],
    created_at: '2025-01-01T00:00:00Z',
    updated_at: '2025-01-01T00:00:00Z',
    messages,
  };
}

const started = (over: Partial<Extract<RunEvent, { type: 'run_started' }>> = {}): RunEvent => ({
  seq: 1,
  type: 'run_started',
  run_id: 'r1',
  conversation_id: CONV,
  message_id: 'a1',
  user_message_id: 'u1',
  model: 'fake-chat',
  ...over,
});

const delta = (seq: number, text: string): RunEvent => ({ seq, type: 'text_delta', text });

function source(n: number, text = `passage ${n}`): Source {
  return {
    n,
    chunk_id: `ch${n}`,
    document_id: 'd1',
    document_name: 'bread.txt',
    knowledge_base_id: 'kb1',
    headings: '',
    page: null,
    position: n,
    text,
  };
}

const sourcesEvent = (seq: number, sources: Source[]): RunEvent => ({ seq, type: 'sources', sources });

function run(thread: Thread, events: RunEvent[]): Thread {
  return events.reduce((t, event) => threadReducer(t, { type: 'event', event }), thread);
}

/** A loaded empty conversation with "hello" just sent. */
function sending(text = 'hello'): Thread {
  const loaded = threadReducer(EMPTY_THREAD, { type: 'loaded', detail: detail([]) });
  return threadReducer(loaded, { type: 'start', parentId: null, userText: text });
}

describe('thread reducer', () => {
  it('shows the user message at once and names it when the run starts', () => {
    let thread = sending();
    expect(thread.messages.map((m) => m.id)).toEqual([PENDING_USER_ID]);
    expect(isRunning(thread)).toBe(true);

    thread = run(thread, [started()]);
    expect(thread.messages.map((m) => [m.id, m.role, m.parent_id])).toEqual([
      ['u1', 'user', null],
      ['a1', 'assistant', 'u1'],
    ]);
    expect(thread.messages[1]!.status).toBe('streaming');
    expect(thread.live).toMatchObject({ runId: 'r1', messageId: 'a1', lastSeq: 1 });
  });

  it('appends text deltas to one text part', () => {
    const thread = run(sending(), [started(), delta(2, 'You'), delta(3, ' said'), delta(4, ': hello')]);
    const answer = thread.messages[1]!;
    expect(answer.content).toBe('You said: hello');
    expect(answer.parts).toEqual([{ type: 'text', text: 'You said: hello' }]);
  });

  it('keeps tool calls in order with the text and settles them with their results', () => {
    const thread = run(sending('calculate 6*7'), [
      started(),
      { seq: 2, type: 'usage', input_tokens: 10, output_tokens: 0 },
      { seq: 3, type: 'tool_call', id: 'call_1', name: 'calculator', arguments: '{"expression":"6*7"}' },
    ]);
    expect(thread.messages[1]!.parts).toEqual([
      { type: 'tool_call', id: 'call_1', name: 'calculator', arguments: '{"expression":"6*7"}', status: 'pending', output: null },
    ]);

    const after = run(thread, [
      { seq: 4, type: 'tool_result', id: 'call_1', name: 'calculator', status: 'ok', output: '42' },
      delta(5, 'The result'),
      delta(6, ' is 42.'),
    ]);
    const answer = after.messages[1]!;
    expect(answer.parts).toEqual([
      { type: 'tool_call', id: 'call_1', name: 'calculator', arguments: '{"expression":"6*7"}', status: 'ok', output: '42' },
      { type: 'text', text: 'The result is 42.' },
    ]);
    expect(answer.content).toBe('The result is 42.');
    expect(after.live?.usage).toEqual({ input_tokens: 10, output_tokens: 0 });
  });

  it('tracks approvals until the call has a result', () => {
    const waiting = run(sending(), [
      started(),
      { seq: 2, type: 'tool_call', id: 'call_1', name: 'current_time', arguments: '{}' },
      { seq: 3, type: 'tool_approval_required', id: 'call_1', name: 'current_time', arguments: '{}', timeout_secs: 300 },
    ]);
    expect(waiting.live?.approvals).toEqual([{ id: 'call_1', name: 'current_time', arguments: '{}', timeoutSecs: 300 }]);
    // The call is shown once, not once per event.
    expect(waiting.messages[1]!.parts).toHaveLength(1);

    const denied = run(waiting, [
      { seq: 4, type: 'tool_result', id: 'call_1', name: 'current_time', status: 'denied', output: 'the user declined this call' },
    ]);
    expect(denied.live?.approvals).toEqual([]);
    expect(denied.messages[1]!.parts[0]).toMatchObject({ status: 'denied', output: 'the user declined this call' });
  });

  it('keeps the partial answer and the error of an error event', () => {
    const thread = run(sending(), [started(), delta(2, 'Partial'), { seq: 3, type: 'error', code: 'upstream', message: 'boom' }]);
    expect(thread.live?.error).toEqual({ code: 'upstream', message: 'boom' });
    expect(thread.messages[1]).toMatchObject({ content: 'Partial', error: 'boom' });
  });

  it('takes the final message from done and stops running', () => {
    const final = message({
      id: 'a1',
      role: 'assistant',
      parent_id: 'u1',
      content: 'Part',
      parts: [{ type: 'text', text: 'Part' }],
      status: 'stopped',
      model: 'fake-chat',
    });
    const thread = run(sending(), [
      started(),
      delta(2, 'Part'),
      { seq: 3, type: 'tool_approval_required', id: 'x', name: 'current_time', arguments: '{}', timeout_secs: 5 },
      { seq: 4, type: 'done', status: 'stopped', message: final },
    ]);
    expect(isRunning(thread)).toBe(false);
    expect(thread.live).toMatchObject({ status: 'stopped', approvals: [], lastSeq: 4 });
    expect(thread.messages[1]).toEqual(final);
  });

  it('ignores events it has already applied (resume overlap)', () => {
    const once = run(sending(), [started(), delta(2, 'one'), delta(3, ' two')]);
    const again = run(once, [started(), delta(2, 'one'), delta(3, ' two'), delta(4, ' three')]);
    expect(again.messages).toHaveLength(2);
    expect(again.messages[1]!.content).toBe('one two three');
    expect(again.live?.lastSeq).toBe(4);
  });

  it('rebuilds a streaming message from the start after a reload', () => {
    // The stored checkpoint already holds some text; the events replayed from seq 1 rebuild it.
    const streaming = message({
      id: 'a1',
      role: 'assistant',
      parent_id: 'u1',
      content: 'one two',
      parts: [{ type: 'text', text: 'one two' }],
      status: 'streaming',
      run_id: 'r1',
    });
    const loaded = threadReducer(EMPTY_THREAD, {
      type: 'loaded',
      detail: detail([message({ id: 'u1', role: 'user', content: 'count' }), streaming]),
    });
    const target = runToResume(loaded.messages);
    expect(target).toEqual({ runId: 'r1', messageId: 'a1' });

    let thread = threadReducer(loaded, { type: 'resume', ...target! });
    expect(isRunning(thread)).toBe(true);
    thread = run(thread, [started(), delta(2, 'one'), delta(3, ' two'), delta(4, ' three')]);
    expect(thread.messages).toHaveLength(2);
    expect(thread.messages[1]!.content).toBe('one two three');
    expect(thread.messages[1]!.parts).toEqual([{ type: 'text', text: 'one two three' }]);
  });

  it('finds no run to resume when the last answer is finished', () => {
    expect(runToResume([message({ id: 'a1', role: 'assistant', status: 'complete' })])).toBeNull();
    expect(runToResume([message({ id: 'a1', role: 'assistant', status: 'streaming' })])).toBeNull();
    expect(runToResume([])).toBeNull();
  });

  it('ignores events while no run is followed', () => {
    const loaded = threadReducer(EMPTY_THREAD, { type: 'loaded', detail: detail([]) });
    expect(applyEvent(loaded, delta(1, 'x'))).toBe(loaded);
  });

  it('regenerates into a new sibling of the old answer', () => {
    const user = message({ id: 'u1', role: 'user', content: 'hi' });
    const old = message({ id: 'a1', role: 'assistant', parent_id: 'u1', content: 'old' });
    const loaded = threadReducer(EMPTY_THREAD, { type: 'loaded', detail: detail([user, old]) });
    let thread = threadReducer(loaded, { type: 'start', parentId: 'u1', siblings: old.sibling_ids });
    expect(thread.messages.map((m) => m.id)).toEqual(['u1']);
    thread = run(thread, [started({ message_id: 'a2', user_message_id: null })]);
    expect(thread.messages[1]).toMatchObject({ id: 'a2', parent_id: 'u1', sibling_ids: ['a1', 'a2'] });
  });

  it('edits a message into a new branch after its parent', () => {
    const u1 = message({ id: 'u1', role: 'user', content: 'first' });
    const a1 = message({ id: 'a1', role: 'assistant', parent_id: 'u1' });
    const u2 = message({ id: 'u2', role: 'user', parent_id: 'a1', content: 'second' });
    const a2 = message({ id: 'a2', role: 'assistant', parent_id: 'u2' });
    const loaded = threadReducer(EMPTY_THREAD, { type: 'loaded', detail: detail([u1, a1, u2, a2]) });
    let thread = threadReducer(loaded, { type: 'start', parentId: 'a1', userText: 'second, edited', siblings: u2.sibling_ids });
    expect(thread.messages.map((m) => m.id)).toEqual(['u1', 'a1', PENDING_USER_ID]);
    thread = run(thread, [started({ message_id: 'a3', user_message_id: 'u3' })]);
    expect(thread.messages.map((m) => m.id)).toEqual(['u1', 'a1', 'u3', 'a3']);
    expect(thread.messages[2]).toMatchObject({ parent_id: 'a1', sibling_ids: ['u2', 'u3'], content: 'second, edited' });
    // The original state was not mutated.
    expect(loaded.messages.map((m) => m.id)).toEqual(['u1', 'a1', 'u2', 'a2']);
  });

  it('rolls back when sending fails and ignores idle reloads during a run', () => {
    const before = threadReducer(EMPTY_THREAD, { type: 'loaded', detail: detail([]) });
    const thread = threadReducer(before, { type: 'start', parentId: null, userText: 'hi' });
    expect(threadReducer(thread, { type: 'loaded', detail: detail([]), ifIdle: true })).toBe(thread);
    const rolled = threadReducer(thread, { type: 'rollback', messages: before.messages });
    expect(rolled.messages).toEqual([]);
    expect(rolled.live).toBeNull();
  });

  it('marks a lost stream as an error but keeps what arrived', () => {
    const thread = run(sending(), [started(), delta(2, 'half')]);
    const lost = threadReducer(thread, { type: 'lost', message: 'connection lost' });
    expect(isRunning(lost)).toBe(false);
    expect(lost.live?.error?.message).toBe('connection lost');
    expect(lost.messages[1]!.content).toBe('half');
  });
});

describe('sources', () => {
  it('puts the sources that come before the text on the answer', () => {
    const thread = run(sending(), [started(), sourcesEvent(2, [source(1), source(2)]), delta(3, 'Yeast [1].')]);
    const answer = thread.messages[1]!;
    expect(answer.sources?.map((s) => s.n)).toEqual([1, 2]);
    expect(answer.content).toBe('Yeast [1].');
    // The user message gets none.
    expect(thread.messages[0]!.sources).toBeUndefined();
  });

  it('appends later sources (from kb_search) after the earlier ones', () => {
    const thread = run(sending(), [
      started(),
      sourcesEvent(2, [source(1), source(2)]),
      { seq: 3, type: 'tool_call', id: 'call_1', name: 'kb_search', arguments: '{"query":"rise"}' },
      { seq: 4, type: 'tool_result', id: 'call_1', name: 'kb_search', status: 'ok', output: '[3] bread.txt' },
      sourcesEvent(5, [source(3)]),
      delta(6, 'See [3].'),
    ]);
    expect(thread.messages[1]!.sources?.map((s) => [s.n, s.text])).toEqual([
      [1, 'passage 1'],
      [2, 'passage 2'],
      [3, 'passage 3'],
    ]);
  });

  it('does not add a number twice', () => {
    const answer = message({ id: 'a1', role: 'assistant', sources: [source(1)] });
    const once = withSources(answer, [source(1, 'other'), source(2)]);
    expect(once.sources?.map((s) => [s.n, s.text])).toEqual([
      [1, 'passage 1'],
      [2, 'passage 2'],
    ]);
    expect(withSources(once, [source(2)])).toBe(once);
  });

  it('takes the sources of the done message, which replaces the streamed one', () => {
    const final = message({
      id: 'a1',
      role: 'assistant',
      parent_id: 'u1',
      content: 'Yeast [1].',
      parts: [{ type: 'text', text: 'Yeast [1].' }],
      sources: [source(1, 'stored passage')],
      model: 'fake-chat',
    });
    const thread = run(sending(), [
      started(),
      sourcesEvent(2, [source(1), source(2)]),
      delta(3, 'Yeast [1].'),
      { seq: 4, type: 'done', status: 'complete', message: final },
    ]);
    expect(thread.messages[1]).toEqual(final);
    expect(thread.messages[1]!.sources).toEqual([source(1, 'stored passage')]);
  });

  it('ignores a repeated sources event and rebuilds the sources after a reload', () => {
    // Reloaded mid-answer: the stored checkpoint has sources; the replay from seq 1 rebuilds them.
    const streaming = message({
      id: 'a1',
      role: 'assistant',
      parent_id: 'u1',
      content: 'Yeast',
      parts: [{ type: 'text', text: 'Yeast' }],
      sources: [source(1), source(2)],
      status: 'streaming',
      run_id: 'r1',
    });
    const loaded = threadReducer(EMPTY_THREAD, {
      type: 'loaded',
      detail: detail([message({ id: 'u1', role: 'user', content: 'why?' }), streaming]),
    });
    let thread = threadReducer(loaded, { type: 'resume', runId: 'r1', messageId: 'a1' });
    thread = run(thread, [started()]);
    expect(thread.messages[1]!.sources).toBeUndefined();
    thread = run(thread, [sourcesEvent(2, [source(1), source(2)]), sourcesEvent(2, [source(1), source(2)]), delta(3, 'Yeast')]);
    expect(thread.messages[1]!.sources?.map((s) => s.n)).toEqual([1, 2]);
    // A resumed stream overlapping what was read adds nothing.
    thread = run(thread, [sourcesEvent(2, [source(9)]), delta(4, ' rises [1].')]);
    expect(thread.messages[1]!.sources?.map((s) => s.n)).toEqual([1, 2]);
    expect(thread.messages[1]!.content).toBe('Yeast rises [1].');
  });

  it('keeps the attached knowledge bases of a conversation', () => {
    const withKbs = { ...detail([]), knowledge_base_ids: ['kb1', 'kb2'] };
    expect(conversationOf(withKbs).knowledge_base_ids).toEqual(['kb1', 'kb2']);
    const thread = threadReducer(EMPTY_THREAD, { type: 'loaded', detail: withKbs });
    expect(thread.conversation?.knowledge_base_ids).toEqual(['kb1', 'kb2']);
  });
});
