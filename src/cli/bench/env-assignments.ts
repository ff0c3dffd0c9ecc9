/**
 * `NAME=VALUE …` options of the bench scripts: bench/e2e-compare's --compare-env, which starts
 * a second serve with those environment variables set as well.
 */

/**
 * The words of `text` as a record of variables; undefined and empty give {}. A word without
 * '=' or with an empty name is an error naming `option`.
 */
export function envAssignments(text: string | undefined, option: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const word of (text ?? '').split(/\s+/).filter(Boolean)) {
    const eq = word.indexOf('=');
    if (eq <= 0) throw new Error(`${option}: '${word}' is not NAME=VALUE`);
    out[word.slice(0, eq)] = word.slice(eq + 1);
  }
  return out;
}
