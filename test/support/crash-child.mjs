// A process that kills itself with SIGKILL at one step the library publishes on its step channel: the crash
// tests run it, then check what a restart leaves. Plain JavaScript over the built package (`npm test` builds
// first), so that a child starts in a fraction of a second.
//
// Environment: CRASH_OPTIONS (the platform's options, JSON), CRASH_ACTION (init | create | fleet | drop | rotate | move),
// CRASH_AT (a step name), CRASH_NTH (kill at its nth occurrence, default 1), CRASH_DATABASE_PREFIX (count only
// steps on databases whose name starts so), CRASH_NAME (the tenant to create), CRASH_TENANT (the tenant to drop,
// rotate the credentials of or move), CRASH_TO (the server to move it to), CRASH_FLEET (the options of the fleet
// run, JSON; default { concurrency: 1 }).
import diagnostics from 'node:diagnostics_channel';
import { writeSync } from 'node:fs';
import process from 'node:process';
import { STEP_CHANNEL, createPlatform } from '../../dist/index.js';

const { CRASH_OPTIONS, CRASH_ACTION, CRASH_AT, CRASH_NTH = '1', CRASH_DATABASE_PREFIX = '', CRASH_NAME, CRASH_TENANT, CRASH_TO, CRASH_FLEET } =
  process.env;
let seen = 0;
diagnostics.subscribe(STEP_CHANNEL, (message) => {
  if (message.step !== CRASH_AT || !(message.databaseName ?? '').startsWith(CRASH_DATABASE_PREFIX)) return;
  if (++seen < Number(CRASH_NTH)) return;
  // Written synchronously: the parent learns which tenant or database the step was on before the kill.
  writeSync(1, `${JSON.stringify(message)}\n`);
  process.kill(process.pid, 'SIGKILL');
});

const platform = createPlatform(JSON.parse(CRASH_OPTIONS));
try {
  await platform.init();
  if (CRASH_ACTION === 'create') await platform.tenants.create({ name: CRASH_NAME });
  if (CRASH_ACTION === 'fleet') await platform.migrations.tenants.up(CRASH_FLEET ? JSON.parse(CRASH_FLEET) : { concurrency: 1 });
  if (CRASH_ACTION === 'drop') await platform.tenants.drop(CRASH_TENANT);
  if (CRASH_ACTION === 'rotate') await platform.tenants.rotateCredentials(CRASH_TENANT);
  if (CRASH_ACTION === 'move') await platform.tenants.move(CRASH_TENANT, CRASH_TO);
  writeSync(1, 'finished without reaching the step\n');
} finally {
  await platform.close();
}
