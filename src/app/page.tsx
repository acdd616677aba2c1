import { Dashboard } from './_components/dashboard';

export default function HomePage() {
  return <Dashboard />;
}
