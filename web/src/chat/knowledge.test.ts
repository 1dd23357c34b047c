import { describe, expect, it } from 'vitest';
import type { DocumentView, KnowledgeBase } from '../api/types';
import { exportOutcome, knowledgeBaseName, toggleId } from './knowledge';

const kb = (id: string, name: string): KnowledgeBase => ({
  id,
  name,
  description: '',
  embedding_model: 'all-MiniLM-L6-v2',
  dimensions: 384,
  documents: 1,
  chunks: 1,
  created_at: '2025-01-01T00:00:00Z',
  updated_at: '2025-01-01T00:00:00Z',
});

const doc = (name: string, over: Partial<DocumentView> = {}): DocumentView => ({
  id: 'd1',
  knowledge_base_id: 'kb1',
  name,
  format: 'md',
  size_bytes: 10,
  content_hash: 'h',
  status: 'queued',
  error: null,
  pages: null,
  chunks: 0,
  metadata: {},
  created_at: '2025-01-01T00:00:00Z',
  updated_at: '2025-01-01T00:00:00Z',
  indexed_at: null,
  ...over,
});

describe('knowledge in chat', () => {
  it('attaches once and detaches', () => {
    expect(toggleId([], 'a', true)).toEqual(['a']);
    expect(toggleId(['a'], 'a', true)).toEqual(['a']);
    expect(toggleId(['a', 'b'], 'a', false)).toEqual(['b']);
    expect(toggleId(['b'], 'a', false)).toEqual(['b']);
  });

  it('names attached bases, with a stand-in for unknown ones', () => {
    const bases = [kb('kb1', 'Bread notes')];
    expect(knowledgeBaseName(bases, 'kb1')).toBe('Bread notes');
    expect(knowledgeBaseName(bases, 'gone')).toBe('Unavailable knowledge base');
    expect(knowledgeBaseName(null, 'kb1')).toBe('Knowledge base');
  });

  it('describes an export', () => {
    expect(exportOutcome({ documents: [doc('Bread chat.md')], rejected: [] }, 'Bread notes')).toEqual({
      ok: true,
      documentName: 'Bread chat.md',
      message: 'Exported to “Bread notes” as “Bread chat.md”. It is searchable once indexed.',
    });
    expect(exportOutcome({ documents: [doc('Bread chat.md', { duplicate: true })], rejected: [] }, 'Bread notes').message).toBe(
      '“Bread notes” already holds this conversation as “Bread chat.md”.',
    );
    expect(
      exportOutcome({ documents: [], rejected: [{ name: 'x.md', code: 'too_large', message: 'the file is too large' }] }, 'Bread notes'),
    ).toEqual({ ok: false, message: 'Not exported: the file is too large' });
  });
});
