import { createRequire } from 'node:module';
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { scramClientFinal, scramDerivations } from '../../src/util/scram.js';

// pg's own SCRAM code: what ours must agree with, message for message.
const pgSasl = createRequire(import.meta.url)('pg/lib/crypto/sasl.js') as {
  startSession(mechanisms: string[], stream?: unknown): { clientNonce: string; response: string; mechanism: string; message: string };
  continueSession(session: object, password: string, serverData: string, stream?: unknown): Promise<void>;
};

describe('scramClientFinal', () => {
  it('gives the client proof and server signature of RFC 7677\'s example', async () => {
    const final = await scramClientFinal(
      { response: 'n,,n=user,r=rOprNGfwEbeRWgbNEkqO', clientNonce: 'rOprNGfwEbeRWgbNEkqO', maxIterations: 100_000 },
      'pencil',
      'r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096',
    );
    expect(final.response).toBe('c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=');
    expect(final.serverSignature).toBe('6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=');
  });

  it('answers as pg does, for passwords SASLprep changes too', async () => {
    for (const password of ['postgres', 'p\u00A0w\u00ADd', '\uFB01le', 'long '.repeat(40)]) {
      const session = pgSasl.startSession(['SCRAM-SHA-256']);
      const serverFirst = `r=${session.clientNonce}${randomBytes(9).toString('base64')},s=${randomBytes(16).toString('base64')},i=4096`;
      const ours = await scramClientFinal({ response: session.response, clientNonce: session.clientNonce, maxIterations: 0 }, password, serverFirst);
      await pgSasl.continueSession(session, password, serverFirst);
      expect(ours).toEqual({ response: (session as { response: string }).response, serverSignature: (session as unknown as { serverSignature: string }).serverSignature });
    }
  });

  it('derives the keys once per password, salt and iteration count', async () => {
    const first = { response: 'n,,n=*,r=abc', clientNonce: 'abc', maxIterations: 0 };
    const salt = randomBytes(16).toString('base64');
    const before = scramDerivations();
    await Promise.all([1, 2, 3].map((n) => scramClientFinal(first, 'secret', `r=abc${n},s=${salt},i=4096`)));
    expect(scramDerivations() - before).toBe(1);
    await scramClientFinal(first, 'other secret', `r=abc4,s=${salt},i=4096`);
    await scramClientFinal(first, 'secret', `r=abc5,s=${randomBytes(16).toString('base64')},i=4096`);
    await scramClientFinal(first, 'secret', `r=abc6,s=${salt},i=4097`);
    expect(scramDerivations() - before).toBe(4);
  });

  it('refuses a server-first-message pg would refuse', async () => {
    const first = { response: 'n,,n=*,r=abc', clientNonce: 'abc', maxIterations: 10_000 };
    const salt = randomBytes(16).toString('base64');
    await expect(scramClientFinal(first, 'pw', `r=xyz1,s=${salt},i=4096`)).rejects.toThrow(/nonce/);
    await expect(scramClientFinal(first, 'pw', `r=abc,s=${salt},i=4096`)).rejects.toThrow(/nonce/);
    await expect(scramClientFinal(first, 'pw', 'r=abc1,s=not*base64,i=4096')).rejects.toThrow(/salt/);
    await expect(scramClientFinal(first, 'pw', `r=abc1,s=${salt},i=0`)).rejects.toThrow(/iteration/);
    await expect(scramClientFinal(first, 'pw', `r=abc1,s=${salt},i=20000`)).rejects.toThrow(/exceeds/);
    await expect(scramClientFinal(first, 'pw', 'garbage')).rejects.toThrow(/SASL/);
  });
});
