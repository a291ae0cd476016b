/**
 * The combined watermark of several inputs (channels), with Flink's rules for idleness
 * (StatusWatermarkValve):
 * - the combined watermark is the minimum over inputs that are active and *aligned*; it never goes
 *   back;
 * - an idle input is left out; when the last active input goes idle while it held the minimum,
 *   the combined watermark moves to the highest watermark any input reached (nothing will hold it
 *   back any more), and the holder itself is idle;
 * - an input that becomes active again counts at once only if its watermark is not behind the
 *   combined one; otherwise it stays out of the minimum until its watermark catches up (it must
 *   neither move the watermark back nor hold the others at its old value). Its records meanwhile
 *   are judged by the operator's lateness rules.
 * An input becomes active with an explicit `active` element or with any watermark (the +∞ an
 * ending input sends, or a source that never said `active`).
 */
interface InputStatus {
  watermark: number;
  idle: boolean;
  /** Counts for the minimum: active and not behind the combined watermark since it became active. */
  aligned: boolean;
}

export class WatermarkHolder {
  private readonly inputs: InputStatus[];
  private current = Number.NEGATIVE_INFINITY;

  constructor(inputCount: number, restored?: number) {
    this.inputs = Array.from({ length: inputCount }, () => ({
      watermark: Number.NEGATIVE_INFINITY,
      idle: false,
      aligned: true,
    }));
    if (restored !== undefined) this.current = restored;
  }

  get value(): number {
    return this.current;
  }

  /** Every input is idle: the operator is idle downstream too. */
  get idle(): boolean {
    return this.inputs.every((i) => i.idle);
  }

  /** Returns the new combined watermark if it advanced, else undefined. */
  update(input: number, watermark: number): number | undefined {
    const status = this.status(input);
    if (status.idle) this.markActive(input);
    if (watermark <= status.watermark) return undefined;
    status.watermark = watermark;
    if (!status.aligned && watermark >= this.current) status.aligned = true;
    return this.advanceToMinimum();
  }

  markIdle(input: number): number | undefined {
    const status = this.status(input);
    if (status.idle) return undefined;
    // It held the combined watermark back if it counted for the minimum.
    const wasHolding = status.aligned;
    status.idle = true;
    status.aligned = false;
    if (!this.idle) return this.advanceToMinimum();
    if (!wasHolding) return undefined;
    const highest = Math.max(...this.inputs.map((i) => i.watermark));
    return this.advanceTo(highest);
  }

  markActive(input: number): void {
    const status = this.status(input);
    if (!status.idle) return;
    status.idle = false;
    status.aligned = status.watermark >= this.current;
  }

  private status(input: number): InputStatus {
    const status = this.inputs[input];
    if (status === undefined)
      throw new RangeError(`watermark input ${input} does not exist (the operator has ${this.inputs.length})`);
    return status;
  }

  private advanceToMinimum(): number | undefined {
    let min = Number.POSITIVE_INFINITY;
    let any = false;
    for (const status of this.inputs) {
      if (status.idle || !status.aligned) continue;
      any = true;
      if (status.watermark < min) min = status.watermark;
    }
    return any ? this.advanceTo(min) : undefined;
  }

  private advanceTo(watermark: number): number | undefined {
    if (watermark <= this.current) return undefined;
    this.current = watermark;
    return watermark;
  }
}
