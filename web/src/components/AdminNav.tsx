import { Link, useLocation } from '../router';

const TABS = [
  { to: '/admin/users', label: 'Users' },
  { to: '/admin/providers', label: 'Providers' },
  { to: '/admin/models', label: 'Models' },
  { to: '/admin/traces', label: 'Traces' },
];

/** The tabs of the Admin area. */
export function AdminNav() {
  const { pathname } = useLocation();
  return (
    <nav className="tabs" aria-label="Admin">
      {TABS.map((tab) => (
        <Link
          key={tab.to}
          to={tab.to}
          className={pathname === tab.to ? 'tab active' : 'tab'}
          aria-current={pathname === tab.to ? 'page' : undefined}
        >
          {tab.label}
        </Link>
      ))}
    </nav>
  );
}
