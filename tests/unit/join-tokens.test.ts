// Agent admission by join tokens: which hellos for a new name are admitted, and what a refusal says.
import { describe, expect, it } from 'vitest';
import { JoinTokens } from '../../src/server/services/join-tokens';
import { sanitizeText } from '../../src/server/core/sanitize';
import { createFakeRepository } from '../support/fake-repository';
import { FakeClock, fakeCredentials } from '../support/fakes';

function setup(openPool = false) {
  const repo = createFakeRepository();
  const clock = new FakeClock();
  return { repo, clock, tokens: new JoinTokens(repo, fakeCredentials(), clock, openPool) };
}

describe('join tokens', () => {
  it('refuses a new name without a token, and says how to get one', async () => {
    const { tokens } = setup();
    await expect(tokens.admit('box', undefined)).rejects.toMatchObject({ code: 'JOIN_TOKEN_REQUIRED', message: expect.stringContaining('--join-token') });
  });

  it('admits with a pool token, and refuses unknown, revoked, expired and other-name tokens', async () => {
    const { tokens, clock } = setup();
    const pool = await tokens.issue({ label: 'pool' });
    const bound = await tokens.issue({ nodeName: 'box-1' });
    const short = await tokens.issue({ expiresInSeconds: 10 });
    expect(pool.token).toMatch(/^test-token-/);
    await expect(tokens.admit('anyone', pool.token)).resolves.toBeUndefined();
    await expect(tokens.admit('box-1', bound.token)).resolves.toBeUndefined();
    await expect(tokens.admit('box-2', bound.token)).rejects.toMatchObject({ code: 'JOIN_TOKEN_INVALID', message: expect.stringContaining('bound to another node name') });
    await expect(tokens.admit('x', 'not-a-token-at-all')).rejects.toMatchObject({ code: 'JOIN_TOKEN_INVALID', message: expect.stringContaining('not known') });
    await expect(tokens.admit('x', short.token)).resolves.toBeUndefined();
    clock.advance(10_000);
    await expect(tokens.admit('x', short.token)).rejects.toMatchObject({ code: 'JOIN_TOKEN_INVALID', message: expect.stringContaining('expired') });
    await tokens.revoke(pool.joinToken.id);
    await expect(tokens.admit('anyone', pool.token)).rejects.toMatchObject({ code: 'JOIN_TOKEN_INVALID', message: expect.stringContaining('revoked') });
    await expect(tokens.revoke(99)).rejects.toMatchObject({ code: 'NOT_FOUND' });
    const listed = await tokens.list();
    expect(listed.map((t) => t.id)).toEqual([1, 2, 3]);
    expect(JSON.stringify(listed)).not.toContain('test-token-');
  });

  it('admits anyone when the pool is open', async () => {
    const { tokens } = setup(true);
    await expect(tokens.admit('box', undefined)).resolves.toBeUndefined();
    await expect(tokens.admit('box', 'unknown-token-xyz')).resolves.toBeUndefined();
  });
});

describe('sanitizeText', () => {
  it('replaces control and formatting characters and bounds the length', () => {
    expect(sanitizeText('bye\u001b[31mred\nforged line\u202e')).toBe('bye\uFFFD[31mred\uFFFDforged line\uFFFD');
    expect(sanitizeText('x'.repeat(500), 10)).toBe(`${'x'.repeat(10)}…`);
  });
});
