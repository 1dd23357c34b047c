import { useDeferredValue, useMemo, type MouseEvent } from 'react';
import 'highlight.js/styles/github.css';
import type { Source } from '../../api/types';
import { renderMarkdown } from '../../chat/markdown';
import { copyText } from '../CopyBox';

/** Copy buttons of code blocks, handled by delegation (the HTML is not React's). */
async function copyCode(button: HTMLButtonElement) {
  const code = button.closest('.code-block')?.querySelector<HTMLElement>('pre code');
  if (!code) return;
  const ok = await copyText(code.innerText, code);
  button.textContent = ok ? 'Copied' : 'Select and copy';
  setTimeout(() => {
    button.textContent = 'Copy';
  }, 2000);
}

interface Props {
  text: string;
  /** The answer's sources: `[n]` of one of them becomes a citation button. */
  sources?: readonly Source[];
  /** A citation was clicked. */
  onCite?: (n: number) => void;
}

/** An answer's Markdown, rendered safely (see chat/markdown.ts). */
export function Markdown({ text, sources, onCite }: Props) {
  // While an answer streams, renders may be skipped when deltas come faster than the page can
  // re-render the whole answer; the latest text always renders in the end.
  const deferred = useDeferredValue(text);
  const html = useMemo(() => renderMarkdown(deferred, sources), [deferred, sources]);

  const onClick = (event: MouseEvent<HTMLDivElement>) => {
    const target = event.target;
    if (!(target instanceof Element)) return;
    const copy = target.closest<HTMLButtonElement>('[data-copy-code]');
    if (copy) {
      void copyCode(copy);
      return;
    }
    const cite = target.closest<HTMLElement>('[data-cite]');
    if (cite && onCite) {
      const n = Number(cite.dataset.cite);
      if (Number.isInteger(n)) onCite(n);
    }
  };

  return <div className="markdown" onClick={onClick} dangerouslySetInnerHTML={{ __html: html }} />;
}
