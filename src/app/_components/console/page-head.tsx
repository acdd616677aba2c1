// The title row of a console page: a heading, a line under it, and actions on the right.
import type { ReactNode } from 'react';

export function PageHead({ title, sub, actions }: { title: ReactNode; sub?: ReactNode; actions?: ReactNode }) {
  return (
    <header className="console-head">
      <div>
        <h1>{title}</h1>
        {sub && <p className="muted">{sub}</p>}
      </div>
      {actions && <div className="console-actions">{actions}</div>}
    </header>
  );
}
