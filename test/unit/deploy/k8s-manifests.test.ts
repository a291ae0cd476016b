/**
 * The Kubernetes manifests (scripts/deploy/k8s/) and the image file, without a cluster: rendered
 * like `kubectl kustomize` (test/support/kustomize.ts; compared with kubectl where installed),
 * every object valid against the Kubernetes OpenAPI schemas with no unknown field, and the links
 * to the code hold (test/support/k8s-manifest-checks.ts). Broken copies must be rejected, each
 * with a message naming what is wrong.
 */
import { execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { DEFAULT_LAYOUT, deployProblems, renderings, type DeployLayout } from '../../support/k8s-manifest-checks.ts';

const work = mkdtempSync(join(tmpdir(), 'cdcflow-k8s-test-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function kubectl(): boolean {
  try {
    execFileSync('kubectl', ['version', '--client'], { stdio: 'ignore', timeout: 20_000 });
    return true;
  } catch {
    return false;
  }
}

/** A copy of the deploy files with one text replaced (which must occur). */
function brokenCopy(
  name: string,
  file: 'k8s' | 'dockerfile' | 'doc',
  path: string,
  from: string,
  to: string,
): DeployLayout {
  const dir = join(work, name);
  const layout: DeployLayout = {
    k8sDir: join(dir, 'k8s'),
    dockerfile: join(dir, 'Dockerfile'),
    doc: join(dir, 'kubernetes.md'),
  };
  cpSync(DEFAULT_LAYOUT.k8sDir, layout.k8sDir, { recursive: true });
  cpSync(DEFAULT_LAYOUT.dockerfile, layout.dockerfile);
  cpSync(DEFAULT_LAYOUT.doc, layout.doc);
  const target = file === 'k8s' ? join(layout.k8sDir, path) : file === 'dockerfile' ? layout.dockerfile : layout.doc;
  const text = readFileSync(target, 'utf8');
  if (!text.includes(from)) throw new Error(`${target} does not contain ${JSON.stringify(from)}: update this test`);
  writeFileSync(target, text.replace(from, to));
  return layout;
}

describe('Kubernetes manifests', () => {
  it('render, validate against the Kubernetes schemas and fit the code', () => {
    const rendered = renderings(DEFAULT_LAYOUT.k8sDir);
    expect([...rendered.keys()]).toEqual([
      'base',
      'overlays/example',
      'overlays/example + components/hpa-autoscaling',
      'overlays/example + components/keda-autoscaling',
    ]);
    expect(deployProblems()).toEqual([]);
  }, 120_000);

  it.skipIf(!kubectl())(
    'render exactly as kubectl kustomize does',
    () => {
      for (const [name, objects] of renderings(DEFAULT_LAYOUT.k8sDir)) {
        const parts = name.split(' + ');
        const dir = mkdtempSync(join(work, 'kubectl-'));
        const kustomization = [`resources:\n  - ${relative(dir, join(DEFAULT_LAYOUT.k8sDir, parts[0] as string))}`];
        if (parts[1] !== undefined)
          kustomization.push(`components:\n  - ${relative(dir, join(DEFAULT_LAYOUT.k8sDir, parts[1]))}`);
        writeFileSync(join(dir, 'kustomization.yaml'), `${kustomization.join('\n')}\n`);
        const theirs = parseAllDocuments(
          execFileSync('kubectl', ['kustomize', dir], { encoding: 'utf8', timeout: 60_000 }),
        ).map((d) => d.toJS() as { kind: string; metadata: { name: string } });
        const key = (o: { kind: string; metadata: { name: string } }) => `${o.kind}/${o.metadata.name}`;
        expect(objects.map(key).sort(), name).toEqual(theirs.map(key).sort());
        for (const o of theirs)
          expect(
            isDeepStrictEqual(
              objects.find((m) => key(m) === key(o)),
              o,
            ),
            `${name}: ${key(o)}`,
          ).toBe(true);
      }
    },
    120_000,
  );

  const broken: [string, 'k8s' | 'dockerfile' | 'doc', string, string, string, RegExp][] = [
    [
      'a misspelt field',
      'k8s',
      'base/statefulset.yaml',
      'path: /readyz',
      'paht: /readyz',
      /unknown field spec\.template\.spec\.containers\[0\]\.readinessProbe\.httpGet\.paht/,
    ],
    ['a wrong type', 'k8s', 'base/statefulset.yaml', 'replicas: 1', 'replicas: one', /spec\/replicas must be integer/],
    [
      'a readiness path the server lacks',
      'k8s',
      'base/statefulset.yaml',
      'path: /readyz',
      'path: /ready',
      /readinessProbe path \/ready is not a GET route/,
    ],
    [
      'liveness on a missing route',
      'k8s',
      'base/statefulset.yaml',
      'path: /livez',
      'path: /alive',
      /livenessProbe path \/alive is not a GET route/,
    ],
    [
      'a probe on another port',
      'k8s',
      'base/kustomization.yaml',
      'CDCFLOW_REST_PORT=8081',
      'CDCFLOW_REST_PORT=9090',
      /readinessProbe port http is not rest\.port 9090/,
    ],
    [
      'a misspelt variable',
      'k8s',
      'base/kustomization.yaml',
      'CDCFLOW_STATE_DIR=',
      'CDCFLOW_STATEDIR=',
      /environment variable CDCFLOW_STATEDIR is read by nothing/,
    ],
    [
      'a value the config rejects',
      'k8s',
      'base/kustomization.yaml',
      'CDCFLOW_STOP_DEADLINE_MS=30000',
      'CDCFLOW_STOP_DEADLINE_MS=soon',
      /configuration does not load:[\s\S]*lifecycle\.stopDeadlineMs/,
    ],
    [
      'a grace period shorter than the stop deadline',
      'k8s',
      'base/statefulset.yaml',
      'terminationGracePeriodSeconds: 60',
      'terminationGracePeriodSeconds: 30',
      /terminationGracePeriodSeconds 30 < 40/,
    ],
    [
      'state off the volume',
      'k8s',
      'base/kustomization.yaml',
      'CDCFLOW_STATE_DIR=/var/lib/cdcflow/state',
      'CDCFLOW_STATE_DIR=/tmp/state',
      /state\.dir \/tmp\/state is not on a volumeClaimTemplate/,
    ],
    [
      'a loopback REST host',
      'k8s',
      'base/kustomization.yaml',
      'CDCFLOW_REST_HOST=0.0.0.0',
      'CDCFLOW_REST_HOST=127.0.0.1',
      /rest\.host 127\.0\.0\.1 is loopback/,
    ],
    [
      'no scrape annotation',
      'k8s',
      'base/statefulset.yaml',
      'prometheus.io/scrape: "true"',
      'prometheus.io/scrape: "false"',
      /prometheus\.io\/scrape must be "true"/,
    ],
    [
      'an undocumented Secret',
      'k8s',
      'base/statefulset.yaml',
      'name: cdcflow-s3',
      'name: cdcflow-s4',
      /envFrom Secret cdcflow-s4 has no `kubectl create secret generic cdcflow-s4`/,
    ],
    [
      'a kustomize feature the renderer lacks',
      'k8s',
      'overlays/example/kustomization.yaml',
      'namespace: cdcflow',
      'namePrefix: prod-',
      /kustomization field 'namePrefix' is not supported/,
    ],
    [
      'KEDA past the partitions',
      'k8s',
      'components/keda-autoscaling/scaledobject.yaml',
      'allowIdleConsumers: "false"',
      'allowIdleConsumers: "true"',
      /allowIdleConsumers would scale past the partition count/,
    ],
    [
      'KEDA on another group',
      'k8s',
      'components/keda-autoscaling/scaledobject.yaml',
      'consumerGroup: orders-to-postgres',
      'consumerGroup: orders',
      /consumerGroup orders is not the job's group orders-to-postgres/,
    ],
    [
      'an image that does not run the bin',
      'dockerfile',
      '',
      'ENTRYPOINT ["cdcflow"]',
      'ENTRYPOINT ["node", "runtime/cli/main.ts"]',
      /ENTRYPOINT must be \["cdcflow"\]/,
    ],
    [
      'dev dependencies in the image',
      'dockerfile',
      '',
      'npm ci --omit=dev',
      'npm ci',
      /must install with `npm ci --omit=dev`/,
    ],
  ];
  it.each(broken)(
    'rejects %s',
    (name, file, path, from, to, expected) => {
      const problems = deployProblems(brokenCopy(name.replace(/\W+/g, '-'), file, path, from, to));
      expect(
        problems.some((p) => expected.test(p)),
        problems.join('\n'),
      ).toBe(true);
    },
    60_000,
  );
});
