import { describe, expect, it } from 'vitest';
import type { Memory } from '../api/types';
import { charCount, MAX_MEMORY_CHARS, memoryProblem, removeMemory, sourceLabel, upsertMemory, wasEdited } from './memories';

const memory = (id: string, created: string, over: Partial<Memory> = {}): Memory => ({
  id,
  text: `memory ${id}`,
  source: 'user',
  conversation_id: null,
  created_at: created,
  updated_at: created,
  ...over,
});

describe('memories', () => {
  it('labels the sources', () => {
    expect(sourceLabel('user')).toBe('Added by you');
    expect(sourceLabel('saved')).toBe('Saved in chat');
    expect(sourceLabel('extracted')).toBe('Learned from a chat');
    expect(sourceLabel('imported')).toBe('imported');
  });

  it('checks text like the server does', () => {
    expect(memoryProblem('')).toMatch(/Write what/);
    expect(memoryProblem('   \n')).toMatch(/Write what/);
    expect(memoryProblem('I prefer metric units')).toBeNull();
    expect(memoryProblem('x'.repeat(MAX_MEMORY_CHARS))).toBeNull();
    expect(memoryProblem('x'.repeat(MAX_MEMORY_CHARS + 1))).toMatch(/at most 2000 characters \(this one has 2001\)/);
    // Counted in characters, not UTF-16 units: 2000 emoji fit.
    expect(charCount('🍞🍞')).toBe(2);
    expect(memoryProblem('🍞'.repeat(MAX_MEMORY_CHARS))).toBeNull();
  });

  it('keeps the list newest first when adding and editing', () => {
    const older = memory('a', '2025-01-01T00:00:00Z');
    const newer = memory('b', '2025-01-02T00:00:00Z');
    let list = upsertMemory([newer], older);
    expect(list.map((m) => m.id)).toEqual(['b', 'a']);
    list = upsertMemory(list, memory('c', '2025-01-03T00:00:00Z'));
    expect(list.map((m) => m.id)).toEqual(['c', 'b', 'a']);
    const edited = { ...older, text: 'changed', updated_at: '2025-01-04T00:00:00Z' };
    list = upsertMemory(list, edited);
    expect(list.map((m) => m.id)).toEqual(['c', 'b', 'a']);
    expect(list[2]!.text).toBe('changed');
    expect(wasEdited(list[2]!)).toBe(true);
    expect(wasEdited(list[0]!)).toBe(false);
    expect(removeMemory(list, 'b').map((m) => m.id)).toEqual(['c', 'a']);
  });
});
