// Markdown of model answers to safe HTML. Model output is untrusted, so it never becomes markup
// of its own: raw HTML in the Markdown is shown as text, and the result is sanitised by DOMPurify
// as a second line of defence (scripts, event handlers and javascript: URLs removed). Code
// blocks are highlighted by highlight.js (a fixed set of common languages, bundled locally) and
// get a Copy button that the page wires up by event delegation (`data-copy-code`).
//
// Citations: given the answer's sources, a `[n]` in the text whose n is one of them becomes a
// small button (`data-cite="n"`, also wired up by delegation). This is a marked inline extension,
// so it only sees prose: code spans and code blocks are tokenized before it and keep `[1]` as
// written, as do links (`[1](url)`, `[1]` with a `[1]: url` definition) and numbers that are not
// a source's. The tooltip (document, headings, the passage's start) is escaped like all text.

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
import { Marked, type Tokens } from 'marked';
import type { Source } from '../api/types';
import { citationTooltip, sourcesByNumber } from './sources';

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

const NO_SOURCES: ReadonlyMap<number, Source> = new Map();

/**
 * The sources of the answer being rendered. Set only for the duration of one (synchronous)
 * `parse` call by `markdownToHtml`, which is how the shared marked instance's citation extension
 * knows which numbers are real.
 */
let citable: ReadonlyMap<number, Source> = NO_SOURCES;

/** `[12]` at the start, not followed by `(` (that is a link). */
const CITATION = /^\[(\d{1,4})\](?!\()/;

interface CitationToken extends Tokens.Generic {
  type: 'citation';
  raw: string;
  n: number;
}

const marked = new Marked({
  gfm: true,
  breaks: false,
  extensions: [
    {
      name: 'citation',
      level: 'inline',
      start(src) {
        if (citable.size === 0) return undefined;
        const index = src.search(/\[\d/);
        return index < 0 ? undefined : index;
      },
      tokenizer(src): CitationToken | undefined {
        if (citable.size === 0 || this.lexer.state.inLink) return undefined;
        const match = CITATION.exec(src);
        if (!match) return undefined;
        const n = Number(match[1]);
        // A reference-style link the answer defines itself stays a link.
        if (!citable.has(n) || this.lexer.tokens.links[match[1]!] !== undefined) return undefined;
        return { type: 'citation', raw: match[0], n };
      },
      renderer(token) {
        const n = Number((token as CitationToken).n);
        const source = citable.get(n);
        if (!source) return escapeHtml(token.raw);
        return (
          `<sup class="citation"><button type="button" class="citation-ref" data-cite="${n}" ` +
          `aria-label="Source ${n}" title="${escapeHtml(citationTooltip(source))}">${n}</button></sup>`
        );
      },
    },
  ],
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

/**
 * Markdown to HTML with raw HTML escaped, code highlighted and `[n]` of the given sources turned
 * into citation buttons; not yet sanitised.
 */
export function markdownToHtml(text: string, sources?: readonly Source[]): string {
  citable = sources && sources.length > 0 ? sourcesByNumber(sources) : NO_SOURCES;
  try {
    return marked.parse(text, { async: false });
  } finally {
    citable = NO_SOURCES;
  }
}

let hooked = false;

/** Markdown (with citations of `sources`) to HTML that is safe to insert into the page. */
export function renderMarkdown(text: string, sources?: readonly Source[]): string {
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
  return DOMPurify.sanitize(markdownToHtml(text, sources), {
    USE_PROFILES: { html: true },
    FORBID_TAGS: ['style', 'form', 'input', 'textarea', 'select', 'iframe'],
  });
}
