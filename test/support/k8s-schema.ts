/**
 * Validates Kubernetes objects without a cluster, as strictly as `kubectl apply` (which rejects
 * unknown fields since 1.27): the OpenAPI schemas compiled into `kubernetes-models` (types,
 * required fields, enums; `.validate()`), plus unknown fields, which those validators let pass —
 * checked against the models' TypeScript interfaces (generated from the same OpenAPI documents)
 * with the TypeScript compiler. KEDA's ScaledObject comes from `@kubernetes-models/keda` (its CRD).
 */
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import ts from 'typescript';
import type { Model } from '@kubernetes-models/base';
import { ScaledObject } from '@kubernetes-models/keda/keda.sh/v1alpha1';
import { StatefulSet, Deployment } from 'kubernetes-models/apps/v1';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { ConfigMap, Secret, Service, ServiceAccount } from 'kubernetes-models/v1';

type ModelClass = new (data: never) => Model<unknown>;

/** apiVersion/kind → the model's class, its module and interface (for the unknown-field check). */
const MODELS: Record<string, { readonly model: ModelClass; readonly module: string; readonly iface: string }> = {
  'v1/ConfigMap': {
    model: ConfigMap as unknown as ModelClass,
    module: 'kubernetes-models/v1/ConfigMap',
    iface: 'IConfigMap',
  },
  'v1/Secret': { model: Secret as unknown as ModelClass, module: 'kubernetes-models/v1/Secret', iface: 'ISecret' },
  'v1/Service': { model: Service as unknown as ModelClass, module: 'kubernetes-models/v1/Service', iface: 'IService' },
  'v1/ServiceAccount': {
    model: ServiceAccount as unknown as ModelClass,
    module: 'kubernetes-models/v1/ServiceAccount',
    iface: 'IServiceAccount',
  },
  'apps/v1/StatefulSet': {
    model: StatefulSet as unknown as ModelClass,
    module: 'kubernetes-models/apps/v1/StatefulSet',
    iface: 'IStatefulSet',
  },
  'apps/v1/Deployment': {
    model: Deployment as unknown as ModelClass,
    module: 'kubernetes-models/apps/v1/Deployment',
    iface: 'IDeployment',
  },
  'policy/v1/PodDisruptionBudget': {
    model: PodDisruptionBudget as unknown as ModelClass,
    module: 'kubernetes-models/policy/v1/PodDisruptionBudget',
    iface: 'IPodDisruptionBudget',
  },
  'autoscaling/v2/HorizontalPodAutoscaler': {
    model: HorizontalPodAutoscaler as unknown as ModelClass,
    module: 'kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler',
    iface: 'IHorizontalPodAutoscaler',
  },
  'keda.sh/v1alpha1/ScaledObject': {
    model: ScaledObject as unknown as ModelClass,
    module: '@kubernetes-models/keda/keda.sh/v1alpha1/ScaledObject',
    iface: 'IScaledObject',
  },
};

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

/** Problems of one object (empty: valid), each naming the object and the field. */
export function schemaProblems(o: { apiVersion?: unknown; kind?: unknown; metadata?: { name?: unknown } }): string[] {
  const key = `${String(o.apiVersion)}/${String(o.kind)}`;
  const id = `${String(o.kind)} ${String(o.metadata?.name)}`;
  const entry = MODELS[key];
  if (entry === undefined) return [`${id}: no schema for ${key} (add it to test/support/k8s-schema.ts)`];
  const problems: string[] = [];
  try {
    new entry.model(o as never).validate();
  } catch (error) {
    problems.push(`${id}: ${(error as Error).message}`);
  }
  const checker = typeChecker();
  const type = checker.modelTypes.get(key);
  if (type === undefined)
    problems.push(`${id}: the TypeScript interface ${entry.iface} of ${entry.module} was not found`);
  else unknownFields(checker.checker, type, o, '', problems);
  return problems.map((p) => (p.startsWith(id) ? p : `${id}: ${p}`));
}

let cached: { checker: ts.TypeChecker; modelTypes: Map<string, ts.Type> } | undefined;

/** One TypeScript program over a generated file that names every model interface (built once, ~1 s). */
function typeChecker(): { checker: ts.TypeChecker; modelTypes: Map<string, ts.Type> } {
  if (cached !== undefined) return cached;
  const file = join(repoRoot, '__k8s_models__.ts');
  const keys = Object.keys(MODELS);
  const source = [
    ...keys.map(
      (k, i) =>
        `import type { ${(MODELS[k] as { iface: string }).iface} as M${i} } from '${(MODELS[k] as { module: string }).module}';`,
    ),
    ...keys.map((_, i) => `export declare const m${i}: M${i};`),
  ].join('\n');
  const options: ts.CompilerOptions = {
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022,
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    types: [],
  };
  const host = ts.createCompilerHost(options);
  const getSourceFile = host.getSourceFile.bind(host);
  host.getSourceFile = (name, language, ...rest) =>
    name === file ? ts.createSourceFile(name, source, language) : getSourceFile(name, language, ...rest);
  const fileExists = host.fileExists.bind(host);
  host.fileExists = (name) => name === file || fileExists(name);
  const program = ts.createProgram([file], options, host);
  const checker = program.getTypeChecker();
  const sf = program.getSourceFile(file) as ts.SourceFile;
  const modelTypes = new Map<string, ts.Type>();
  const exports = checker.getExportsOfModule(checker.getSymbolAtLocation(sf) as ts.Symbol);
  keys.forEach((k, i) => {
    const symbol = exports.find((s) => s.name === `m${i}`);
    const type = symbol === undefined ? undefined : checker.getTypeOfSymbol(symbol);
    if (type !== undefined && (type.flags & ts.TypeFlags.Any) === 0) modelTypes.set(k, type);
  });
  cached = { checker, modelTypes };
  return cached;
}

/** Walks `value` along `type`: every key of an object must be a property of (some member of) its type. */
function unknownFields(checker: ts.TypeChecker, type: ts.Type, value: unknown, path: string, problems: string[]): void {
  if (value === null || typeof value !== 'object') return;
  const candidates = (type.isUnion() ? type.types : [type]).filter(
    (t) => (t.flags & (ts.TypeFlags.Undefined | ts.TypeFlags.Null)) === 0,
  );
  if (Array.isArray(value)) {
    const element = candidates
      .map((t) => (checker.isArrayType(t) ? checker.getTypeArguments(t as ts.TypeReference)[0] : undefined))
      .find((t) => t !== undefined);
    if (element !== undefined) value.forEach((v, i) => unknownFields(checker, element, v, `${path}[${i}]`, problems));
    return;
  }
  const objects = candidates.filter((t) => (t.flags & ts.TypeFlags.Object) !== 0 && !checker.isArrayType(t));
  if (objects.length === 0) return;
  // A map (labels, annotations, ConfigMap data) takes any key.
  if (objects.some((t) => checker.getIndexInfosOfType(t).length > 0)) return;
  for (const [key, child] of Object.entries(value)) {
    const owner = objects.find((t) => t.getProperty(key) !== undefined);
    const property = owner?.getProperty(key);
    if (property === undefined) {
      problems.push(`unknown field ${path === '' ? key : `${path}.${key}`}`);
      continue;
    }
    unknownFields(
      checker,
      checker.getNonNullableType(checker.getTypeOfSymbol(property)),
      child,
      path === '' ? key : `${path}.${key}`,
      problems,
    );
  }
}
