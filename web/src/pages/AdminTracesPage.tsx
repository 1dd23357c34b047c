import { useEffect, useId, useMemo, useState, type ReactNode } from 'react';
import { api, type ApiError } from '../api/client';
import type { AdminModel, Trace, UsageSummary, User } from '../api/types';
import { FormError, formatDate, toApiError } from '../components/forms';
import { PageHeader } from '../components/Layout';

const PERIODS = [
  { label: 'Last hour', hours: 1 },
  { label: 'Last 24 hours', hours: 24 },
  { label: 'Last 7 days', hours: 24 * 7 },
  { label: 'Last 30 days', hours: 24 * 30 },
  { label: 'Any time', hours: 0 },
];

const USAGE_DAYS = [1, 7, 30, 90];
const TRACE_LIMIT = 100;

/** "$0.0123", "<$0.0001" or "—". */
export function formatCost(value: number | null | undefined): string {
  if (value === null || value === undefined) return '—';
  if (value > 0 && value < 0.0001) return '<$0.0001';
  return `$${value.toFixed(value < 1 ? 4 : 2)}`;
}

function formatCount(value: number): string {
  return value.toLocaleString();
}

function formatMs(value: number | null | undefined): string {
  if (value === null || value === undefined) return '—';
  return value < 1000 ? `${value} ms` : `${(value / 1000).toFixed(1)} s`;
}

interface Totals {
  calls: number;
  input_tokens: number;
  output_tokens: number;
  cost_usd: number | null;
}

/** Sums of a usage summary; cost is null only when no row has one. */
export function usageTotals(rows: UsageSummary[]): Totals {
  return rows.reduce<Totals>(
    (sum, r) => ({
      calls: sum.calls + r.calls,
      input_tokens: sum.input_tokens + r.input_tokens,
      output_tokens: sum.output_tokens + r.output_tokens,
      cost_usd: r.cost_usd == null ? sum.cost_usd : (sum.cost_usd ?? 0) + r.cost_usd,
    }),
    { calls: 0, input_tokens: 0, output_tokens: 0, cost_usd: null },
  );
}

function Select({ label, value, onChange, children }: { label: string; value: string; onChange: (v: string) => void; children: ReactNode }) {
  const id = useId();
  return (
    <div className="field">
      <label htmlFor={id}>{label}</label>
      <select id={id} value={value} onChange={(e) => onChange(e.target.value)}>
        {children}
      </select>
    </div>
  );
}

function UsageSection({ userId, emailOf }: { userId: string; emailOf: (id: string | null | undefined) => string }) {
  const [days, setDays] = useState('30');
  const [rows, setRows] = useState<UsageSummary[] | null>(null);
  const [error, setError] = useState<ApiError | null>(null);

  useEffect(() => {
    let cancelled = false;
    api
      .usageSummary(Number(days), userId || undefined)
      .then((list) => {
        if (cancelled) return;
        setRows(list);
        setError(null);
      })
      .catch((err: unknown) => {
        if (!cancelled) setError(toApiError(err));
      });
    return () => {
      cancelled = true;
    };
  }, [days, userId]);

  const sorted = useMemo(
    () => (rows ?? []).slice().sort((a, b) => emailOf(a.user_id).localeCompare(emailOf(b.user_id)) || a.model.localeCompare(b.model)),
    [rows, emailOf],
  );
  const totals = usageTotals(sorted);

  return (
    <section className="card" aria-labelledby="usage-title">
      <div className="card-header card-header-row">
        <div>
          <h2 id="usage-title">Usage</h2>
          <p className="muted">Calls, tokens and cost per user and model.</p>
        </div>
        <Select label="Period" value={days} onChange={setDays}>
          {USAGE_DAYS.map((d) => (
            <option key={d} value={String(d)}>
              {d === 1 ? 'Last day' : `Last ${d} days`}
            </option>
          ))}
        </Select>
      </div>
      <FormError error={error} />
      {rows === null ? (
        error ? null : <p className="muted">Loading usage…</p>
      ) : rows.length === 0 ? (
        <p className="empty">No model calls in this period.</p>
      ) : (
        <div className="table-wrap">
          <table data-testid="usage-table">
            <thead>
              <tr>
                <th scope="col">User</th>
                <th scope="col">Model</th>
                <th scope="col" className="num">
                  Calls
                </th>
                <th scope="col" className="num">
                  Input tokens
                </th>
                <th scope="col" className="num">
                  Output tokens
                </th>
                <th scope="col" className="num">
                  Cost
                </th>
              </tr>
            </thead>
            <tbody>
              {sorted.map((r) => (
                <tr key={`${r.user_id ?? ''}/${r.model}`}>
                  <td>{emailOf(r.user_id)}</td>
                  <td>{r.model}</td>
                  <td className="num">{formatCount(r.calls)}</td>
                  <td className="num">{formatCount(r.input_tokens)}</td>
                  <td className="num">{formatCount(r.output_tokens)}</td>
                  <td className="num">{formatCost(r.cost_usd)}</td>
                </tr>
              ))}
            </tbody>
            <tfoot>
              <tr>
                <th scope="row" colSpan={2}>
                  Total
                </th>
                <td className="num">{formatCount(totals.calls)}</td>
                <td className="num">{formatCount(totals.input_tokens)}</td>
                <td className="num">{formatCount(totals.output_tokens)}</td>
                <td className="num">{formatCost(totals.cost_usd)}</td>
              </tr>
            </tfoot>
          </table>
        </div>
      )}
    </section>
  );
}

