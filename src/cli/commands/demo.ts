import type { Command } from '../command-context.js';
import { runDemo } from '../demo.js';

/** `tenantdb demo`: the guided tour of the library on the configured servers. */
export const demoCommand: Command = async (cx) => {
  const progress = cx.progress('demo rollout');
  // With --json the narration is commentary (stderr); otherwise it is the output.
  const log = cx.args.json ? cx.note : cx.print;
  try {
    const result = await runDemo(cx.platform, {
      log: (line) => log(cx.scrub(line)),
      options: cx.options,
      ...(progress && { onProgress: (e) => progress.onProgress(e) }),
    });
    return { json: result };
  } finally {
    progress?.finish();
  }
};
