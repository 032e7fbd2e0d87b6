// The shape of journal.json, checked whenever a journal is read: a truncated
// or hand-edited transaction must give an error naming the file and what is
// wrong, never a crash and never a silent "nothing to undo".

import { z } from 'zod';

const backup = z.object({
  target: z.string(),
  existed: z.boolean(),
  file: z.string().nullable(),
  mode: z.number().nullable(),
  uid: z.number().nullable(),
  gid: z.number().nullable(),
  sha256: z.string().nullable(),
  link: z.string().nullable(),
  createdDirs: z.array(z.string()),
});

const STEP_KINDS = ['write-file', 'remove-file', 'run-command', 'write-attr', 'bind-driver', 'module', 'domain', 'install-file', 'copy-attr', 'wait', 'unit-property'] as const;

const step = z
  .object({
    index: z.number().int().nonnegative(),
    kind: z.enum(STEP_KINDS),
    reason: z.string(),
    state: z.enum(['pending', 'started', 'done', 'failed', 'rolled-back', 'undone']),
    path: z.string().optional(),
    argv: z.array(z.string()).optional(),
    label: z.string().optional(),
    regenerate: z.boolean().optional(),
    timeoutMs: z.number().optional(),
    undoArgv: z.array(z.string()).optional(),
    volatile: z.boolean().optional(),
    spec: z.object({ kind: z.enum(STEP_KINDS) }).passthrough().optional(),
    live: z.record(z.unknown()).optional(),
    backup: backup.optional(),
    after: z.object({ sha256: z.string().nullable(), mode: z.number().nullable() }).optional(),
    result: z.object({ code: z.number().nullable(), signal: z.string().nullable(), durationMs: z.number() }).optional(),
    error: z.string().optional(),
    startedAt: z.string().optional(),
    finishedAt: z.string().optional(),
  })
  .passthrough()
  .superRefine((s, ctx) => {
    if ((s.kind === 'write-file' || s.kind === 'remove-file') && s.path === undefined) ctx.addIssue({ code: 'custom', message: `a ${s.kind} step needs a path` });
    if (s.kind === 'run-command' && !s.argv?.length) ctx.addIssue({ code: 'custom', message: 'a run-command step needs argv' });
    if (!['write-file', 'remove-file', 'run-command'].includes(s.kind) && !s.spec) ctx.addIssue({ code: 'custom', message: `a ${s.kind} step needs its spec` });
  });

export const journalSchema = z
  .object({
    version: z.literal(1),
    txid: z.string().regex(/^[\w.-]+$/),
    seq: z.number().int().positive(),
    kind: z.string(),
    intent: z.record(z.unknown()),
    summary: z.array(z.string()),
    bootId: z.string().nullable().optional(),
    root: z.string(),
    pid: z.number().int(),
    state: z.enum(['applying', 'applied', 'rolling-back', 'rolled-back', 'rollback-failed', 'undoing', 'undone', 'undo-failed']),
    createdAt: z.string(),
    updatedAt: z.string(),
    steps: z.array(step),
    events: z.array(z.object({ at: z.string(), message: z.string() })),
  })
  .passthrough()
  .superRefine((d, ctx) => {
    d.steps.forEach((s, i) => {
      if (s.index !== i) ctx.addIssue({ code: 'custom', path: ['steps', i, 'index'], message: `step ${i} says it is step ${s.index}` });
    });
  });

/** "steps.2.state: Invalid enum value…" — the first few problems, for an error message. */
export function describeIssues(e: z.ZodError): string {
  return e.issues
    .slice(0, 3)
    .map((i) => `${i.path.length ? `${i.path.join('.')}: ` : ''}${i.message}`)
    .join('; ');
}
