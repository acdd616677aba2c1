// "Why did I earn this" for one node: /nodes/<id or name>/earnings. Linked from the node table and the Rewards page.
import { EarningsView } from './earnings-view';

export default async function NodeEarningsPage({ params }: { params: Promise<{ id: string }> }) {
  const { id } = await params;
  return <EarningsView id={decodeURIComponent(id)} />;
}
