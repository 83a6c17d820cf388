/**
 * RFC 6570 expansion of a resource template (`file:///srv/{+path}`), enough to know which URI
 * a completion value would name, so a completion offers only what the caller could read.
 */

const OPERATORS: Record<string, { first: string; sep: string; named: boolean; reserved: boolean }> = {
  '': { first: '', sep: ',', named: false, reserved: false },
  '+': { first: '', sep: ',', named: false, reserved: true },
  '#': { first: '#', sep: ',', named: false, reserved: true },
  '.': { first: '.', sep: '.', named: false, reserved: false },
  '/': { first: '/', sep: '/', named: false, reserved: false },
  ';': { first: ';', sep: ';', named: true, reserved: false },
  '?': { first: '?', sep: '&', named: true, reserved: false },
  '&': { first: '&', sep: '&', named: true, reserved: false },
};

const encode = (value: string, reserved: boolean): string =>
  reserved ? encodeURI(value).replace(/%25([0-9A-Fa-f]{2})/g, '%$1') : encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

/**
 * The URI `template` names with `values`, or undefined when a variable it uses has no value
 * (the URI is not known yet). List values (`{/a*}`) are not supported: undefined too.
 */
export function expandTemplate(template: string, values: Readonly<Record<string, unknown>>): string | undefined {
  let unknown = false;
  const out = expand(template, values, () => {
    unknown = true;
    return '';
  });
  return unknown ? undefined : out;
}

/**
 * `template` with the expressions whose variables all have values expanded, and the others
 * left as they are: still a template, of the URIs that remain possible (for a completion of
 * one variable while another has no value yet).
 */
export function expandKnown(template: string, values: Readonly<Record<string, unknown>>): string {
  return expand(template, values, (expression) => expression);
}

function expand(template: string, values: Readonly<Record<string, unknown>>, unknown: (expression: string) => string): string {
  return template.replace(/\{([+#./;?&]?)([^{}]*)\}/g, (expression: string, op: string, body: string) => {
    const o = OPERATORS[op] as (typeof OPERATORS)[string];
    const parts: string[] = [];
    for (const spec of body.split(',')) {
      const m = /^([A-Za-z0-9_.%]+)(?::(\d+))?$/.exec(spec);
      const v = m ? values[m[1] as string] : undefined;
      if (!m || typeof v !== 'string') return unknown(expression);
      const text = m[2] ? [...v].slice(0, Number(m[2])).join('') : v;
      const enc = encode(text, o.reserved);
      parts.push(o.named ? (enc === '' && op === ';' ? m[1]! : `${m[1]}=${enc}`) : enc);
    }
    return o.first + parts.join(o.sep);
  });
}
