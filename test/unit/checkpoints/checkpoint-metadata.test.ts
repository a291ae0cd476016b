import { describe, expect, it } from 'vitest';
import { CheckpointFormatError } from '../../../checkpoints/errors.ts';
import { parseMetadata, serializeMetadata, validateMetadata } from '../../../checkpoints/checkpoint-metadata.ts';
import { referencedFiles } from '../../../checkpoints/state-files.ts';
import { metadataFor, snapshot } from './helpers.ts';

const sample = metadataFor('orders', 7, {
  'map#0': snapshot('map#0', 7, ['shared/map/a.sst', 'shared/map/b.sst'], { watermark: 42 }),
  'src#0': snapshot('src#0', 7, [], { source: { positions: [{ split: 'orders-0', position: '17' }] } }),
});

function withField(field: string, value: unknown): string {
  return JSON.stringify({ ...sample, [field]: value });
}

describe('checkpoint metadata format', () => {
  it('round-trips through serialize and parse', () => {
    const parsed = parseMetadata(serializeMetadata(sample), 'mem');
    expect(parsed).toEqual(sample);
    expect(parsed.sharedFiles).toEqual(['shared/map/a.sst', 'shared/map/b.sst']);
  });

  it('rejects a newer format version, naming it and what to do', () => {
    const error = catchError(() => parseMetadata(withField('formatVersion', 2), '/x/chk-7'));
    expect(error).toBeInstanceOf(CheckpointFormatError);
    expect(error.message).toContain('format version 2');
    expect(error.message).toContain('upgrade cdcflow');
    expect(error.message).toContain('/x/chk-7');
  });

  it('rejects a missing or unknown format version', () => {
    const { formatVersion: _ignored, ...noVersion } = sample;
    expect(() => parseMetadata(JSON.stringify(noVersion), 'mem')).toThrow(/unsupported format version undefined/);
    expect(() => parseMetadata(withField('formatVersion', 0), 'mem')).toThrow(/unsupported format version 0/);
    expect(() => parseMetadata(withField('formatVersion', '1'), 'mem')).toThrow(CheckpointFormatError);
  });

  it('rejects truncated JSON', () => {
    const text = serializeMetadata(sample);
    expect(() => parseMetadata(text.slice(0, text.length / 2), 'mem')).toThrow(/not valid JSON/);
  });

  it('rejects handle paths missing from sharedFiles, so retention cannot delete them', () => {
    expect(() => parseMetadata(withField('sharedFiles', ['shared/map/a.sst']), 'mem')).toThrow(/misses paths.*b\.sst/);
  });

  it('rejects paths that could escape the checkpoint directory', () => {
    for (const bad of ['../etc/passwd', '/abs/file', 'shared//x', 'shared/./x', 'a\\b']) {
      expect(() => validateMetadata({ ...sample, sharedFiles: [...sample.sharedFiles, bad] }, 'mem')).toThrow(
        /must be relative/,
      );
    }
  });

  it('rejects a task whose id does not match operatorUid#subtaskIndex', () => {
    const tasks = { 'map#1': snapshot('map#0', 7) };
    expect(() => validateMetadata({ ...sample, tasks, sharedFiles: [] }, 'mem')).toThrow(/task "map#1".*"map#0"/);
  });

  it("checks the task state the runtime reads back (watermark, source positions), not the operator's own snapshot", () => {
    const withState = (operator: unknown) => ({
      ...sample,
      tasks: { 'src#0': { operatorUid: 'src', subtaskIndex: 0, parallelism: 1, operator, bytes: 0 } },
      sharedFiles: [],
    });
    expect(() => validateMetadata(withState({ watermark: '5' }), 'mem')).toThrow(/"operator.watermark"/);
    expect(() =>
      validateMetadata(withState({ source: { positions: [{ split: 't:0', position: 5 }] } }), 'mem'),
    ).toThrow(/"operator.source.positions"/);
    expect(() => validateMetadata(withState('offsets'), 'mem')).toThrow(/"operator" must be an object/);
    expect(
      validateMetadata(withState({ operator: ['anything'], watermark: 3 }), 'mem').tasks['src#0']?.operator,
    ).toEqual({ operator: ['anything'], watermark: 3 });
  });

  it('rejects bad kinds, ids and file bases', () => {
    expect(() => parseMetadata(withField('kind', 'snapshot'), 'mem')).toThrow(/"kind"/);
    expect(() => parseMetadata(withField('checkpointId', -1), 'mem')).toThrow(/"checkpointId"/);
    expect(() => parseMetadata(withField('fileBase', 'cwd'), 'mem')).toThrow(/"fileBase"/);
  });

  it('finds file paths nested anywhere inside an opaque handle', () => {
    const handle = {
      states: [
        { name: 'counts', files: [{ path: 'shared/a' }, { nope: 1 }] },
        { inner: { files: [{ path: 'shared/b' }] } },
      ],
    };
    expect(referencedFiles(handle)).toEqual(['shared/a', 'shared/b']);
    expect(referencedFiles('opaque')).toEqual([]);
  });
});

function catchError(fn: () => unknown): Error {
  try {
    fn();
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected an error');
}
