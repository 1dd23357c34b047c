// Form building blocks: labelled fields that light up when the server names them in an error,
// and the error box shown next to a form.

import { useId, type InputHTMLAttributes, type ReactNode } from 'react';
import { ApiError, NETWORK_ERROR_MESSAGE } from '../api/client';

/** Any thrown value as an ApiError, so forms have one shape to show. */
export function toApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  if (err instanceof TypeError) return new ApiError(0, 'network_error', NETWORK_ERROR_MESSAGE);
  return new ApiError(0, 'unexpected', err instanceof Error ? err.message : 'Something went wrong.');
}

type FieldProps = Omit<InputHTMLAttributes<HTMLInputElement>, 'onChange' | 'value' | 'id' | 'name'> & {
  /** The visible label; also how tests find the input. */
  label: string;
  /** The API field name, matched against `error.field`. */
  name: string;
  value: string;
  onChange: (value: string) => void;
  error?: ApiError | null;
  hint?: ReactNode;
};

export function Field({ label, name, value, onChange, error, hint, type = 'text', ...rest }: FieldProps) {
  const id = useId();
  const invalid = error?.field === name;
  const hintId = hint ? `${id}-hint` : undefined;
  return (
    <div className={invalid ? 'field field-invalid' : 'field'}>
      <label htmlFor={id}>{label}</label>
      <input
        id={id}
        name={name}
        type={type}
        value={value}
        onChange={(e) => onChange(e.target.value)}
        aria-invalid={invalid || undefined}
        aria-describedby={hintId}
        {...rest}
      />
      {hint ? (
        <p className="field-hint" id={hintId}>
          {hint}
        </p>
      ) : null}
    </div>
  );
}

/** The server's (or network's) message, shown next to its form; the named field is highlighted by <Field>. */
export function FormError({ error }: { error: ApiError | null | undefined }) {
  if (!error) return null;
  return (
    <div className="alert alert-error" role="alert">
      {error.message}
    </div>
  );
}

export function formatDate(value: string | null | undefined, fallback = '—', withTime = true): string {
  if (!value) return fallback;
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) return value;
  return withTime
    ? date.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' })
    : date.toLocaleDateString(undefined, { dateStyle: 'medium' });
}
