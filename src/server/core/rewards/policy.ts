// Credits to amounts. A session's reward policy pays a fixed rate per accepted (and, once audits run, audited)
// sample, capped by a budget per epoch; when an epoch's credits exceed the budget every node is scaled down by
// the same ratio (rounded down, so the total never exceeds the budget). Integer base units only: bigint
// arithmetic, never floats, so the ledger and the chain agree to the last unit.

/** Base units per token: 18 decimals, like MON and ETH. */
export const TOKEN_DECIMALS = 18;
export const ONE_TOKEN = 10n ** 18n;

export interface RewardPolicy {
  /** Base units paid per accepted sample. */
  ratePerSample: bigint;
  /** Most base units paid for one epoch over all nodes (null: no cap). */
  epochBudget: bigint | null;
}

/** The default: 1e-6 token per sample (0.06 token per MNIST epoch), at most 1 token per epoch. */
export const DEFAULT_REWARD_POLICY: RewardPolicy = { ratePerSample: 10n ** 12n, epochBudget: ONE_TOKEN };

/** The policy as a session config stores it (JSON has no bigint): decimal strings. */
export interface RewardPolicyConfig {
  ratePerSample: string;
  epochBudget: string | null;
}

export function policyFromConfig(config: RewardPolicyConfig | undefined, fallback: RewardPolicy = DEFAULT_REWARD_POLICY): RewardPolicy {
  if (!config) return fallback;
  return { ratePerSample: BigInt(config.ratePerSample), epochBudget: config.epochBudget === null ? null : BigInt(config.epochBudget) };
}

export function policyToConfig(policy: RewardPolicy): RewardPolicyConfig {
  return { ratePerSample: policy.ratePerSample.toString(), epochBudget: policy.epochBudget === null ? null : policy.epochBudget.toString() };
}

export interface NodeAmount {
  nodeId: number;
  samples: number;
  amount: bigint;
}

/** Amounts for one epoch's payable credits (samples per node), in node id order. */
export function amountsForEpoch(credits: ReadonlyMap<number, number>, policy: RewardPolicy): NodeAmount[] {
  const nodes = [...credits.entries()].filter(([, samples]) => samples > 0).sort(([a], [b]) => a - b);
  const raw = nodes.map(([nodeId, samples]) => ({ nodeId, samples, amount: BigInt(samples) * policy.ratePerSample }));
  const total = raw.reduce((sum, n) => sum + n.amount, 0n);
  if (policy.epochBudget === null || total <= policy.epochBudget) return raw;
  // Over budget: each node gets its share of the budget, rounded down (the dust stays in the contract).
  return raw.map((n) => ({ ...n, amount: (n.amount * policy.epochBudget!) / total }));
}

/** Formats base units as a decimal token amount without losing digits ("1.5", "0.000001"). */
export function formatUnits18(amount: bigint): string {
  const negative = amount < 0n;
  const abs = negative ? -amount : amount;
  const whole = abs / ONE_TOKEN;
  const fraction = (abs % ONE_TOKEN).toString().padStart(TOKEN_DECIMALS, '0').replace(/0+$/, '');
  return `${negative ? '-' : ''}${whole}${fraction ? `.${fraction}` : ''}`;
}
