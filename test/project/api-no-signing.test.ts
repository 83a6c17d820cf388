/**
 * No public export may sign anything but what the issuance stages and the CRL writer build
 * (issue 16, finding 11): the package's subpaths, as a user imports them (`mcp-mtls/ca`, ...,
 * resolved through package.json `exports` to dist/), offer no signer, no CA key and no
 * function or member that hands one out; the published .d.ts name none, nor the internal
 * types (ParsedCertificate, CaLayout, Signer) behind them. Needs `npm run build`.
 */
import assert from 'node:assert/strict';
import { KeyObject } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import ts from 'typescript';
import { ROOT } from '../support/cli.js';

const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { name: string; exports: Record<string, { types: string; default: string } | string> };
const subpaths = Object.entries(pkg.exports)
  .filter((e): e is [string, { types: string; default: string }] => typeof e[1] === 'object')
  .map(([key, target]) => ({ specifier: key === '.' ? pkg.name : `${pkg.name}/${key.slice(2)}`, types: path.join(ROOT, target.types) }));

/** names of anything that signs or holds a CA key */
const FORBIDDEN = /^(signer|rootSigner|intermediateSigner|createSigner|signCertificate|signCrl|buildCrl|signCsr|loadKey|privateKey|rootKey|intermediateKey|caKey|grantKeys)$/i;

function memberNames(value: unknown): string[] {
  const names: string[] = [];
  for (let o: unknown = value; o && o !== Object.prototype && o !== Function.prototype; o = Object.getPrototypeOf(o)) {
    for (const k of Reflect.ownKeys(o as object)) names.push(typeof k === 'symbol' ? k.toString() : k);
  }
  return names;
}

test('no subpath exports a signer, a CA key or a function that hands one out (runtime, through package.json exports)', async () => {
  const found: string[] = [];
  for (const { specifier } of subpaths) {
    const mod = (await import(specifier)) as Record<string, unknown>;
    for (const [name, value] of Object.entries(mod)) {
      if (FORBIDDEN.test(name)) found.push(`${specifier}: ${name}`);
      if (typeof value === 'function') {
        for (const m of [...memberNames(value), ...memberNames((value as { prototype?: unknown }).prototype)]) if (FORBIDDEN.test(m)) found.push(`${specifier}: ${name}.${m}`);
      }
    }
  }
  assert.deepEqual(found, []);
});

