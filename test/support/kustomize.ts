/**
 * A small kustomize (`kubectl kustomize DIR`) for tests, so CI validates the manifests under
 * scripts/deploy/k8s/ without kubectl. It supports exactly what those manifests use —
 * `resources` (files and directories), `components`, `namespace`, `images`, `replicas`,
 * `configMapGenerator`/`secretGenerator` (`literals`, `files`, `behavior`, the content-hash name
 * suffix and the references to it in pod templates) and inline JSON 6902 `patches` with a
 * `target` — and refuses every other field, so a manifest using more fails here instead of being
 * rendered wrong. Where kubectl is installed the test compares both renderings.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { parseAllDocuments } from 'yaml';

export type K8sObject = Record<string, unknown> & {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string } & Record<string, unknown>;
};

export class KustomizeError extends Error {}

interface Generator {
  readonly name: string;
  readonly behavior?: 'create' | 'merge' | 'replace';
  readonly literals?: readonly string[];
  readonly files?: readonly string[];
  readonly type?: string;
  readonly options?: { readonly disableNameSuffixHash?: boolean };
}

interface Patch {
  readonly target: { readonly kind?: string; readonly name?: string };
  readonly patch: string;
}

const KUSTOMIZATION_KEYS = new Set([
  'apiVersion',
  'kind',
  'resources',
  'components',
  'namespace',
  'images',
  'replicas',
  'configMapGenerator',
  'secretGenerator',
  'patches',
]);
const GENERATOR_KEYS = new Set(['name', 'behavior', 'literals', 'files', 'type', 'options']);
const FILE_NAMES = ['kustomization.yaml', 'kustomization.yml', 'Kustomization'];

/** What one build accumulates: the objects, and which of them get a hash suffix at the end. */
interface Build {
  objects: K8sObject[];
  readonly hashed: Set<K8sObject>;
}

/** Renders the kustomization in `dir` as `kubectl kustomize dir` would. */
export function kustomize(dir: string): K8sObject[] {
  const build = buildDir(resolve(dir), 'Kustomization');
  return finish(build);
}

/** Renders a kustomization given as an object, its paths relative to `dir` (tests compose overlays). */
export function kustomizeObject(kustomization: Record<string, unknown>, dir: string): K8sObject[] {
  return finish(buildKustomization(kustomization, resolve(dir), undefined));
}

/** Every YAML document of a manifest file. */
export function readObjects(file: string): K8sObject[] {
  return parseAllDocuments(readFileSync(file, 'utf8')).flatMap((doc) => {
    if (doc.errors.length > 0) throw new KustomizeError(`${file}: ${doc.errors.map((e) => e.message).join('; ')}`);
    const value = doc.toJS() as unknown;
    if (value === null || value === undefined) return [];
    const o = value as K8sObject;
    if (typeof o.apiVersion !== 'string' || typeof o.kind !== 'string' || typeof o.metadata?.name !== 'string')
      throw new KustomizeError(`${file}: a document without apiVersion, kind or metadata.name`);
    return [o];
  });
}

function kustomizationFile(dir: string): string {
  const file = FILE_NAMES.map((f) => join(dir, f)).find((f) => existsSync(f));
  if (file === undefined) throw new KustomizeError(`${dir}: no kustomization.yaml`);
  return file;
}

function buildDir(dir: string, expectedKind: 'Kustomization' | 'Component', into?: Build): Build {
  const file = kustomizationFile(dir);
  const k = readObjectsLoose(file);
  if ((k['kind'] ?? 'Kustomization') !== expectedKind)
    throw new KustomizeError(`${file}: expected kind ${expectedKind}, found ${String(k['kind'])}`);
  return buildKustomization(k, dir, into);
}

function readObjectsLoose(file: string): Record<string, unknown> {
  const docs = parseAllDocuments(readFileSync(file, 'utf8'));
  const first = docs[0];
  if (docs.length !== 1 || first === undefined || first.errors.length > 0)
    throw new KustomizeError(`${file}: expected one YAML document`);
  return first.toJS() as Record<string, unknown>;
}

