import type { Metadata, Viewport } from 'next';
import type { ReactNode } from 'react';
import { TRPCReactProvider } from './_trpc/client';
import './globals.css';

export const metadata: Metadata = {
  title: 'HyperGPU — training dashboard',
  description: 'Live view of a HyperGPU coordinator: session, metrics, nodes.',
};

export const viewport: Viewport = {
  colorScheme: 'dark',
  themeColor: '#0b0f17',
};

export default function RootLayout({ children }: { children: ReactNode }) {
  return (
    <html lang="en">
      <body>
        <TRPCReactProvider>{children}</TRPCReactProvider>
      </body>
    </html>
  );
}