test('an open Authority carries no signer or key: no member, no symbol, no property value that signs', async () => {
  const { Authority, initCa, writeCrls } = (await import(`${pkg.name}/ca`)) as typeof import('../../src/api/ca.js');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mcp-mtls-nosign-'));
  initCa({ dir: path.join(dir, 'pki'), trustDomain: 'nosign.test', rootTtlMs: 3 * 86_400_000, intermediateTtlMs: 2 * 86_400_000 }); // the intermediate outlives a default (24 h) client certificate: equal lifetimes fail when issuance crosses a second
  const ca = Authority.open(path.join(dir, 'pki'));
  try {
    await ca.issueClient({ kind: 'user', id: 'alice', teams: [], roles: [] });
    await writeCrls(ca); // signs with both keys (the root key is here): loaded, and still out of reach
    const names = memberNames(ca);
    assert.deepEqual(names.filter((n) => FORBIDDEN.test(n) || /sign/i.test(n)), []);
    assert.deepEqual(Object.getOwnPropertySymbols(ca), []);
    // nothing reachable from its properties (two levels) is a private key or has a sign() method
    const bad: string[] = [];
    const seen = new Set<unknown>();
    const visit = (v: unknown, where: string, depth: number): void => {
      if (v === null || typeof v !== 'object' || seen.has(v) || depth > 2) return;
      seen.add(v);
      if (v instanceof KeyObject && v.type === 'private') bad.push(`${where}: a private KeyObject`);
      if (typeof (v as { sign?: unknown }).sign === 'function') bad.push(`${where}: has sign()`);
      if (Buffer.isBuffer(v) || v instanceof Uint8Array) {
        if (/PRIVATE KEY/.test(Buffer.from(v).toString('latin1'))) bad.push(`${where}: private key bytes`);
        return;
      }
      for (const k of Object.keys(v)) visit((v as Record<string, unknown>)[k], `${where}.${k}`, depth + 1);
    };
    for (const k of Object.keys(ca)) visit((ca as unknown as Record<string, unknown>)[k], `ca.${k}`, 0);
    assert.deepEqual(bad, []);
  } finally {
    await ca.store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('the published .d.ts of every subpath names no signer, no CA key and no internal CA type', () => {
  for (const s of subpaths) assert.ok(fs.existsSync(s.types), `${s.types} is missing: run npm run build`);
  const program = ts.createProgram(subpaths.map((s) => s.types), { module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext, target: ts.ScriptTarget.ES2022, strict: true, skipLibCheck: true, noEmit: true });
  const checker = program.getTypeChecker();
  const found = new Set<string>();
  const seen = new Set<ts.Type>();
  const INTERNAL_TYPES = /^(Signer|ParsedCertificate|CaLayout|KeyAccess)$/;
  const walk = (type: ts.Type, where: string, depth: number, caSide: boolean): void => {
    if (seen.has(type) || depth > 4) return;
    seen.add(type);
    const typeName = type.aliasSymbol?.name ?? type.getSymbol()?.name;
    // the server side's own parsed-certificate hook is another part's matter; the CA side must expose none
    if (typeName && INTERNAL_TYPES.test(typeName) && (typeName === 'Signer' || typeName === 'KeyAccess' || caSide)) found.add(`${where}: type ${typeName}`);
    for (const prop of type.getProperties()) {
      const decl = prop.valueDeclaration ?? prop.declarations?.[0];
      if (!decl) continue;
      if (decl.getSourceFile().fileName.includes('/node_modules/')) continue; // Buffer, Date, ... are not ours
      const at = `${where}.${prop.name}`;
      const propType = checker.getTypeOfSymbolAtLocation(prop, decl);
      // a path such as `files.rootKey` (where init wrote the key) is a string, not the key
      if (FORBIDDEN.test(prop.name) && !(propType.flags & ts.TypeFlags.StringLike)) found.add(at);
      walk(propType, at, depth + 1, caSide);
      for (const sig of propType.getCallSignatures()) walk(checker.getReturnTypeOfSignature(sig), `${at}()`, depth + 1, caSide);
    }
    for (const sig of type.getCallSignatures()) walk(checker.getReturnTypeOfSignature(sig), `${where}()`, depth + 1, caSide);
  };
  for (const s of subpaths) {
    const source = program.getSourceFile(s.types);
    assert.ok(source, s.types);
    const moduleSymbol = checker.getSymbolAtLocation(source!);
    assert.ok(moduleSymbol, s.types);
    const caSide = s.specifier === `${pkg.name}/ca` || s.specifier === `${pkg.name}/ca/serve`;
    for (const exported of checker.getExportsOfModule(moduleSymbol!)) {
      if (FORBIDDEN.test(exported.name)) found.add(`${s.specifier}: ${exported.name}`);
      const symbol = exported.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(exported) : exported;
      const decl = symbol.declarations?.[0];
      if (!decl) continue;
      const where = `${s.specifier}: ${exported.name}`;
      if (symbol.flags & ts.SymbolFlags.Class) walk(checker.getDeclaredTypeOfSymbol(symbol), where, 0, caSide); // instance members
      if (symbol.flags & (ts.SymbolFlags.Interface | ts.SymbolFlags.TypeAlias)) walk(checker.getDeclaredTypeOfSymbol(symbol), where, 0, caSide);
      if (symbol.flags & (ts.SymbolFlags.Value)) walk(checker.getTypeOfSymbolAtLocation(symbol, decl), where, 0, caSide); // statics, functions, consts
    }
  }
  assert.deepEqual([...found].sort(), []);
});
