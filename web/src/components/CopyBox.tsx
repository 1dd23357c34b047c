import { useEffect, useRef, useState } from 'react';

/** Copies text to the clipboard, falling back to selecting `fallbackNode` and a copy command. */
export async function copyText(text: string, fallbackNode: HTMLElement | null): Promise<boolean> {
  try {
    if (navigator.clipboard && window.isSecureContext) {
      await navigator.clipboard.writeText(text);
      return true;
    }
  } catch {
    // Fall back to a selection copy below.
  }
  if (!fallbackNode) return false;
  const range = document.createRange();
  range.selectNodeContents(fallbackNode);
  const selection = window.getSelection();
  selection?.removeAllRanges();
  selection?.addRange(range);
  try {
    return document.execCommand('copy');
  } catch {
    return false;
  }
}

interface CopyBoxProps {
  value: string;
  /** data-testid for the element holding exactly the secret text. */
  testId?: string;
  label: string;
}

/** A monospace secret with a Copy button. */
export function CopyBox({ value, testId, label }: CopyBoxProps) {
  const codeRef = useRef<HTMLElement>(null);
  const [state, setState] = useState<'idle' | 'copied' | 'failed'>('idle');

  useEffect(() => {
    if (state === 'idle') return;
    const timer = setTimeout(() => setState('idle'), 2000);
    return () => clearTimeout(timer);
  }, [state]);

  return (
    <div className="copy-box">
      <code ref={codeRef} data-testid={testId} aria-label={label} className="secret">
        {value}
      </code>
      <button
        type="button"
        className="btn btn-secondary"
        onClick={async () => setState((await copyText(value, codeRef.current)) ? 'copied' : 'failed')}
      >
        {state === 'copied' ? 'Copied' : state === 'failed' ? 'Select and copy' : 'Copy'}
      </button>
    </div>
  );
}
