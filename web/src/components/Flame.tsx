/** The Hearth mark: a small two-tone flame. */
export function Flame({ size = 22 }: { size?: number }) {
  return (
    <svg className="flame" width={size} height={size} viewBox="0 0 24 24" aria-hidden="true" focusable="false">
      <path
        fill="#f76707"
        d="M12.6 1.8c.4 3-1.1 4.7-2.7 6.4C8.2 10 6.4 11.9 6.4 15a5.6 5.6 0 0 0 11.2 0c0-2.4-1-4-2-5.3-.3 1.4-1 2.4-2 2.9.5-3.7-.1-7.7-1-10.8Z"
      />
      <path
        fill="#ffd43b"
        d="M12.3 12.2c.2 1.6-.6 2.5-1.3 3.3-.6.7-1.2 1.4-1.2 2.5a2.2 2.2 0 0 0 4.4 0c0-1.1-.5-1.9-1.1-2.5 0 .6-.3 1-.7 1.2.2-1.7 0-3.3-.1-4.5Z"
      />
    </svg>
  );
}