export function AdminTracesPage() {
  const [users, setUsers] = useState<User[]>([]);
  const [models, setModels] = useState<AdminModel[]>([]);
  const [userId, setUserId] = useState('');
  const [model, setModel] = useState('');
  const [period, setPeriod] = useState('24');
  const [errorsOnly, setErrorsOnly] = useState(false);
  const [version, setVersion] = useState(0);
  const [traces, setTraces] = useState<Trace[] | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  const errorsId = useId();

  useEffect(() => {
    Promise.all([api.listUsers(), api.listAdminModels()])
      .then(([u, m]) => {
        setUsers(u);
        setModels(m);
      })
      .catch((err: unknown) => setError(toApiError(err)));
  }, []);

  useEffect(() => {
    let cancelled = false;
    const hours = Number(period);
    const since = hours > 0 ? new Date(Date.now() - hours * 3600_000).toISOString() : undefined;
    api
      .listTraces({ user_id: userId || undefined, model: model || undefined, since, errors_only: errorsOnly, limit: TRACE_LIMIT })
      .then((list) => {
        if (cancelled) return;
        setTraces(list);
        setError(null);
      })
      .catch((err: unknown) => {
        if (!cancelled) setError(toApiError(err));
      });
    return () => {
      cancelled = true;
    };
  }, [userId, model, period, errorsOnly, version]);

  const emailOf = useMemo(() => {
    const byId = new Map(users.map((u) => [u.id, u.email]));
    return (id: string | null | undefined) => (id ? (byId.get(id) ?? id.slice(0, 8)) : 'API key / system');
  }, [users]);

  const modelNames = useMemo(() => Array.from(new Set(models.map((m) => m.name))).sort(), [models]);

  return (
    <>
      <PageHeader title="Traces" description="Every call to a model: who, which model, tokens, latency, cost and errors." />
      <section className="card" aria-labelledby="traces-title">
        <div className="card-header">
          <h2 id="traces-title">
            Model calls {traces ? <span className="count">{traces.length}</span> : null}
          </h2>
        </div>
        <div className="inline-form filters">
          <Select label="User" value={userId} onChange={setUserId}>
            <option value="">All users</option>
            {users.map((u) => (
              <option key={u.id} value={u.id}>
                {u.email}
              </option>
            ))}
          </Select>
          <Select label="Model" value={model} onChange={setModel}>
            <option value="">All models</option>
            {modelNames.map((name) => (
              <option key={name} value={name}>
                {name}
              </option>
            ))}
          </Select>
          <Select label="Since" value={period} onChange={setPeriod}>
            {PERIODS.map((p) => (
              <option key={p.hours} value={String(p.hours)}>
                {p.label}
              </option>
            ))}
          </Select>
          <div className="check check-inline">
            <input id={errorsId} type="checkbox" checked={errorsOnly} onChange={(e) => setErrorsOnly(e.target.checked)} />
            <label htmlFor={errorsId}>Errors only</label>
          </div>
          <button type="button" className="btn btn-secondary" onClick={() => setVersion((v) => v + 1)}>
            Refresh
          </button>
        </div>
        <FormError error={error} />
        {traces === null ? (
          error ? null : <p className="muted">Loading calls…</p>
        ) : traces.length === 0 ? (
          <p className="empty">No calls match.</p>
        ) : (
          <div className="table-wrap">
            <table data-testid="traces-table" className="table-compact">
              <thead>
                <tr>
                  <th scope="col">Time</th>
                  <th scope="col">User</th>
                  <th scope="col">Model</th>
                  <th scope="col">Source</th>
                  <th scope="col" className="num" title="Input / output tokens">
                    Tokens
                  </th>
                  <th scope="col" className="num" title="Whole call (time to first token)">
                    Latency
                  </th>
                  <th scope="col" className="num">
                    Tools
                  </th>
                  <th scope="col" className="num">
                    Cost
                  </th>
                  <th scope="col">Error</th>
                </tr>
              </thead>
              <tbody>
                {traces.map((t) => (
                  <tr key={t.id} className={t.error ? 'row-error-trace' : undefined}>
                    <td className="nowrap">{formatDate(t.created_at)}</td>
                    <td>{emailOf(t.user_id)}</td>
                    <td className="nowrap">{t.model}</td>
                    <td>
                      <span className="badge">{t.source === 'openai_api' ? 'API' : t.source}</span>
                    </td>
                    <td className="num nowrap">
                      {formatCount(t.input_tokens)} / {formatCount(t.output_tokens)}
                    </td>
                    <td className="num nowrap">
                      {formatMs(t.latency_ms)}
                      {t.ttft_ms !== null ? <span className="muted"> ({formatMs(t.ttft_ms)})</span> : null}
                    </td>
                    <td className="num">{t.tool_calls || '—'}</td>
                    <td className="num">{formatCost(t.cost_usd)}</td>
                    <td className="cell-error" title={t.error ?? undefined}>
                      {t.error ?? ''}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
        {traces && traces.length >= TRACE_LIMIT ? <p className="muted small table-note">Showing the newest {TRACE_LIMIT}.</p> : null}
      </section>
      <UsageSection userId={userId} emailOf={emailOf} />
    </>
  );
}
