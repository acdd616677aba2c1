'use client';
// A new session from the browser: model, dataset, optimizer and rate, batch, when to stop, aggregation rule and
// minimum nodes. The server's own input schema checks it; its reasons come back field by field and show next to
// the field. ?fromSession=&round= starts from that checkpoint (its session's settings are the defaults).
import { Suspense, useEffect, useState, type FormEvent } from 'react';
import { useRouter, useSearchParams } from 'next/navigation';
import { useMutation, useQuery } from '@tanstack/react-query';
import { useTRPC } from '../../_trpc/client';
import { PageHead } from '../../_components/console/page-head';
import { fieldIssues } from '../../_components/console/states';

type Stop = 'rounds' | 'targetAccuracy' | 'maxSamples';
type Rule = 'mean' | 'median' | 'trimmed-mean' | 'multi-krum';

interface FormState {
  model: 'mlp' | 'cnn' | 'mlp2nn';
  dataset: string;
  optimizer: 'sgd' | 'adam';
  learningRate: string;
  batchSize: string;
  stop: Stop;
  stopValue: string;
  rule: Rule;
  ruleParam: string;
  minUpdates: string;
}

const INITIAL: FormState = { model: 'mlp', dataset: 'mnist', optimizer: 'adam', learningRate: '0.002', batchSize: '128', stop: 'targetAccuracy', stopValue: '0.95', rule: 'mean', ruleParam: '', minUpdates: '1' };

/** A number field as typed: empty is "leave it to the default", anything else is sent as a number for the server to judge. */
const num = (text: string): number | undefined => (text.trim() === '' ? undefined : Number(text));

