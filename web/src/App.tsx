import type { ReactNode } from 'react';
import { Flame } from './components/Flame';
import { Layout, PageHeader } from './components/Layout';
import { AdminUsersPage } from './pages/AdminUsersPage';
import { LoginPage, RegisterPage, SetupPage } from './pages/AuthPages';
import { ComingSoon, PLACEHOLDERS } from './pages/ComingSoon';
import { SettingsPage } from './pages/SettingsPage';
import { Link, Navigate, useLocation } from './router';
import { SessionProvider, useSession } from './session';

const PUBLIC_PATHS = new Set(['/login', '/register', '/setup']);

function Splash({ children }: { children?: ReactNode }) {
  return (
    <main className="auth-screen">
      <div className="splash">
        <Flame size={40} />
        {children ?? <p className="muted">Loading Hearth…</p>}
      </div>
    </main>
  );
}

function AppPage({ pathname }: { pathname: string }) {
  const { user } = useSession();
  const placeholder = PLACEHOLDERS[pathname];
  if (placeholder) return <ComingSoon {...placeholder} />;
  switch (pathname) {
    case '/settings':
      return <SettingsPage />;
    case '/admin':
      return <Navigate to="/admin/users" />;
    case '/admin/users':
      if (user?.role !== 'admin') {
        return (
          <>
            <PageHeader title="Not allowed" />
            <p className="card">Only administrators can manage users.</p>
          </>
        );
      }
      return <AdminUsersPage />;
    default:
      return (
        <>
          <PageHeader title="Page not found" />
          <p className="card">
            There is nothing at <code>{pathname}</code>. <Link to="/chat">Go to Chat</Link>.
          </p>
        </>
      );
  }
}

function Routes() {
  const { phase, bootError, retryBoot } = useSession();
  const { pathname } = useLocation();

  switch (phase) {
    case 'loading':
      return <Splash />;
    case 'error':
      return (
        <Splash>
          <div className="alert alert-error" role="alert">
            {bootError}
          </div>
          <button type="button" className="btn btn-primary" onClick={retryBoot}>
            Try again
          </button>
        </Splash>
      );
    case 'setup':
      return pathname === '/setup' ? <SetupPage /> : <Navigate to="/setup" />;
    case 'anonymous':
      if (pathname === '/login') return <LoginPage />;
      if (pathname === '/register') return <RegisterPage />;
      return <Navigate to="/login" />;
    case 'authenticated':
      if (pathname === '/' || PUBLIC_PATHS.has(pathname)) return <Navigate to="/chat" />;
      return (
        <Layout>
          <AppPage pathname={pathname} />
        </Layout>
      );
  }
}

export function App() {
  return (
    <SessionProvider>
      <Routes />
    </SessionProvider>
  );
}
