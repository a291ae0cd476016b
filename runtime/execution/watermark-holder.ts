/**
 * The combined watermark of several inputs: the minimum over inputs that are not idle. It never
 * goes back, so an idle input that returns with old data cannot rewind it; its records are then
 * late and handled by the operator's lateness rules.
 */
export class WatermarkHolder {
  private readonly watermarks: number[];
  private readonly idle: boolean[];
  private current = Number.NEGATIVE_INFINITY;

  constructor(inputCount: number, restored?: number) {
    this.watermarks = new Array<number>(inputCount).fill(Number.NEGATIVE_INFINITY);
    this.idle = new Array<boolean>(inputCount).fill(false);
    if (restored !== undefined) this.current = restored;
  }

  get value(): number {
    return this.current;
  }

  /** Returns the new combined watermark if it advanced, else undefined. */
  update(input: number, watermark: number): number | undefined {
    this.idle[input] = false;
    if (watermark > (this.watermarks[input] ?? Number.NEGATIVE_INFINITY)) this.watermarks[input] = watermark;
    return this.recompute();
  }

  markIdle(input: number): number | undefined {
    this.idle[input] = true;
    return this.recompute();
  }

  private recompute(): number | undefined {
    let min = Number.POSITIVE_INFINITY;
    for (let i = 0; i < this.watermarks.length; i++) {
      if (!this.idle[i]) min = Math.min(min, this.watermarks[i] ?? Number.NEGATIVE_INFINITY);
    }
    if (min === Number.POSITIVE_INFINITY || min <= this.current) return undefined;
    this.current = min;
    return min;
  }
}
