/**
 * scripts/patch-kafkajs.mjs threads `groupInstanceId` through kafkajs's consumer (KIP-345) and the
 * group runtime checks the loaded code by behaviour. On a copy of the installed kafkajs with the
 * edits taken out: the check finds the defect, the patch applies once (then says "already
 * patched"), the check passes, and a kafkajs whose code differs makes the patch fail loudly
 * without writing anything.
 */
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import {
  KafkajsPatchError,
  STATIC_EDITS,
  STATIC_MARKER,
  patchKafkajsStaticMembership,
} from '../../../../scripts/patch-kafkajs.mjs';
import { staticMembershipDefect } from '../../../../runtime/group/static-membership-check.ts';

const installed = join(createRequire(import.meta.url).resolve('kafkajs/package.json'), '..');
const root = mkdtempSync(join(tmpdir(), 'cdcflow-kafkajs-'));
const copy = join(root, 'node_modules', 'kafkajs');
const from = pathToFileURL(join(root, 'probe.js')).href;

/** The installed kafkajs with cdcflow's static-membership edits taken out again. */
function unpatchedCopy(): void {
  rmSync(copy, { recursive: true, force: true });
  cpSync(installed, copy, { recursive: true });
  for (const [module, edits] of Object.entries(STATIC_EDITS)) {
    const file = join(root, 'node_modules', module);
    let text = readFileSync(file, 'utf8');
    if (text.startsWith(`// ${STATIC_MARKER}`)) text = text.slice(text.indexOf('\n') + 1);
    for (const [before, after] of edits) text = text.replace(after, before);
    writeFileSync(file, text);
  }
}

describe('kafkajs static membership patch', () => {
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('the installed kafkajs passes the check', async () => {
    expect(await staticMembershipDefect()).toBeUndefined();
  });

  it('finds the defect, patches once, then passes', async () => {
    unpatchedCopy();
    expect(await staticMembershipDefect(from)).toMatch(/drops? groupInstanceId|does not carry groupInstanceId/);
    expect(patchKafkajsStaticMembership(from)).not.toMatch(/already/);
    expect(patchKafkajsStaticMembership(from)).toMatch(/^(.*: already patched(; )?){4}$/);
    // A fresh process would load the patched files; this one must not reuse the cached modules.
    const resolve = createRequire(from);
    for (const file of Object.keys(resolve.cache)) if (file.startsWith(copy)) delete resolve.cache[file];

    expect(await staticMembershipDefect(from)).toBeUndefined();
  });

  it('fails loudly and writes nothing when the code it edits is not there', () => {
    unpatchedCopy();
    const file = join(root, 'node_modules', 'kafkajs/src/consumer/consumerGroup.js');
    const changed = readFileSync(file, 'utf8').replace('async leave() {', 'async leaveTheGroup() {');
    writeFileSync(file, changed);
    expect(() => patchKafkajsStaticMembership(from)).toThrow(KafkajsPatchError);
    expect(readFileSync(file, 'utf8')).toBe(changed);
  });
});
