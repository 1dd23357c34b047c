import { describe, expect, it } from 'vitest';
import type { Source } from '../api/types';
import { markdownToHtml } from './markdown';

describe('markdownToHtml', () => {
  it('renders Markdown', () => {
    expect(markdownToHtml('**bold** and `code`')).toContain('<strong>bold</strong> and <code>code</code>');
  });

  it('shows raw HTML from the model as text', () => {
    const html = markdownToHtml('<script>alert(1)</script>\n\nhi <img src=x onerror="alert(1)"> there');
    expect(html).not.toContain('<script');
    expect(html).not.toContain('<img');
    expect(html).toContain('&lt;script&gt;');
    expect(html).toContain('&lt;img src=x onerror=&quot;alert(1)&quot;&gt;');
  });

  it('highlights fenced code in a known language and adds a copy button', () => {
    const html = markdownToHtml('```rust\nfn main() {}\n```');
    expect(html).toContain('class="hljs language-rust"');
    expect(html).toContain('<span class="hljs-keyword">fn</span>');
    expect(html).toContain('data-copy-code');
    expect(html).toContain('<span class="code-lang">rust</span>');
  });

  it('escapes code in an unknown language', () => {
    const html = markdownToHtml('```nope\n<b>x</b>\n```');
    expect(html).toContain('&lt;b&gt;x&lt;/b&gt;');
    expect(html).not.toContain('<b>');
  });
});

const source = (n: number, over: Partial<Source> = {}): Source => ({
  n,
  chunk_id: `ch${n}`,
  document_id: 'd1',
  document_name: 'bread.txt',
  knowledge_base_id: 'kb1',
  headings: 'Baking',
  page: null,
  position: n,
  text: `Yeast ferments the sugars (${n}).`,
  ...over,
});

/** The numbers of the citation buttons in `html`, in order. */
const cited = (html: string) => [...html.matchAll(/data-cite="(\d+)"/g)].map((m) => Number(m[1]));

describe('citations', () => {
  const sources = [source(1), source(2), source(3)];

  it('turns [n] of a source into a citation button', () => {
    const html = markdownToHtml('Yeast makes bread rise [1].', sources);
    expect(cited(html)).toEqual([1]);
    expect(html).toContain('<sup class="citation"><button type="button" class="citation-ref" data-cite="1" aria-label="Source 1"');
    expect(html).toContain('>1</button></sup>.');
    expect(html).toContain('title="bread.txt › Baking: Yeast ferments the sugars (1)."');
  });

  it('handles adjacent citations and citations in lists, emphasis and tables', () => {
    expect(cited(markdownToHtml('Both [2][3] agree.', sources))).toEqual([2, 3]);
    expect(cited(markdownToHtml('- one [1]\n- **two [2]**', sources))).toEqual([1, 2]);
    expect(cited(markdownToHtml('| a | b |\n|---|---|\n| x [3] | y |', sources))).toEqual([3]);
  });

  it('leaves [1] in inline code and code blocks as written', () => {
    const inline = markdownToHtml('Index with `xs[1]` here [1].', sources);
    expect(inline).toContain('<code>xs[1]</code>');
    expect(cited(inline)).toEqual([1]);

    const fenced = markdownToHtml('```python\nxs[1] = [2]\n```\n\n```\n[1]\n```', sources);
    expect(cited(fenced)).toEqual([]);
    expect(fenced).toContain('[<span class="hljs-number">1</span>]');
    expect(fenced).toContain('<code class="hljs">[1]</code>');

    const indented = markdownToHtml('Code:\n\n    a[1]\n', sources);
    expect(cited(indented)).toEqual([]);
    expect(indented).toContain('a[1]');
  });

  it('leaves numbers that are no source of the message as text', () => {
    const html = markdownToHtml('See [4] and [0] and [12] and [a].', sources);
    expect(cited(html)).toEqual([]);
    expect(html).toContain('See [4] and [0] and [12] and [a].');
    // No sources at all: nothing is a citation.
    expect(cited(markdownToHtml('Rise [1].'))).toEqual([]);
    expect(cited(markdownToHtml('Rise [1].', []))).toEqual([]);
  });

  it('keeps links that look like citations', () => {
    const inline = markdownToHtml('[1](https://example.com/a) and [see [2]](https://example.com/b)', sources);
    expect(inline).toContain('<a href="https://example.com/a">1</a>');
    expect(cited(inline)).toEqual([]);
    const reference = markdownToHtml('As [1] says.\n\n[1]: https://example.com/ref', sources);
    expect(reference).toContain('<a href="https://example.com/ref">1</a>');
    expect(cited(reference)).toEqual([]);
    expect(cited(markdownToHtml('Escaped \\[1\\] stays.', sources))).toEqual([]);
  });

  it('escapes HTML in the source text and names', () => {
    const evil = source(1, {
      document_name: '<img src=x onerror=alert(1)>.md',
      headings: '"><script>alert(2)</script>',
      text: '<b onmouseover="alert(3)">bold</b> & more',
    });
    const html = markdownToHtml('Careful [1].', [evil]);
    expect(cited(html)).toEqual([1]);
    expect(html).not.toContain('<img');
    expect(html).not.toContain('<script');
    expect(html).not.toContain('<b ');
    expect(html).toContain('&lt;img src=x onerror=alert(1)&gt;.md');
    expect(html).toContain('&quot;&gt;&lt;script&gt;');
    expect(html).toContain('&lt;b onmouseover=&quot;alert(3)&quot;&gt;bold&lt;/b&gt; &amp; more');
    // The attribute is never closed early: one title, ending right before the button text.
    expect(html.match(/title="[^"]*"/g)).toHaveLength(1);
  });

  it('does not leak one render’s sources into the next', () => {
    expect(cited(markdownToHtml('[1]', sources))).toEqual([1]);
    expect(cited(markdownToHtml('[1]'))).toEqual([]);
  });
});
