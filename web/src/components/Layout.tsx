import { useState, type ReactNode } from 'react';
import { Flame } from './Flame';
import { Link, useLocation } from '../router';
import { useSession } from '../session';

interface NavItem {
  to: string;
  label: string;
  icon: string;
  adminOnly?: boolean;
}

const NAV: NavItem[] = [
  { to: '/chat', label: 'Chat', icon: 'M4 5h16v10H8l-4 4V5Z' },
  { to: '/knowledge', label: 'Knowledge', icon: 'M5 4h10a4 4 0 0 1 4 4v12H9a4 4 0 0 1-4-4V4Zm4 16V8' },
  { to: '/workflows', label: 'Workflows', icon: 'M4 6h6v4H4V6Zm10 8h6v4h-6v-4ZM7 10v4h7' },
  { to: '/data', label: 'Data', icon: 'M4 6c0-1.7 3.6-3 8-3s8 1.3 8 3-3.6 3-8 3-8-1.3-8-3Zm0 0v12c0 1.7 3.6 3 8 3s8-1.3 8-3V6M4 12c0 1.7 3.6 3 8 3s8-1.3 8-3' },
  { to: '/admin/users', label: 'Admin', icon: 'M12 3l8 3v6c0 5-3.5 8-8 9-4.5-1-8-4-8-9V6l8-3Z', adminOnly: true },
  { to: '/settings', label: 'Settings', icon: 'M12 9a3 3 0 1 0 0 6 3 3 0 0 0 0-6Zm-8 3h2m12 0h2M12 4v2m0 12v2M6.3 6.3l1.4 1.4m8.6 8.6 1.4 1.4m0-11.4-1.4 1.4m-8.6 8.6-1.4 1.4' },
];

function NavIcon({ d }: { d: string }) {
  return (
    <svg width="18" height="18" viewBox="0 0 24 24" aria-hidden="true" focusable="false">
      <path d={d} fill="none" stroke="currentColor" strokeWidth="1.7" strokeLinecap="round" strokeLinejoin="round" />
    </svg>
  );
}

function initials(name: string, email: string): string {
  const source = name.trim() || email;
  const parts = source.split(/[\s@._-]+/).filter(Boolean);
  return ((parts[0]?.[0] ?? '?') + (parts[1]?.[0] ?? '')).toUpperCase();
}

/** The signed-in shell. `fill`: the page takes the whole height and width beside the sidebar (chat). */
export function Layout({ children, fill = false }: { children: ReactNode; fill?: boolean }) {
  const { user, logout } = useSession();
  const { pathname } = useLocation();
  const [leaving, setLeaving] = useState(false);
  if (!user) return null;

  const items = NAV.filter((item) => !item.adminOnly || user.role === 'admin');
  const section = (to: string) => '/' + (to.split('/')[1] ?? '');

  return (
    <div className="shell">
      <aside className="sidebar">
        <Link to="/chat" className="brand" aria-label="Hearth home">
          <Flame size={24} />
          <span>Hearth</span>
        </Link>
        <nav aria-label="Main">
          <ul className="nav-list">
            {items.map((item) => {
              const active = pathname === item.to || pathname.startsWith(section(item.to) + '/') || pathname === section(item.to);
              return (
                <li key={item.to}>
                  <Link to={item.to} className={active ? 'nav-link active' : 'nav-link'} aria-current={active ? 'page' : undefined}>
                    <NavIcon d={item.icon} />
                    {item.label}
                  </Link>
                </li>
              );
            })}
          </ul>
        </nav>
        <div className="sidebar-footer">
          <div className="current-user" data-testid="current-user">
            <span className="avatar" aria-hidden="true">
              {initials(user.name, user.email)}
            </span>
            <span className="current-user-text">
              <span className="current-user-name">{user.name}</span>
              <span className="current-user-email">{user.email}</span>
            </span>
          </div>
          <button
            type="button"
            className="btn btn-ghost btn-block"
            disabled={leaving}
            onClick={() => {
              setLeaving(true);
              void logout().finally(() => setLeaving(false));
            }}
          >
            Log out
          </button>
        </div>
      </aside>
      <main className={fill ? 'content content-fill' : 'content'}>{children}</main>
    </div>
  );
}

export function PageHeader({ title, description, actions }: { title: string; description?: ReactNode; actions?: ReactNode }) {
  return (
    <header className="page-header">
      <div>
        <h1>{title}</h1>
        {description ? <p className="muted">{description}</p> : null}
      </div>
      {actions ? <div className="page-actions">{actions}</div> : null}
    </header>
  );
}
