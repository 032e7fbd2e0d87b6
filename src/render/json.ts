// JSON output in pieces: the same text as JSON.stringify(value, null, 2),
// produced in chunks of about 64 KiB instead of built as one string (a
// snapshot of thousands of PCI functions is megabytes). The outer objects
// are walked to `depth` levels; everything below, and arrays' elements in
// batches, are written by JSON.stringify itself (fast, native), wrapped in
// as many arrays as the nesting is deep so its indentation is already the
// right one, and the wrapper cut off again.

const CHUNK = 64 * 1024;
/** Array elements stringified at a time. */
const BATCH = 32;

/** Whether JSON.stringify leaves a property with this value out (and writes null for it in an array). */
const omitted = (v: unknown) => v === undefined || typeof v === 'function' || typeof v === 'symbol';

const plain = (v: unknown): v is Record<string, unknown> | unknown[] => {
  if (typeof v !== 'object' || v === null || typeof (v as { toJSON?: unknown }).toJSON === 'function') return false;
  if (Array.isArray(v)) return true;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
};

const pad = (level: number) => '  '.repeat(level);

/** The wrapper text JSON.stringify puts around a value nested in `level` arrays: what comes before it and after it. */
function wrapper(level: number): [number, number] {
  let before = 0;
  let after = 0;
  for (let i = 0; i < level; i++) {
    before += pad(i).length + 2;
    after += 1 + pad(i).length + 1;
  }
  return [before + pad(level).length, after];
}

/** JSON.stringify(v, null, 2) as it appears nested `level` deep (inner lines indented, the first not). `v` must not be omitted. */
function stringifyAt(v: unknown, level: number): string {
  if (level === 0) return JSON.stringify(v, null, 2);
  let w: unknown = v;
  for (let i = 0; i < level; i++) w = [w];
  const s = JSON.stringify(w, null, 2);
  const [before, after] = wrapper(level);
  return s.slice(before, s.length - after);
}

/** The text of JSON.stringify(value, null, 2) and a newline, as a sequence of chunks of about 64 KiB. */
export function* jsonChunks(value: unknown, depth = 2): Generator<string, void, undefined> {
  let parts: string[] = [];
  let size = 0;
  const put = (s: string) => {
    parts.push(s);
    size += s.length;
  };
  const take = () => {
    const s = parts.join('');
    parts = [];
    size = 0;
    return s;
  };
  function* emit(v: unknown, level: number): Generator<string, void, undefined> {
    if (size >= CHUNK) yield take();
    if (level >= depth || !plain(v)) {
      // (Only a top-level value can be left out; printed as `undefined`, like String(undefined).)
      put(level === 0 && omitted(v) ? 'undefined' : stringifyAt(v, level));
      return;
    }
    if (Array.isArray(v)) {
      if (!v.length) return put('[]');
      put('[\n');
      // In batches, each stringified as an array nested as deep as this one
      // (holes and omitted values become null, as in JSON.stringify).
      for (let i = 0; i < v.length; i += BATCH) {
        if (size >= CHUNK) yield take();
        const batch = Array.from({ length: Math.min(BATCH, v.length - i) }, (_, k) => v[i + k]);
        const s = stringifyAt(batch, level);
        // Cut "[\n" + indent before the first element and "\n" + indent + "]" after the last.
        put(s.slice(2, s.length - 1 - pad(level).length - 1));
        put(i + BATCH < v.length ? ',\n' : '\n');
      }
      put(`${pad(level)}]`);
      return;
    }
    const keys = Object.keys(v).filter((k) => !omitted(v[k]));
    if (!keys.length) return put('{}');
    put('{\n');
    for (let i = 0; i < keys.length; i++) {
      put(`${pad(level + 1)}${JSON.stringify(keys[i])}: `);
      yield* emit(v[keys[i]], level + 1);
      put(i < keys.length - 1 ? ',\n' : '\n');
    }
    put(`${pad(level)}}`);
  }
  yield* emit(value, 0);
  put('\n');
  yield take();
}