function NewSessionForm() {
  const trpc = useTRPC();
  const router = useRouter();
  const params = useSearchParams();
  const fromSession = Number(params.get('fromSession')) || null;
  const fromRound = params.get('round') === null ? null : Number(params.get('round'));
  const config = useQuery(trpc.config.queryOptions());
  const source = useQuery({ ...trpc.training.session.queryOptions({ id: fromSession ?? 1 }), enabled: fromSession !== null });
  const [form, setForm] = useState<FormState>(INITIAL);
  const start = useMutation(trpc.training.start.mutationOptions({ onSuccess: (session) => router.push(`/sessions/${session.id}`) }));
  const issues = start.error ? fieldIssues(start.error) : {};

  // Starting from a checkpoint: the form opens with that session's settings.
  useEffect(() => {
    const c = source.data?.config;
    if (!c) return;
    const stop: Stop = c.targetAccuracy !== null ? 'targetAccuracy' : c.maxSamples !== null ? 'maxSamples' : 'rounds';
    setForm({
      model: c.model,
      dataset: c.dataset,
      optimizer: c.optimizer.name,
      learningRate: String(c.optimizer.learningRate),
      batchSize: String(c.batchSize),
      stop,
      stopValue: String(stop === 'targetAccuracy' ? c.targetAccuracy : stop === 'maxSamples' ? c.maxSamples : (c.maxRounds ?? 1000)),
      rule: c.aggregation?.rule ?? 'mean',
      ruleParam: c.aggregation?.rule === 'trimmed-mean' ? String(c.aggregation.trimFraction) : c.aggregation?.rule === 'multi-krum' ? String(c.aggregation.byzantine) : '',
      minUpdates: String(c.minUpdates),
    });
  }, [source.data]);

  const set = <K extends keyof FormState>(key: K) => (event: { target: { value: string } }) => setForm((f) => ({ ...f, [key]: event.target.value as FormState[K] }));
  const submit = (event: FormEvent) => {
    event.preventDefault();
    const aggregation =
      form.rule === 'trimmed-mean'
        ? { rule: 'trimmed-mean' as const, trimFraction: num(form.ruleParam) ?? 0.1 }
        : form.rule === 'multi-krum'
          ? { rule: 'multi-krum' as const, byzantine: num(form.ruleParam) ?? 1 }
          : { rule: form.rule };
    start.mutate({
      model: form.model,
      dataset: form.dataset,
      optimizer: form.optimizer,
      learningRate: num(form.learningRate),
      batchSize: num(form.batchSize),
      [form.stop]: num(form.stopValue),
      aggregation,
      minUpdates: num(form.minUpdates),
      ...(fromSession !== null && fromRound !== null ? { fromCheckpoint: { sessionId: fromSession, round: fromRound } } : {}),
    });
  };

  const field = (key: string, label: string, control: React.ReactNode, hint?: string) => (
    <label className="field" data-testid={`field-${key}`}>
      <span>{label}</span>
      {control}
      <small className="field-error" data-testid={`error-${key}`}>
        {issues[key] ?? hint ?? ''}
      </small>
    </label>
  );
  const invalid = (key: string) => (issues[key] ? true : undefined);
  const stopKey = form.stop;

  return (
    <main className="console" data-testid="new-session-page">
      <PageHead
        title={fromSession !== null ? `New session from session #${fromSession}, round ${fromRound}` : 'New session'}
        sub={fromSession !== null ? 'Starts from that checkpoint’s weights with a fresh optimizer; its settings are filled in below.' : 'Settings left empty take the defaults (GET /api/config).'}
      />
      <form className="panel console-section" onSubmit={submit} noValidate>
        <div className="console-form">
          {field('model', 'Model', <select value={form.model} onChange={set('model')} aria-invalid={invalid('model')} disabled={fromSession !== null}><option value="mlp">MLP (784-128-64-10)</option><option value="cnn">CNN (2 conv layers)</option><option value="mlp2nn">FedAvg 2NN (784-200-200-10)</option></select>)}
          {field('dataset', 'Dataset', <select value={form.dataset} onChange={set('dataset')} aria-invalid={invalid('dataset')}>{(config.data?.datasets ?? ['mnist']).map((d) => <option key={d} value={d}>{d}</option>)}</select>)}
          {field('optimizer', 'Optimizer', <select value={form.optimizer} onChange={set('optimizer')}><option value="adam">Adam</option><option value="sgd">SGD with momentum</option></select>)}
          {field('learningRate', 'Learning rate', <input inputMode="decimal" value={form.learningRate} onChange={set('learningRate')} aria-invalid={invalid('learningRate')} data-testid="input-learningRate" />)}
          {field('batchSize', 'Batch (samples per node per round)', <input inputMode="numeric" value={form.batchSize} onChange={set('batchSize')} aria-invalid={invalid('batchSize')} data-testid="input-batchSize" />, '8 to 65,536')}
          {field(stopKey, 'Stop when', (
            <span style={{ display: 'flex', gap: 6 }}>
              <select value={form.stop} onChange={set('stop')} aria-label="stop condition" data-testid="input-stop">
                <option value="targetAccuracy">test accuracy reaches</option>
                <option value="rounds">rounds reach</option>
                <option value="maxSamples">samples reach</option>
              </select>
              <input inputMode="decimal" value={form.stopValue} onChange={set('stopValue')} aria-invalid={invalid(stopKey)} aria-label="stop value" data-testid="input-stopValue" style={{ width: 100 }} />
            </span>
          ))}
          {field('aggregation', 'Aggregation rule', (
            <span style={{ display: 'flex', gap: 6 }}>
              <select value={form.rule} onChange={set('rule')} aria-label="aggregation rule">
                <option value="mean">mean</option>
                <option value="median">median</option>
                <option value="trimmed-mean">trimmed mean</option>
                <option value="multi-krum">Multi-Krum</option>
              </select>
              {(form.rule === 'trimmed-mean' || form.rule === 'multi-krum') && (
                <input inputMode="decimal" value={form.ruleParam} onChange={set('ruleParam')} aria-label={form.rule === 'trimmed-mean' ? 'trim fraction' : 'byzantine nodes'} placeholder={form.rule === 'trimmed-mean' ? 'trim 0.1' : 'byzantine 1'} style={{ width: 90 }} />
              )}
            </span>
          ))}
          {field('minUpdates', 'Minimum nodes per round', <input inputMode="numeric" value={form.minUpdates} onChange={set('minUpdates')} aria-invalid={invalid('minUpdates')} data-testid="input-minUpdates" />)}
        </div>
        {start.error && !Object.keys(issues).length && (
          <p className="console-error" role="alert" data-testid="form-error">
            {start.error.message}
          </p>
        )}
        <div className="console-actions" style={{ marginTop: 12 }}>
          <button className="btn btn-primary" type="submit" disabled={start.isPending} data-testid="start-session">
            {start.isPending ? 'Starting…' : 'Start session'}
          </button>
          <span className="muted">Needs the operator: sign in first.</span>
        </div>
      </form>
    </main>
  );
}

export default function NewSessionPage() {
  return (
    <Suspense fallback={null}>
      <NewSessionForm />
    </Suspense>
  );
}
