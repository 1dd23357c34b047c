// Markdown of model answers to safe HTML. Model output is untrusted, so it never becomes markup
// of its own: raw HTML in the Markdown is shown as text, and the result is sanitised by DOMPurify
// as a second line of defence (scripts, event handlers and javascript: URLs removed). Code
// blocks are highlighted by highlight.js (a fixed set of common languages, bundled locally) and
// get a Copy button that the page wires up by event delegation (`data-copy-code`).

import DOMPurify from 'dompurify';
import hljs from 'highlight.js/lib/core';
import bash from 'highlight.js/lib/languages/bash';
import c from 'highlight.js/lib/languages/c';
import cpp from 'highlight.js/lib/languages/cpp';
import csharp from 'highlight.js/lib/languages/csharp';
import css from 'highlight.js/lib/languages/css';
import diff from 'highlight.js/lib/languages/diff';
import go from 'highlight.js/lib/languages/go';
import ini from 'highlight.js/lib/languages/ini';
import java from 'highlight.js/lib/languages/java';
import javascript from 'highlight.js/lib/languages/javascript';
import json from 'highlight.js/lib/languages/json';
import markdown from 'highlight.js/lib/languages/markdown';
import plaintext from 'highlight.js/lib/languages/plaintext';
import python from 'highlight.js/lib/languages/python';
import rust from 'highlight.js/lib/languages/rust';
import shell from 'highlight.js/lib/languages/shell';
import sql from 'highlight.js/lib/languages/sql';
import typescript from 'highlight.js/lib/languages/typescript';
import xml from 'highlight.js/lib/languages/xml';
import yaml from 'highlight.js/lib/languages/yaml';
import { Marked } from 'marked';

const LANGUAGES = {
  bash,
  c,
  cpp,
  csharp,
  css,
  diff,
  go,
  ini,
  java,
  javascript,
  json,
  markdown,
  plaintext,
  python,
  rust,
  shell,
  sql,
  typescript,
  xml,
  yaml,
};
for (const [name, language] of Object.entries(LANGUAGES)) hljs.registerLanguage(name, language);

function escapeHtml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}

const marked = new Marked({
  gfm: true,
  breaks: false,
  renderer: {
    // Raw HTML written by the model is shown, not interpreted.
    html({ text }) {
      return escapeHtml(text);
    },
    code({ text, lang }) {
      const language = (lang ?? '').trim().split(/\s+/)[0]?.toLowerCase() ?? '';
      const known = language !== '' && hljs.getLanguage(language) !== undefined;
      const body = known ? hljs.highlight(text, { language, ignoreIllegals: true }).value : escapeHtml(text);
      const label = language ? `<span class="code-lang">${escapeHtml(language)}</span>` : '<span></span>';
      const className = known ? `hljs language-${escapeHtml(language)}` : 'hljs';
      return (
        `<div class="code-block"><div class="code-head">${label}` +
        `<button type="button" class="code-copy" data-copy-code="">Copy</button></div>` +
        `<pre><code class="${className}">${body}</code></pre></div>\n`
      );
    },
  },
});

/** Markdown to HTML with raw HTML escaped and code highlighted; not yet sanitised. */
export function markdownToHtml(text: string): string {
  return marked.parse(text, { async: false });
}

let hooked = false;

/** Markdown to HTML that is safe to insert into the page. */
export function renderMarkdown(text: string): string {
  if (!hooked) {
    hooked = true;
    // Links in answers open in a new tab and tell the target nothing about Hearth.
    DOMPurify.addHook('afterSanitizeAttributes', (node) => {
      if (node instanceof HTMLAnchorElement && node.hasAttribute('href')) {
        node.setAttribute('target', '_blank');
        node.setAttribute('rel', 'noopener noreferrer nofollow');
      }
      // An image URL the model writes is a way to send data out (prompt injection): only
      // images embedded as data: URLs are kept.
      if (node instanceof HTMLImageElement && !(node.getAttribute('src') ?? '').startsWith('data:')) {
        node.removeAttribute('src');
        node.removeAttribute('srcset');
      }
    });
  }
  return DOMPurify.sanitize(markdownToHtml(text), {
    USE_PROFILES: { html: true },
    FORBID_TAGS: ['style', 'form', 'input', 'textarea', 'select', 'iframe'],
  });
}
