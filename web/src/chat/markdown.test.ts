import { describe, expect, it } from 'vitest';
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
