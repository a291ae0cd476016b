/** A comma-separated flag (`--key id,k2`, `--columns a,b`) as trimmed names; `undefined` when not given. */
export function columnList(flag: string | undefined): string[] | undefined {
  return flag
    ?.split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}
