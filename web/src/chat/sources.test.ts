import { describe, expect, it } from 'vitest';
import type { Source } from '../api/types';
import { citationTooltip, knowledgeBaseHref, snippet, sourcePage, sourcesByNumber, sourceTitle } from './sources';

const source = (over: Partial<Source> = {}): Source => ({
  n: 1,
  chunk_id: 'ch1',
  document_id: 'd1',
  document_name: 'bread.txt',
  knowledge_base_id: 'kb/1',
  headings: 'Baking > Rising',
  page: 3,
  position: 0,
  text: 'Yeast ferments\n\nthe sugars.',
  ...over,
});

describe('sources', () => {
  it('names a passage by document, headings and page', () => {
    expect(sourceTitle(source())).toBe('bread.txt › Baking > Rising');
    expect(sourceTitle(source({ headings: '  ' }))).toBe('bread.txt');
    expect(sourcePage(source())).toBe('page 3');
    expect(sourcePage(source({ page: null }))).toBe('');
    expect(citationTooltip(source())).toBe('bread.txt › Baking > Rising, page 3: Yeast ferments the sugars.');
    expect(citationTooltip(source({ page: null, headings: '', text: '' }))).toBe('bread.txt');
  });

  it('shortens long passages on one line', () => {
    expect(snippet('a  b\nc')).toBe('a b c');
    const long = 'word '.repeat(100);
    const cut = snippet(long, 20);
    expect(cut.length).toBeLessThanOrEqual(20);
    expect(cut.endsWith('…')).toBe(true);
  });

  it('indexes by number and links to the knowledge base', () => {
    const map = sourcesByNumber([source({ n: 2 }), source({ n: 5 })]);
    expect([...map.keys()]).toEqual([2, 5]);
    expect(sourcesByNumber(undefined).size).toBe(0);
    expect(knowledgeBaseHref('kb/1')).toBe('/knowledge/kb%2F1');
  });
});
