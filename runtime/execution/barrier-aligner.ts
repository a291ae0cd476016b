/**
 * Aligned barriers for an operator with several inputs (Chandy–Lamport as Flink does it): once
 * barrier n arrived on an input, that input's later elements wait until barrier n arrived on
 * every input, so the snapshot holds exactly the records before the barrier on every path.
 * With more than one checkpoint in flight, barrier n+1 may come on an input that already gave
 * barrier n while the others have not: it is held like that input's records (`heldBarrier`)
 * and released, in order, after n is aligned.
 */
export type AlignerVerdict<E> =
  | { readonly kind: 'pass'; readonly element: E }
  | { readonly kind: 'buffered' }
  | { readonly kind: 'aligned'; readonly checkpointId: number };

export class BarrierAligner<E> {
  private pendingId: number | undefined;
  private readonly arrived = new Set<number>();
  private readonly buffered: { input: number; element: E }[] = [];

  constructor(private readonly inputCount: number) {
    if (inputCount < 1) throw new Error('an operator needs at least one input');
  }

  /** A data or watermark element arrived on `input`. */
  onElement(input: number, element: E): AlignerVerdict<E> {
    if (this.pendingId !== undefined && this.arrived.has(input)) {
      this.buffered.push({ input, element });
      return { kind: 'buffered' };
    }
    return { kind: 'pass', element };
  }

  /**
   * Barrier `checkpointId` arrived on `input`. `heldBarrier` makes the element that stands for a
   * later barrier on an input that is already blocked; it comes back from `drain`.
   */
  onBarrier(input: number, checkpointId: number, heldBarrier?: (checkpointId: number) => E): AlignerVerdict<E> {
    if (this.pendingId === undefined) this.pendingId = checkpointId;
    else if (checkpointId !== this.pendingId) {
      if (checkpointId > this.pendingId && this.arrived.has(input) && heldBarrier !== undefined) {
        this.buffered.push({ input, element: heldBarrier(checkpointId) });
        return { kind: 'buffered' };
      }
      throw new Error(
        `barrier ${checkpointId} arrived on input ${input} while aligning ${this.pendingId}: barriers out of order on one input`,
      );
    }
    this.arrived.add(input);
    if (this.arrived.size < this.inputCount) return { kind: 'buffered' };
    this.pendingId = undefined;
    this.arrived.clear();
    return { kind: 'aligned', checkpointId };
  }

  /** Elements held back during alignment, in arrival order; call after 'aligned'. */
  drain(): { input: number; element: E }[] {
    return this.buffered.splice(0, this.buffered.length);
  }
}
