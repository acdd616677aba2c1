// swagger-ui-react ships no type declarations; the props this page passes.
declare module 'swagger-ui-react' {
  import type { ComponentType } from 'react';
  const SwaggerUI: ComponentType<{ url?: string; docExpansion?: 'list' | 'full' | 'none'; deepLinking?: boolean; tryItOutEnabled?: boolean }>;
  export default SwaggerUI;
}
