import { useDeferredValue, useMemo, type MouseEvent } from 'react';
import 'highlight.js/styles/github.css';
import { renderMarkdown } from '../../chat/markdown';
import { copyText } from '../CopyBox';

/** Copy buttons of code blocks, handled by delegation (the HTML is not React's). */
async function onCopyClick(event: MouseEvent<HTMLDivElement>) {
  const target = event.target;
  if (!(target instanceof HTMLElement)) return;
  const button = target.closest<HTMLButtonElement>('[data-copy-code]');
  const code = button?.closest('.code-block')?.querySelector<HTMLElement>('pre code');
  if (!button || !code) return;
  const ok = await copyText(code.innerText, code);
  button.textContent = ok ? 'Copied' : 'Select and copy';
  setTimeout(() => {
    button.textContent = 'Copy';
  }, 2000);
}

/** An answer's Markdown, rendered safely (see chat/markdown.ts). */
export function Markdown({ text }: { text: string }) {
  // While an answer streams, renders may be skipped when deltas come faster than the page can
  // re-render the whole answer; the latest text always renders in the end.
  const deferred = useDeferredValue(text);
  const html = useMemo(() => renderMarkdown(deferred), [deferred]);
  return <div className="markdown" onClick={(e) => void onCopyClick(e)} dangerouslySetInnerHTML={{ __html: html }} />;
}
