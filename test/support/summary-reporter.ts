import type { Reporter, TestModule } from 'vitest/node';

/**
 * CI reads one closing line, `tests: N passed, N failed`, whatever the runner prints above it.
 * A file that fails to load counts as a failure, so a broken import can never pass as "0 failed".
 */
export default class SummaryReporter implements Reporter {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>, unhandledErrors: ReadonlyArray<unknown>): void {
    let passed = 0;
    let failed = unhandledErrors.length;
    let skipped = 0;
    for (const module of testModules) {
      let sawTest = false;
      for (const test of module.children.allTests()) {
        sawTest = true;
        const state = test.result().state;
        if (state === 'passed') passed += 1;
        else if (state === 'failed') failed += 1;
        else skipped += 1;
      }
      if (!sawTest && module.state() === 'failed') failed += 1;
    }
    process.stdout.write(`\ntests: ${passed} passed, ${failed} failed${skipped > 0 ? `, ${skipped} skipped` : ''}\n`);
  }
}
