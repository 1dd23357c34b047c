import { Component, lazy, Suspense, type ReactNode } from 'react';
import { Flame } from './components/Flame';
import { AdminNav } from './components/AdminNav';
import { Layout, PageHeader } from './components/Layout';
import { AdminModelsPage } from './pages/AdminModelsPage';
import { AdminProvidersPage } from './pages/AdminProvidersPage';
import { AdminTracesPage } from './pages/AdminTracesPage';
import { AdminUsersPage } from './pages/AdminUsersPage';
import { ChatPage } from './pages/ChatPage';
import { LoginPage, RegisterPage, SetupPage } from './pages/AuthPages';
import { ComingSoon, PLACEHOLDERS } from './pages/ComingSoon';
import { SettingsPage } from './pages/SettingsPage';
import { Link, Navigate, useLocation } from './router';
import { SessionProvider, useSession } from './session';

// Knowledge and Settings › Memory are their own chunks: the main bundle stays under Vite's size warning.
const KnowledgePage = lazy(() => import('./pages/KnowledgePage').then((m) => ({ default: m.KnowledgePage })));
const KnowledgeBasePage = lazy(() => import('./pages/KnowledgePage').then((m) => ({ default: m.KnowledgeBasePage })));
const MemoryPage = lazy(() => import('./pages/MemoryPage').then((m) => ({ default: m.MemoryPage })));

/**
 * Shows a failure of a lazily loaded page in place of the page, not a blank app: the usual cause
 * is an upgrade while the tab was open (the old chunk is gone), which a reload fixes.
 */
class PageBoundary extends Component<{ children: ReactNode }, { failed: boolean }> {
  override state = { failed: false };

  static getDerivedStateFromError(): { failed: boolean } {
    return { failed: true };
  }

  override render() {
    if (!this.state.failed) return this.props.children;
    return (
      <div className="alert alert-error" role="alert">
        This page could not be shown; Hearth may have been updated.{' '}
        <button type="button" className="btn btn-link" onClick={() => window.location.reload()}>
          Reload
        </button>
      </div>
    );
  }
}

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

const ADMIN_PAGES: Record<string, () => ReactNode> = {
  '/admin/users': () => <AdminUsersPage />,
  '/admin/providers': () => <AdminProvidersPage />,
  '/admin/models': () => <AdminModelsPage />,
  '/admin/traces': () => <AdminTracesPage />,
};

/** `/chat` → null (a new chat), `/chat/<id>` → the id, anything else → undefined. */
function chatConversation(pathname: string): string | null | undefined {
  if (pathname === '/chat') return null;
  const match = /^\/chat\/([^/]+)$/.exec(pathname);
  return match ? decodeURIComponent(match[1]!) : undefined;
}

/** `/knowledge` → null (the list), `/knowledge/<id>` → the id, anything else → undefined. */
function knowledgeBase(pathname: string): string | null | undefined {
  if (pathname === '/knowledge') return null;
  const match = /^\/knowledge\/([^/]+)$/.exec(pathname);
  return match ? decodeURIComponent(match[1]!) : undefined;
}

function AppPage({ pathname }: { pathname: string }) {
  const { user } = useSession();
  const placeholder = PLACEHOLDERS[pathname];
  if (placeholder) return <ComingSoon {...placeholder} />;
  const conversation = chatConversation(pathname);
  if (conversation !== undefined) return <ChatPage conversationId={conversation} />;
  const kb = knowledgeBase(pathname);
  if (kb !== undefined) {
    return (
      <PageBoundary>
        <Suspense fallback={<p className="muted">Loading…</p>}>{kb === null ? <KnowledgePage /> : <KnowledgeBasePage id={kb} />}</Suspense>
      </PageBoundary>
    );
  }
  const adminPage = ADMIN_PAGES[pathname];
  if (adminPage) {
    if (user?.role !== 'admin') {
      return (
        <>
          <PageHeader title="Not allowed" />
          <p className="card">Only administrators can open the Admin area.</p>
        </>
      );
    }
    return (
      <>
        <AdminNav />
        {adminPage()}
      </>
    );
  }
  switch (pathname) {
    case '/settings':
      return <SettingsPage />;
    case '/settings/memory':
      return (
        <PageBoundary>
          <Suspense fallback={<p className="muted">Loading…</p>}>
            <MemoryPage />
          </Suspense>
        </PageBoundary>
      );
    case '/admin':
      return <Navigate to="/admin/users" />;
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
        <Layout fill={chatConversation(pathname) !== undefined}>
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
