import { describe, expect, it } from 'vitest';
import { branchLabel, branchPosition, editRequest } from './branches';

describe('branch switcher', () => {
  it('shows nothing for a message without alternatives', () => {
    expect(branchPosition({ id: 'a', sibling_ids: ['a'] })).toBeNull();
    expect(branchPosition({ id: 'a', sibling_ids: [] })).toBeNull();
  });

  it('shows nothing when the message is missing from its own siblings', () => {
    expect(branchPosition({ id: 'x', sibling_ids: ['a', 'b'] })).toBeNull();
  });

  it('points to the neighbours, oldest first', () => {
    const first = branchPosition({ id: 'a', sibling_ids: ['a', 'b', 'c'] })!;
    expect(first).toEqual({ index: 0, total: 3, previous: null, next: 'b' });
    expect(branchLabel(first)).toBe('1/3');

    const middle = branchPosition({ id: 'b', sibling_ids: ['a', 'b', 'c'] })!;
    expect(middle).toEqual({ index: 1, total: 3, previous: 'a', next: 'c' });
    expect(branchLabel(middle)).toBe('2/3');

    const last = branchPosition({ id: 'c', sibling_ids: ['a', 'b', 'c'] })!;
    expect(last).toEqual({ index: 2, total: 3, previous: 'b', next: null });
  });
});

describe('editRequest', () => {
  it('answers the parent of the edited message', () => {
    expect(editRequest({ parent_id: 'a1' }, 'new text', 'fake-chat')).toEqual({
      content: 'new text',
      parent_id: 'a1',
      model: 'fake-chat',
    });
  });

  it('starts at the top when the first message is edited', () => {
    expect(editRequest({ parent_id: null }, 'new text')).toEqual({ content: 'new text', edit_root: true });
  });
});
