/** Types of build-ui.mjs (plain JS so that `npm ci`'s prepare step runs it without tsx). */
export function buildUi(options?: { readonly force?: boolean }): Promise<{ readonly built: boolean; readonly dir: string; readonly bytes?: readonly string[] }>;
