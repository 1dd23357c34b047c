import { Link, useLocation } from '../router';

const TABS = [
  { to: '/settings', label: 'Account' },
  { to: '/settings/memory', label: 'Memory' },
];

/** The tabs of Settings. */
export function SettingsNav() {
  const { pathname } = useLocation();
  return (
    <nav className="tabs" aria-label="Settings">
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
