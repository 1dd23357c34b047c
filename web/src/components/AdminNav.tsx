import { TabNav } from './TabNav';

const TABS = [
  { to: '/admin/users', label: 'Users' },
  { to: '/admin/providers', label: 'Providers' },
  { to: '/admin/models', label: 'Models' },
  { to: '/admin/traces', label: 'Traces' },
];

/** The tabs of the Admin area. */
export function AdminNav() {
  return <TabNav label="Admin" tabs={TABS} />;
}
