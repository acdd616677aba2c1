import { describe, expect, it } from 'vitest';
import { createFakeRepository } from '../support/fake-repository';
import { describeRepositoryConformance, sampleCapabilities, sampleConfig } from '../support/repository-conformance';

describeRepositoryConformance('in-memory fake', async () => createFakeRepository());

describe('fake repository helpers', () => {
  it('exposes stored nodes with first and last seen times', async () => {
    const repo = createFakeRepository();
    const id = await repo.upsertNode('alpha', sampleCapabilities(), 1000);
    await repo.upsertNode('alpha', sampleCapabilities({ backend: 'cpu' }), 2000);
    expect(repo.nodes()).toEqual([
      { id, name: 'alpha', capabilities: sampleCapabilities({ backend: 'cpu' }), firstSeenAt: 1000, lastSeenAt: 2000 },
    ]);
    expect(repo.calls.upsertNode).toBe(2);
  });

  it('hands out copies, so a caller mutating a result does not change what is stored', async () => {
    const repo = createFakeRepository();
    const id = await repo.createSession(sampleConfig, 0);
    const session = (await repo.getSession(id))!;
    session.config.batchSize = 1;
    session.round = 99;
    expect((await repo.getSession(id))!.round).toBe(0);
    expect((await repo.getSession(id))!.config.batchSize).toBe(sampleConfig.batchSize);
  });

  it('refuses calls after close', async () => {
    const repo = createFakeRepository();
    await repo.close();
    await expect(repo.listSessions(1)).rejects.toThrow(/closed/);
  });
});
