import type { KeyValueStore, StorePrior, StoreWrite } from './key-value-store.ts';
import type { CachedKey, MapEntryState, MapSlot, RegisteredState, ValueSlot } from './state-cache.ts';
import { mapEntryKey, stateKey } from './state-key-layout.ts';
import { unwrapValue, valueHeaderBytes, wrapValue, writeValueHeader } from './ttl-envelope.ts';

/**
 * Moves state between the store and the batch cache: `loadKeys` fills slots for new cache
 * entries (one getMany for all value-like states, one prefix scan per key for map states), and
 * `collectWrites` turns dirty slots into store writes.
 */
export async function loadKeys(
  store: KeyValueStore,
  states: readonly RegisteredState[],
  entries: readonly CachedKey[],
): Promise<void> {
  // Only states an entry has no slot for: a cached key may already hold newer, unflushed slots.
  const valueLoads: [CachedKey, RegisteredState][] = [];
  const scans: Promise<void>[] = [];
  for (const entry of entries) {
    for (const state of states) {
      if (entry.slots.has(state.name)) continue;
      if (state.storage === 'value') valueLoads.push([entry, state]);
      else scans.push(loadMap(store, state, entry));
    }
  }
  const lookups = valueLoads.map(([entry, state]) => stateKey(state.namePrefix, entry.keyGroup, entry.keyBytes));
  const [values] = await Promise.all([store.getMany(lookups), ...scans]);
  valueLoads.forEach(([entry, state], i) =>
    entry.slots.set(state.name, valueSlotFrom(state, lookups[i] as Buffer, values[i])),
  );
}

function valueSlotFrom(state: RegisteredState, storeKey: Buffer, stored: Buffer | undefined): ValueSlot {
  const keep = state.serializer.decodesLazily === true;
  if (stored === undefined)
    return { kind: 'value', value: undefined, writtenAtMs: undefined, dirty: false, storeKey, stored: null };
  const { payload, writtenAtMs } = unwrapValue(stored);
  return {
    kind: 'value',
    value: state.serializer.deserialize(payload),
    writtenAtMs,
    dirty: false,
    storeKey,
    stored: keep ? stored : undefined,
  };
}

async function loadMap(store: KeyValueStore, state: RegisteredState, entry: CachedKey): Promise<void> {
  const prefix = stateKey(state.namePrefix, entry.keyGroup, entry.keyBytes);
  const entries = new Map<string, MapEntryState>();
  for await (const [key, stored] of store.scan(prefix)) {
    const mapKey = Buffer.from(key.subarray(prefix.length));
    if (mapKey.length === 0) continue;
    const { payload, writtenAtMs } = unwrapValue(stored);
    entries.set(mapKey.toString('latin1'), { mapKey, value: state.serializer.deserialize(payload), writtenAtMs });
  }
  const slot: MapSlot = { kind: 'map', entries, dirty: new Map() };
  entry.slots.set(state.name, slot);
}

/**
 * Store writes for a key's dirty slots, and in `priors` (aligned with `out`) what the store held
 * for each before (see `KeyValueStore.write`); marks them clean.
 */
export function collectWrites(
  states: ReadonlyMap<string, RegisteredState>,
  entry: CachedKey,
  out: StoreWrite[],
  priors: StorePrior[],
): void {
  for (const [name, slot] of entry.slots) {
    const state = states.get(name);
    if (state === undefined) continue;
    if (slot.kind === 'value') {
      if (!slot.dirty) continue;
      priors.push(slot.stored);
      if (slot.value === undefined) {
        out.push({ key: slot.storeKey, value: null });
        slot.stored = null;
      } else {
        const serializer = state.serializer;
        const writtenAtMs = state.ttlMs === undefined ? undefined : slot.writtenAtMs;
        let value: Buffer;
        let payload: Buffer;
        if (serializer.serializeWithRoom !== undefined) {
          // One buffer: the serializer leaves room for the header instead of being copied behind it.
          const room = valueHeaderBytes(writtenAtMs);
          value = serializer.serializeWithRoom(slot.value, room);
          writeValueHeader(value, writtenAtMs);
          payload = value.subarray(room);
        } else {
          payload = serializer.serialize(slot.value);
          value = wrapValue(payload, writtenAtMs);
        }
        out.push({ key: slot.storeKey, value });
        slot.stored = serializer.decodesLazily === true ? value : undefined;
        if (serializer.decodesLazily === true)
          slot.value =
            serializer.decodeWritten === undefined
              ? serializer.deserialize(payload)
              : serializer.decodeWritten(slot.value, payload);
      }
      slot.dirty = false;
      continue;
    }
    const key = stateKey(state.namePrefix, entry.keyGroup, entry.keyBytes);
    for (const [id, mapKey] of slot.dirty) {
      const current = slot.entries.get(id);
      out.push({
        key: mapEntryKey(key, mapKey),
        value: current === undefined ? null : encodeValue(state, current.value, current.writtenAtMs),
      });
      // Map entries do not keep their stored bytes: the store reads them if it needs them.
      priors.push(undefined);
    }
    slot.dirty.clear();
  }
  entry.dirty = false;
}

function encodeValue(state: RegisteredState, value: unknown, writtenAtMs: number | undefined): Buffer | null {
  if (value === undefined) return null;
  return wrapValue(state.serializer.serialize(value), state.ttlMs === undefined ? undefined : writtenAtMs);
}
