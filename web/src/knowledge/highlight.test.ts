import { createElement } from 'react';
import { renderToStaticMarkup } from 'react-dom/server';
import { describe, expect, it } from 'vitest';
import { highlight, highlightSegments, termsPattern } from './highlight';

/** The segments as a string with [brackets] around matches, for short assertions. */
function marked(text: string, terms: string[]): string {
  return highlightSegments(text, terms)
    .map((s) => (s.match ? `[${s.text}]` : s.text))
    .join('');
}

function html(text: string, terms: string[]): string {
  return renderToStaticMarkup(createElement('p', null, ...highlight(text, terms)));
}

describe('highlightSegments', () => {
  it('returns the text unchanged when there are no terms', () => {
    expect(highlightSegments('The autovacuum daemon', [])).toEqual([{ text: 'The autovacuum daemon', match: false }]);
    expect(highlightSegments('text', ['', '  '])).toEqual([{ text: 'text', match: false }]);
    expect(termsPattern([])).toBeNull();
  });

  it('returns nothing for empty text', () => {
    expect(highlightSegments('', ['x'])).toEqual([]);
  });

  it('matches case-insensitively and keeps the text as written', () => {
    expect(marked('Autovacuum and AUTOVACUUM and autovacuum', ['autovacuum'])).toBe(
      '[Autovacuum] and [AUTOVACUUM] and [autovacuum]',
    );
  });

  it('matches whole words only', () => {
    expect(marked('autovacuum vacuums the vacuum', ['vacuum'])).toBe('autovacuum vacuums the [vacuum]');
    expect(marked('autovacuum', ['auto'])).toBe('autovacuum');
  });

  it('treats punctuation and underscores as boundaries, as the server does', () => {
    expect(marked('(daemon), daemon. "daemon" auto_daemon daemon-like', ['daemon'])).toBe(
      '([daemon]), [daemon]. "[daemon]" auto_[daemon] [daemon]-like',
    );
  });

  it('marks several terms, the longer first where one begins the other', () => {
    expect(marked('The autovacuum daemon runs auto', ['auto', 'autovacuum', 'daemon'])).toBe(
      'The [autovacuum] [daemon] runs [auto]',
    );
  });

  it('covers the whole text, in order', () => {
    const text = 'daemon at the start, and at the end: daemon';
    const segments = highlightSegments(text, ['daemon']);
    expect(segments.map((s) => s.text).join('')).toBe(text);
    expect(segments[0]).toEqual({ text: 'daemon', match: true });
    expect(segments.at(-1)).toEqual({ text: 'daemon', match: true });
  });

  it('knows letters beyond ASCII', () => {
    expect(marked('Die Größe, größer, GRÖSSE', ['größe'])).toBe('Die [Größe], größer, GRÖSSE');
    expect(marked('un café, des cafés', ['café'])).toBe('un [café], des cafés');
    expect(marked('Москва и москвичи', ['москва'])).toBe('[Москва] и москвичи');
  });

  it('treats digits as part of a word', () => {
    expect(marked('postgres 16 and 160 and v16', ['16'])).toBe('postgres [16] and 160 and v16');
  });

  it('takes terms literally, not as patterns', () => {
    expect(marked('a.b axb a+b (x)', ['a.b', 'a+b'])).toBe('[a.b] axb [a+b] (x)');
    expect(marked('x', ['(', ')', '[', '\\', '$'])).toBe('x');
  });

  it('ignores repeated terms', () => {
    expect(marked('bread bread', ['bread', 'bread', 'Bread'])).toBe('[bread] [bread]');
  });
});

describe('highlight', () => {
  it('wraps matches in <mark>', () => {
    expect(html('The autovacuum daemon', ['autovacuum', 'daemon'])).toBe('<p>The <mark>autovacuum</mark> <mark>daemon</mark></p>');
  });

  it('escapes markup in the passage instead of rendering it', () => {
    expect(html('<b>autovacuum</b> & <script>alert(1)</script>', ['autovacuum', 'script'])).toBe(
      '<p>&lt;b&gt;<mark>autovacuum</mark>&lt;/b&gt; &amp; &lt;<mark>script</mark>&gt;alert(1)&lt;/<mark>script</mark>&gt;</p>',
    );
  });

  it('does not let a term inject markup', () => {
    expect(html('<mark>x</mark>', ['mark'])).toBe('<p>&lt;<mark>mark</mark>&gt;x&lt;/<mark>mark</mark>&gt;</p>');
  });
});
