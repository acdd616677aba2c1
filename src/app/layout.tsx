import type { Metadata, Viewport } from 'next';
import type { ReactNode } from 'react';
import { TRPCReactProvider } from './_trpc/client';
import { Nav } from './_components/nav';
import './globals.css';
import './console.css';

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
        <TRPCReactProvider>
          <Nav />
          {children}
        </TRPCReactProvider>
      </body>
    </html>
  );
}
