/** Splitting shell command lines into words, for tests that check the commands docs and pipelines show. */

/**
 * Shell words up to the end of the command (an unquoted `;`, `|`, `&`, `)`, a redirection or a
 * comment). Quotes are removed; `$VAR` and `"$VAR"` stay as text (one word).
 */
export function shellWords(s: string): string[] {
  const out: string[] = [];
  let cur = '';
  let has = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c === "'") {
      const found = s.indexOf("'", i + 1);
      const end = found === -1 ? s.length : found; // an unclosed quote runs to the end
      cur += s.slice(i + 1, end);
      has = true;
      i = end;
    } else if (c === '"') {
      let j = i + 1;
      while (j < s.length && s[j] !== '"') j += s[j] === '\\' ? 2 : 1;
      cur += s.slice(i + 1, j);
      has = true;
      i = j;
    } else if (c === '\\') {
      cur += s[++i] ?? '';
      has = true;
    } else if (/\s/.test(c)) {
      if (has) out.push(cur);
      cur = '';
      has = false;
    } else if (';|&)<>`'.includes(c) || (c === '#' && !has)) {
      break;
    } else {
      cur += c;
      has = true;
    }
  }
  if (has) out.push(cur);
  return out;
}
