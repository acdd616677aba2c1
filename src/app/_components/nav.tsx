'use client';
// The console's navigation, on every page: the live dashboard, sessions, nodes, health and the API reference.
// A fixed height, so nothing below it moves while pages load.
import Link from 'next/link';
import { usePathname } from 'next/navigation';
import { SIGN_IN_PATH, useOperator } from './use-operator';

const LINKS = [
  { href: '/', label: 'Dashboard' },
  { href: '/sessions', label: 'Sessions' },
  { href: '/nodes', label: 'Nodes' },
  { href: '/status', label: 'Health' },
  { href: '/docs', label: 'API' },
];

export function Nav() {
  const pathname = usePathname() ?? '/';
  const active = (href: string) => (href === '/' ? pathname === '/' : pathname === href || pathname.startsWith(`${href}/`));
  return (
    <nav className="console-nav" aria-label="Console">
      <Link href="/" className="console-brand">
        <span aria-hidden>▦</span> HyperGPU
      </Link>
      <ul>
        {LINKS.map((link) => (
          <li key={link.href}>
            <Link href={link.href} className={active(link.href) ? 'active' : undefined} aria-current={active(link.href) ? 'page' : undefined}>
              {link.label}
            </Link>
          </li>
        ))}
      </ul>
      {/* Remounted on each navigation, so it asks again after a sign-in or sign-out elsewhere. */}
      <OperatorLink key={pathname} current={active(SIGN_IN_PATH)} />
    </nav>
  );
}

/** Whether this browser operates (signed in) or only watches; a fixed width so the bar does not shift. */
function OperatorLink({ current }: { current: boolean }) {
  const { operator } = useOperator();
  return (
    <Link href={SIGN_IN_PATH} className={`console-signin${current ? ' active' : ''}`} data-testid="nav-operator" data-state={operator} style={{ minWidth: 90, textAlign: 'right' }}>
      {operator === 'signed-in' ? 'Operator ✓' : 'Sign in'}
    </Link>
  );
}
