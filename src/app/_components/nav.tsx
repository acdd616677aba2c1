'use client';
// The console's navigation, on every page: the live dashboard, sessions, nodes, health and the API reference.
// A fixed height, so nothing below it moves while pages load.
import Link from 'next/link';
import { usePathname } from 'next/navigation';

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
      <Link href="/sign-in" className={`console-signin${active('/sign-in') ? ' active' : ''}`}>
        Sign in
      </Link>
    </nav>
  );
}
