// The knowledge-base passages of an answer (`MessageView.sources`, cited as `[n]`): how they are
// named in the Sources list, the citation tooltips and the passage panel. Plain text only; the
// callers escape it (React, or `escapeHtml` in markdown.ts).

import type { Source } from '../api/types';

/** `bread.txt › Baking > Rising`: the document, then the heading path when there is one. */
export function sourceTitle(source: Source): string {
  const headings = source.headings.trim();
  return headings ? `${source.document_name} › ${headings}` : source.document_name;
}

/** `page 3`, or '' when the document has no pages. */
export function sourcePage(source: Source): string {
  return source.page === null || source.page === undefined ? '' : `page ${source.page}`;
}

/** The first `max` characters of a passage on one line, with an ellipsis when cut. */
export function snippet(text: string, max = 160): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  if (flat.length <= max) return flat;
  return `${flat.slice(0, max - 1).trimEnd()}…`;
}

/** The tooltip of a citation: where the passage is from and how it begins. */
export function citationTooltip(source: Source): string {
  const page = sourcePage(source);
  const where = page ? `${sourceTitle(source)}, ${page}` : sourceTitle(source);
  const start = snippet(source.text);
  return start ? `${where}: ${start}` : where;
}

/** The sources by number. */
export function sourcesByNumber(sources: readonly Source[] | undefined): Map<number, Source> {
  return new Map((sources ?? []).map((s) => [s.n, s]));
}

/** The path of a knowledge base's page. */
export const knowledgeBaseHref = (id: string) => `/knowledge/${encodeURIComponent(id)}`;
