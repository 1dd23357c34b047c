// Marks a search's terms in a passage. The server returns the query's words (`terms`: lower-cased
// runs of letters and digits, split the way Rust's `char::is_alphanumeric` splits them); this
// finds them in the text case-insensitively, as whole words, and returns React nodes: text stays
// text (React escapes it), so a passage holding markup is shown, never interpreted.

import { createElement, type ReactNode } from 'react';

/** A piece of a passage: `match` when it is one of the terms. */
export interface Segment {
  text: string;
  match: boolean;
}

/** A letter or digit: the characters the server's tokenizer keeps inside a word. */
const WORD_CHAR = '[\\p{Alphabetic}\\p{N}]';

/** Escapes the characters with a meaning in a pattern (only these may be escaped under the `u` flag). */
function escapeRegExp(text: string): string {
  return text.replace(/[\\^$.*+?()[\]{}|/]/g, '\\$&');
}

/**
 * One regular expression matching any of `terms` as a whole word, or null when there is nothing
 * to look for. Longer terms come first, so of two terms where one begins the other the longer wins.
 */
export function termsPattern(terms: readonly string[]): RegExp | null {
  const unique = [...new Set(terms.map((t) => t.trim()).filter(Boolean))];
  if (unique.length === 0) return null;
  unique.sort((a, b) => b.length - a.length);
  const alternatives = unique.map(escapeRegExp).join('|');
  return new RegExp(`(?<!${WORD_CHAR})(?:${alternatives})(?!${WORD_CHAR})`, 'giu');
}

/** Splits `text` into plain and matching segments (in order, together exactly `text`). */
export function highlightSegments(text: string, terms: readonly string[]): Segment[] {
  const pattern = termsPattern(terms);
  if (!pattern || !text) return text ? [{ text, match: false }] : [];
  const segments: Segment[] = [];
  let last = 0;
  for (const found of text.matchAll(pattern)) {
    const start = found.index;
    if (found[0].length === 0) continue;
    if (start > last) segments.push({ text: text.slice(last, start), match: false });
    segments.push({ text: found[0], match: true });
    last = start + found[0].length;
  }
  if (last < text.length) segments.push({ text: text.slice(last), match: false });
  return segments;
}

/** `text` as React nodes with each term wrapped in `<mark>`. */
export function highlight(text: string, terms: readonly string[]): ReactNode[] {
  return highlightSegments(text, terms).map((segment, i) => (segment.match ? createElement('mark', { key: i }, segment.text) : segment.text));
}