/** One kustomization: resources, then components (applied to what the resources gave), then generators and transformers. */
function buildKustomization(k: Record<string, unknown>, dir: string, into: Build | undefined): Build {
  for (const key of Object.keys(k))
    if (!KUSTOMIZATION_KEYS.has(key))
      throw new KustomizeError(
        `${dir}: kustomization field '${key}' is not supported by test/support/kustomize.ts (add it there, or keep the manifests within what it renders)`,
      );
  const build: Build = into ?? { objects: [], hashed: new Set() };
  for (const entry of list<string>(k['resources'])) {
    const path = resolve(dir, entry);
    if (statSync(path).isDirectory()) {
      const sub = buildDir(path, 'Kustomization');
      for (const o of sub.objects) add(build, o, path);
      for (const o of sub.hashed) build.hashed.add(o);
    } else for (const o of readObjects(path)) add(build, o, path);
  }
  for (const entry of list<string>(k['components'])) buildDir(resolve(dir, entry), 'Component', build);
  for (const g of list<Generator>(k['configMapGenerator'])) generate(build, 'ConfigMap', g, dir);
  for (const g of list<Generator>(k['secretGenerator'])) generate(build, 'Secret', g, dir);
  for (const p of list<Patch>(k['patches'])) patch(build, p, dir);
  const namespace = k['namespace'];
  if (typeof namespace === 'string') for (const o of build.objects) o.metadata.namespace = namespace;
  for (const image of list<{ name: string; newName?: string; newTag?: string; digest?: string }>(k['images']))
    setImage(build, image);
  for (const r of list<{ name: string; count: number }>(k['replicas'])) {
    const target = build.objects.filter(
      (o) => o.metadata.name === r.name && ['Deployment', 'StatefulSet', 'ReplicaSet'].includes(o.kind),
    );
    if (target.length === 0) throw new KustomizeError(`${dir}: replicas: no workload named ${r.name}`);
    for (const o of target) (o['spec'] as Record<string, unknown>)['replicas'] = r.count;
  }
  return build;
}

function list<T>(value: unknown): T[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw new KustomizeError(`expected a list, found ${JSON.stringify(value)}`);
  return value as T[];
}

function idOf(o: K8sObject): string {
  return `${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`;
}

function add(build: Build, o: K8sObject, from: string): void {
  if (build.objects.some((x) => idOf(x) === idOf(o))) throw new KustomizeError(`${from}: ${idOf(o)} is defined twice`);
  build.objects.push(o);
}

function generate(build: Build, kind: 'ConfigMap' | 'Secret', g: Generator, dir: string): void {
  for (const key of Object.keys(g))
    if (!GENERATOR_KEYS.has(key)) throw new KustomizeError(`${dir}: ${kind} generator field '${key}' is not supported`);
  const data: Record<string, string> = {};
  for (const literal of g.literals ?? []) {
    const at = literal.indexOf('=');
    if (at <= 0) throw new KustomizeError(`${dir}: literal '${literal}' is not KEY=VALUE`);
    data[literal.slice(0, at)] = literal.slice(at + 1);
  }
  for (const file of g.files ?? []) {
    const [key, path] = file.includes('=') ? (file.split('=', 2) as [string, string]) : [basename(file), file];
    data[key] = readFileSync(resolve(dir, path), 'utf8');
  }
  const encode = (d: Record<string, string>) =>
    kind === 'Secret'
      ? Object.fromEntries(Object.entries(d).map(([key, v]) => [key, Buffer.from(v).toString('base64')]))
      : d;
  const existing = build.objects.find((o) => o.kind === kind && o.metadata.name === g.name);
  const behavior = g.behavior ?? 'create';
  if (behavior === 'create') {
    if (existing !== undefined)
      throw new KustomizeError(`${dir}: ${kind} ${g.name} exists already: use behavior merge or replace`);
    const o: K8sObject = {
      apiVersion: 'v1',
      kind,
      metadata: { name: g.name },
      data: encode(data),
      ...(kind === 'Secret' ? { type: g.type ?? 'Opaque' } : {}),
    };
    build.objects.push(o);
    if (g.options?.disableNameSuffixHash !== true) build.hashed.add(o);
    return;
  }
  if (existing === undefined)
    throw new KustomizeError(`${dir}: behavior ${behavior}: no ${kind} ${g.name} to ${behavior}`);
  existing['data'] =
    behavior === 'merge' ? { ...(existing['data'] as Record<string, string>), ...encode(data) } : encode(data);
}

/** kustomize's name suffix: sha256 of the JSON {data, kind, name: ""} (Go key order), 10 hex digits with 0,1,3,a,e replaced. */
export function nameHash(o: K8sObject): string {
  const data = Object.fromEntries(
    Object.entries((o['data'] as Record<string, string> | undefined) ?? {}).sort(([a], [b]) =>
      a < b ? -1 : a > b ? 1 : 0,
    ),
  );
  const encoded =
    o.kind === 'Secret'
      ? { data, kind: 'Secret', name: '', type: o['type'] ?? '' }
      : { data, kind: 'ConfigMap', name: '' };
  // Go's encoding/json escapes <, > and & (HTMLEscape).
  const json = JSON.stringify(encoded).replace(/[<>&]/g, (c) => `\\u00${c.charCodeAt(0).toString(16)}`);
  const hex = createHash('sha256').update(json).digest('hex').slice(0, 10);
  return hex.replace(/[013ae]/g, (c) => ({ '0': 'g', '1': 'h', '3': 'k', a: 'm', e: 't' })[c] as string);
}

