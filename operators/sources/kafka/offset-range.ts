/**
 * Offsets that point at data the broker no longer has. Retention can delete segments while a job
 * lags (or is down), and a topic can be deleted and recreated; a position recorded before either
 * is then out of range. Kafka clients "recover" by resetting to a default offset, which skips data
 * without a trace — here the job fails instead, unless the job chose a policy that accepts the skip
 * (counted in `cdcflow_source_offsets_skipped_total` and logged).
 */
import { CdcflowError } from '../../../state/errors.ts';

/** What to do when a position is out of range: fail the job (default), or resume at the earliest / latest offset. */
export type OffsetOutOfRangePolicy = 'fail' | 'earliest' | 'latest';

export type OffsetLossCause =
  /** The position is below the log start: retention (or `deleteRecords`) removed what was not read yet. */
  | 'below-log-start'
  /** The position is above the high watermark: the topic was deleted and recreated (or truncated). */
  | 'above-high-watermark'
  /** The partition does not exist any more: the topic was recreated with fewer partitions. */
  | 'partition-missing';

export interface OffsetLoss {
  readonly topic: string;
  readonly partition: number;
  /** The position the job was to read next (checkpointed, committed or reached while running). */
  readonly offset: string;
  /** Earliest offset the broker still has; undefined when the partition is gone. */
  readonly earliest: string | undefined;
  /** High watermark (next offset to be written); undefined when the partition is gone. */
  readonly latest: string | undefined;
  readonly cause: OffsetLossCause;
  /** Where the position came from, for the message. */
  readonly origin: 'checkpoint' | 'committed offset' | 'fetch';
}

/** A Kafka position is gone; not retriable: a restart would meet the same broker state. */
export class SourceOffsetOutOfRangeError extends CdcflowError {
  readonly loss: OffsetLoss;

  constructor(loss: OffsetLoss) {
    super(
      describeLoss(loss) +
        "; records were lost or the topic was replaced. Rebuild the job's state (e.g. re-snapshot the table), or accept the skip with the source option offsetOutOfRange: 'earliest' | 'latest'",
      {
        domain: 'external',
        retriable: false,
      },
    );
    this.loss = loss;
  }
}

export function describeLoss(loss: OffsetLoss): string {
  const where = `${loss.topic} partition ${loss.partition}`;
  switch (loss.cause) {
    case 'below-log-start':
      return `${where}: ${loss.origin} offset ${loss.offset} is out of range, the earliest offset available is ${String(loss.earliest)} (retention deleted ${skippedBelowStart(loss)} records not read yet)`;
    case 'above-high-watermark':
      return `${where}: ${loss.origin} offset ${loss.offset} is beyond the end of the partition (high watermark ${String(loss.latest)}, earliest ${String(loss.earliest)}): the topic was deleted and recreated`;
    case 'partition-missing':
      return `${where}: the partition no longer exists (${loss.origin} offset ${loss.offset}): the topic was recreated with fewer partitions`;
  }
}

function skippedBelowStart(loss: OffsetLoss): bigint {
  return loss.earliest === undefined ? 0n : BigInt(loss.earliest) - BigInt(loss.offset);
}

/** Compares a position with the partition's watermarks; undefined when it is in range. */
export function checkPosition(
  split: { readonly topic: string; readonly partition: number },
  offset: string,
  watermarks: { readonly low: string; readonly high: string } | undefined,
  origin: OffsetLoss['origin'],
): OffsetLoss | undefined {
  const base = { ...split, offset, origin };
  if (watermarks === undefined) return { ...base, earliest: undefined, latest: undefined, cause: 'partition-missing' };
  const at = BigInt(offset);
  const { low, high } = watermarks;
  if (at < BigInt(low)) return { ...base, earliest: low, latest: high, cause: 'below-log-start' };
  if (at > BigInt(high)) return { ...base, earliest: low, latest: high, cause: 'above-high-watermark' };
  return undefined;
}

export interface OffsetLossResolution {
  /** Offset to resume from; undefined when there is nothing left to read (partition gone). */
  readonly resumeAt: string | undefined;
  /**
   * Records skipped that the job will never see, as far as the broker can tell: for a lost log
   * start, earliest − offset (plus, for `latest`, everything up to the high watermark); for a
   * recreated topic, the old topic's records are unknowable and only the new ones skipped count.
   */
  readonly skipped: bigint;
}

/** Applies the policy: throws `SourceOffsetOutOfRangeError` for 'fail', else says where to resume. */
export function resolveLoss(loss: OffsetLoss, policy: OffsetOutOfRangePolicy): OffsetLossResolution {
  if (policy === 'fail') throw new SourceOffsetOutOfRangeError(loss);
  if (loss.earliest === undefined || loss.latest === undefined) return { resumeAt: undefined, skipped: 0n };
  const lost = loss.cause === 'below-log-start' ? skippedBelowStart(loss) : 0n;
  if (policy === 'earliest') return { resumeAt: loss.earliest, skipped: lost };
  return { resumeAt: loss.latest, skipped: lost + BigInt(loss.latest) - BigInt(loss.earliest) };
}
