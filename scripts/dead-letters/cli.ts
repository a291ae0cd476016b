/**
 * `npm run dead-letters -- replay --from <dlq> [--to <topic>] [--reason R] [--stage S] [--dry-run]`
 * re-injects dead letters (their original key and value) into their source topic or `--to`.
 * See docs/dead-letters.md.
 */
import { Command } from 'commander';
import { replayDeadLetters } from '../../operators/sources/kafka/dead-letter-replay.ts';

const program = new Command('dead-letters').description('Inspect and replay cdcflow dead-letter topics');

program
  .command('replay')
  .description("re-inject dead letters' original key/value into their source topic (or --to)")
  .requiredOption('--from <topic>', 'the dead-letter topic to read')
  .option('--to <topic>', "where to produce (default: each letter's source topic)")
  .option('--reason <reason>', 'only letters with this cdcflow.dlq.error-kind (e.g. sink-refused)')
  .option('--stage <stage>', 'only letters of this stage (decode, an operator or sink uid)')
  .option('--dry-run', 'count what would be replayed, produce nothing', false)
  .option('--brokers <list>', 'Kafka brokers, comma-separated', process.env['KAFKA_BROKERS'] ?? '127.0.0.1:19092')
  .option('--timeout-ms <ms>', 'give up reading the dead-letter topic after this long', '60000')
  .action(
    async (o: {
      from: string;
      to?: string;
      reason?: string;
      stage?: string;
      dryRun: boolean;
      brokers: string;
      timeoutMs: string;
    }) => {
      const summary = await replayDeadLetters({
        brokers: o.brokers.split(','),
        from: o.from,
        dryRun: o.dryRun,
        timeoutMs: Number(o.timeoutMs),
        ...(o.to === undefined ? {} : { to: o.to }),
        ...(o.reason === undefined ? {} : { reason: o.reason }),
        ...(o.stage === undefined ? {} : { stage: o.stage }),
      });
      console.log(JSON.stringify({ dryRun: o.dryRun, ...summary }, null, 2));
    },
  );

await program.parseAsync(process.argv);
