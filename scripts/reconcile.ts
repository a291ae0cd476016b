/**
 * npm run reconcile -- --source <url> --source-table <t> --sink <url> --sink-table <t>
 *                      [--key id[,k2]] [--chunk 5000] [--columns a,b] [--ignore c,d]
 *                      [--source-where SQL] [--sink-where SQL] [--samples 5] [--json]
 * Compares a source table with a sink table by key and every column (runtime/reconcile).
 * The sink may also be Elasticsearch (`--sink http://127.0.0.1:19200 --sink-index orders`) or Redis
 * (`--sink redis://127.0.0.1:16379 --sink-prefix orders`: keys `orders:<id>` holding the row's JSON).
 * Exit code: 0 equal, 1 different, 2 could not compare (usage, connection, shape).
 * --sink defaults to --source; --sink-where filters rows (e.g. "NOT deleted" for a sink in idempotent mode).
 */
import { parseArgs } from 'node:util';
import { columnList, formatReconcileReport, reconcileTables, type ReconcileSink } from '../runtime/reconcile/index.ts';

const usage = `usage: npm run reconcile -- --source <postgres url> --source-table <table>
       ( [--sink <postgres url>] --sink-table <table> | --sink <http url> --sink-index <index> | --sink <redis url> --sink-prefix <prefix> )
       [--key id[,k2]] [--chunk 5000] [--columns a,b] [--ignore c,d] [--source-where SQL] [--sink-where SQL] [--samples 5] [--json]`;

async function main(): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        source: { type: 'string' },
        'source-table': { type: 'string' },
        sink: { type: 'string' },
        'sink-table': { type: 'string' },
        'sink-index': { type: 'string' },
        'sink-prefix': { type: 'string' },
        key: { type: 'string' },
        chunk: { type: 'string' },
        columns: { type: 'string' },
        ignore: { type: 'string' },
        'source-where': { type: 'string' },
        'sink-where': { type: 'string' },
        samples: { type: 'string' },
        json: { type: 'boolean' },
        help: { type: 'boolean' },
      },
    }));
  } catch (error) {
    console.error(`${error instanceof Error ? error.message : String(error)}\n${usage}`);
    return 2;
  }
  if (values.help === true) {
    console.log(usage);
    return 0;
  }
  const sourceUrl = values.source ?? process.env['CDCFLOW_SOURCE_DATABASE_URL'];
  const sinkUrl = values.sink ?? sourceUrl;
  if (sourceUrl === undefined || sinkUrl === undefined || values['source-table'] === undefined) {
    console.error(usage);
    return 2;
  }
  const scheme = /^([a-z]+):/.exec(sinkUrl)?.[1];
  let sink: ReconcileSink;
  if ((scheme === 'http' || scheme === 'https') && values['sink-index'] !== undefined)
    sink = { kind: 'elasticsearch', url: sinkUrl, index: values['sink-index'] };
  else if ((scheme === 'redis' || scheme === 'rediss') && values['sink-prefix'] !== undefined)
    sink = { kind: 'redis', url: sinkUrl, prefix: values['sink-prefix'] };
  else if ((scheme === 'postgres' || scheme === 'postgresql') && values['sink-table'] !== undefined) {
    sink = {
      url: sinkUrl,
      table: values['sink-table'],
      ...(values['sink-where'] === undefined ? {} : { where: values['sink-where'] }),
    };
  } else {
    console.error(
      `the sink needs --sink-table (postgres://), --sink-index (http://) or --sink-prefix (redis://)\n${usage}`,
    );
    return 2;
  }
  const key = columnList(values.key);
  const columns = columnList(values.columns);
  const ignore = columnList(values.ignore);
  const report = await reconcileTables({
    source: {
      url: sourceUrl,
      table: values['source-table'],
      ...(values['source-where'] === undefined ? {} : { where: values['source-where'] }),
    },
    sink,
    ...(key === undefined ? {} : { key }),
    ...(columns === undefined ? {} : { columns }),
    ...(ignore === undefined ? {} : { ignore }),
    ...(values.chunk === undefined ? {} : { chunk: Number(values.chunk) }),
    ...(values.samples === undefined ? {} : { samples: Number(values.samples) }),
  });
  console.log(values.json === true ? JSON.stringify(report, null, 2) : formatReconcileReport(report));
  return report.equal ? 0 : 1;
}

try {
  process.exitCode = await main();
} catch (error) {
  console.error(error instanceof Error ? error.message : String(error));
  process.exitCode = 2;
}