function patch(build: Build, p: Patch, dir: string): void {
  if (typeof p.patch !== 'string' || p.target === undefined)
    throw new KustomizeError(`${dir}: only inline JSON 6902 patches with a target are supported`);
  const targets = build.objects.filter(
    (o) =>
      (p.target.kind === undefined || o.kind === p.target.kind) &&
      (p.target.name === undefined || o.metadata.name === p.target.name),
  );
  if (targets.length === 0)
    throw new KustomizeError(`${dir}: patch target ${JSON.stringify(p.target)} matches nothing`);
  const ops = parseAllDocuments(p.patch)[0]?.toJS() as { op: string; path: string; value?: unknown }[];
  if (!Array.isArray(ops)) throw new KustomizeError(`${dir}: a patch must be a JSON 6902 list of operations`);
  for (const target of targets) for (const op of ops) applyOp(target, op, dir);
}

function applyOp(root: Record<string, unknown>, op: { op: string; path: string; value?: unknown }, dir: string): void {
  const keys = op.path
    .split('/')
    .slice(1)
    .map((k) => k.replace(/~1/g, '/').replace(/~0/g, '~'));
  const last = keys.pop();
  if (last === undefined) throw new KustomizeError(`${dir}: patch path '${op.path}' is empty`);
  let parent: unknown = root;
  for (const key of keys) {
    parent = Array.isArray(parent) ? parent[Number(key)] : (parent as Record<string, unknown> | undefined)?.[key];
    if (parent === undefined || parent === null || typeof parent !== 'object')
      throw new KustomizeError(`${dir}: patch path '${op.path}' does not exist (at '${key}')`);
  }
  const container = parent as Record<string, unknown> | unknown[];
  const exists = Array.isArray(container) ? last === '-' || Number(last) < container.length : last in container;
  switch (op.op) {
    case 'add':
      if (Array.isArray(container)) container.splice(last === '-' ? container.length : Number(last), 0, op.value);
      else container[last] = op.value;
      return;
    case 'replace':
      if (!exists) throw new KustomizeError(`${dir}: replace: '${op.path}' does not exist`);
      if (Array.isArray(container)) container[Number(last)] = op.value;
      else container[last] = op.value;
      return;
    case 'remove':
      if (!exists) throw new KustomizeError(`${dir}: remove: '${op.path}' does not exist`);
      if (Array.isArray(container)) container.splice(Number(last), 1);
      else delete container[last];
      return;
    default:
      throw new KustomizeError(`${dir}: patch op '${op.op}' is not supported`);
  }
}

function setImage(build: Build, image: { name: string; newName?: string; newTag?: string; digest?: string }): void {
  for (const spec of podSpecs(build.objects)) {
    for (const c of [
      ...list<Record<string, unknown>>(spec['containers']),
      ...list<Record<string, unknown>>(spec['initContainers']),
    ]) {
      const current = String(c['image']);
      const name = current.split('@')[0]?.replace(/:[^/:]*$/, '') ?? current;
      if (name !== image.name) continue;
      const tag =
        image.digest !== undefined
          ? `@${image.digest}`
          : image.newTag !== undefined
            ? `:${image.newTag}`
            : current.slice(name.length);
      c['image'] = `${image.newName ?? name}${tag}`;
    }
  }
}

function podSpecs(objects: readonly K8sObject[]): Record<string, unknown>[] {
  return objects.flatMap((o) => {
    const template = (
      (o['spec'] as Record<string, unknown> | undefined)?.['template'] as Record<string, unknown> | undefined
    )?.['spec'];
    return template === undefined ? [] : [template as Record<string, unknown>];
  });
}

/** The hash suffixes, and the pod templates' references to the renamed ConfigMaps and Secrets. */
function finish(build: Build): K8sObject[] {
  const renamed = new Map<string, string>();
  for (const o of build.hashed) {
    const name = `${o.metadata.name}-${nameHash(o)}`;
    renamed.set(`${o.kind}/${o.metadata.name}`, name);
    o.metadata.name = name;
  }
  const rename = (kind: string, holder: Record<string, unknown> | undefined, key: string) => {
    const to = holder === undefined ? undefined : renamed.get(`${kind}/${String(holder[key])}`);
    if (holder !== undefined && to !== undefined) holder[key] = to;
  };
  for (const spec of podSpecs(build.objects)) {
    for (const v of list<Record<string, Record<string, unknown>>>(spec['volumes'])) {
      rename('ConfigMap', v['configMap'], 'name');
      rename('Secret', v['secret'], 'secretName');
    }
    for (const c of [
      ...list<Record<string, unknown>>(spec['containers']),
      ...list<Record<string, unknown>>(spec['initContainers']),
    ]) {
      for (const from of list<Record<string, Record<string, unknown>>>(c['envFrom'])) {
        rename('ConfigMap', from['configMapRef'], 'name');
        rename('Secret', from['secretRef'], 'name');
      }
      for (const e of list<{ valueFrom?: Record<string, Record<string, unknown>> }>(c['env'])) {
        rename('ConfigMap', e.valueFrom?.['configMapKeyRef'], 'name');
        rename('Secret', e.valueFrom?.['secretKeyRef'], 'name');
      }
    }
  }
  return build.objects;
}
