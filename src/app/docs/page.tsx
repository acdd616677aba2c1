'use client';
// The REST API reference: /api/openapi.json (generated from the procedures' zod schemas) rendered by
// swagger-ui-react, loaded in the browser only (it touches window at import).
import dynamic from 'next/dynamic';
import 'swagger-ui-react/swagger-ui.css';
import { PageHead } from '../_components/console/page-head';
import { Loading } from '../_components/console/states';

const SwaggerUI = dynamic(() => import('swagger-ui-react'), { ssr: false, loading: () => <Loading what="the API reference" /> });

export default function DocsPage() {
  return (
    <main className="console" data-testid="docs-page">
      <PageHead
        title="API reference"
        sub={
          <>
            Every endpoint a script needs, from <a href="/api/openapi.json">/api/openapi.json</a> (OpenAPI 3.1, generated from the same schemas that check each request). Operator
            calls need <code>Authorization: Bearer &lt;admin token&gt;</code> or a signed-in browser.
          </>
        }
      />
      <div className="swagger-wrap">
        <SwaggerUI url="/api/openapi.json" docExpansion="list" deepLinking />
      </div>
    </main>
  );
}
