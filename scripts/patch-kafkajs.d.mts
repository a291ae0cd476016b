/** Types of patch-kafkajs.mjs (plain JS so that `npm install`'s postinstall step runs it without tsx). */
export function patchKafkajs(): string;
export const STATIC_MARKER: string;
export const STATIC_EDITS: Readonly<Record<string, ReadonlyArray<readonly [string, string]>>>;
export class KafkajsPatchError extends Error {}
export function patchKafkajsStaticMembership(resolveFrom?: string): string;
