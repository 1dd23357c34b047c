import { Link, useLocation } from '../router';

/** One tab: where it leads and what it says. */
export interface Tab {
  to: string;
  label: string;
}

/** A row of tabs linking to sibling pages; the current page's tab is marked. */
export function TabNav({ label, tabs }: { label: string; tabs: readonly Tab[] }) {
  const { pathname } = useLocation();
  return (
    <nav className="tabs" aria-label={label}>
      {tabs.map((tab) => (
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
