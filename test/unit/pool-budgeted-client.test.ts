import { describe, expect, it, vi } from 'vitest';
import { isTenantDbError } from '../../src/errors.js';
import { budgetedClientClass } from '../../src/pools/budgeted-client.js';
import { ConnectionBudget } from '../../src/pools/connection-budget.js';

// No server here: every client below is stopped before it would open a socket.
const config = { connectionString: 'postgres://u:secret@127.0.0.1:1/db' };

function setup(max = 1, timeoutMs = 30_000) {
  const budget = new ConnectionBudget(max, { timeoutMs });
  const hooks = { connectTimeoutMs: 1_000, onOpen: vi.fn(), onClose: vi.fn() };
  const Client = budgetedClientClass(budget, hooks);
  return { budget, hooks, Client };
}

describe('BudgetedClient', () => {
  it('waits for a slot before connecting, and end() while waiting gives up without taking one', async () => {
    const { budget, hooks, Client } = setup();
    const held = await budget.acquire();
    const client = new Client(config);
    const connecting = client.connect().catch((err: unknown) => err);
    await new Promise((resolve) => setImmediate(resolve));
    expect(budget.waiting).toBe(1);
    expect(hooks.onOpen).toHaveBeenCalledTimes(1);

    await client.end();
    expect(await connecting).toBeInstanceOf(Error);
    expect(budget.waiting).toBe(0);
    expect(hooks.onClose).toHaveBeenCalledTimes(1);
    held.release();
    expect(budget.inUse).toBe(0);
  });

  it('fails connect() with the budget timeout, through the pg-pool callback style too', async () => {
    const { budget, hooks, Client } = setup(1, 20);
    const held = await budget.acquire();
    const client = new Client(config);
    const err = await new Promise<unknown>((resolve) => client.connect((e: Error | null) => resolve(e)));
    expect(isTenantDbError(err, 'UNAVAILABLE')).toBe(true);
    expect(hooks.onOpen).toHaveBeenCalledTimes(1);
    expect(hooks.onClose).toHaveBeenCalledTimes(1);
    expect(client.holdsSlot).toBe(false);
    held.release();
    expect(budget.inUse).toBe(0);
  });

  it('fails connect() with CLOSED once the budget is closed', async () => {
    const { budget, Client } = setup();
    budget.close();
    const client = new Client(config);
    await expect(client.connect()).rejects.toSatisfy((err) => isTenantDbError(err, 'CLOSED'));
  });

  it('refuses a second connect()', async () => {
    const { budget, Client } = setup();
    const held = await budget.acquire();
    const client = new Client(config);
    const first = client.connect().catch(() => undefined);
    await expect(client.connect()).rejects.toThrow(/already been connected/);
    client.forceClose();
    await first;
    held.release();
  });

  it('keeps the password out of enumerable properties of the copied config', () => {
    const { Client } = setup();
    const hidden = {};
    Object.defineProperty(hidden, 'password', { value: 'pw', enumerable: false });
    const client = new Client(hidden);
    expect(JSON.stringify(client)).not.toContain('pw');
    expect((client as unknown as { password: string }).password).toBe('pw');
  });
});
