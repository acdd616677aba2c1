// Base units (18 decimals, a decimal string) as a token amount, exactly: bigint arithmetic, never floats.
const ONE = 10n ** 18n;

export function formatTokens(units: string | null): string {
  if (units === null) return '—';
  const value = BigInt(units);
  const whole = value / ONE;
  const fraction = (value % ONE).toString().padStart(18, '0').replace(/0+$/, '').slice(0, 6);
  return `${whole}${fraction ? `.${fraction}` : ''} MON`;
}
