/**
 * The API reference (docs/api.md), generated from the TSDoc of what each package subpath
 * exports (src/api/*.ts, one file per subpath). The same text is the export snapshot:
 * test/project/package-api.test.ts regenerates it and fails when it differs from the committed file
 * (an accidental API change) or when an export has no TSDoc.
 *
 * Written on the TypeScript compiler API rather than with TypeDoc: one pass gives the
 * reference, the snapshot and the missing-docs check as one deterministic file, with no
 * extra dependency whose output changes between its versions.
 *
 *   node --import tsx scripts/api-reference.ts          writes docs/api.md
 *   node --import tsx scripts/api-reference.ts --check  exits 1 when docs/api.md is stale
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const OUT = path.join(ROOT, 'docs', 'api.md');

/** package subpath -> entry file, read from package.json `exports` (the one source of truth) */
export function entryPoints(): { subpath: string; file: string }[] {
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { name: string; exports: Record<string, { default: string } | string> };
  return Object.entries(pkg.exports)
    .filter((e): e is [string, { default: string }] => typeof e[1] === 'object')
    .map(([key, target]) => ({
      subpath: key === '.' ? pkg.name : `${pkg.name}/${key.slice(2)}`,
      file: path.join(ROOT, target.default.replace(/^\.\/dist\//, 'src/').replace(/\.js$/, '.ts')),
    }));
}

export interface ApiExport {
  readonly subpath: string;
  readonly name: string;
  readonly kind: string;
  readonly signature: string;
  readonly doc: string;
}

const printer = ts.createPrinter({ removeComments: true });

function kindOf(decl: ts.Declaration): string {
  if (ts.isFunctionDeclaration(decl)) return 'function';
  if (ts.isClassDeclaration(decl)) return 'class';
  if (ts.isInterfaceDeclaration(decl)) return 'interface';
  if (ts.isTypeAliasDeclaration(decl)) return 'type';
  if (ts.isVariableDeclaration(decl)) return 'const';
  if (ts.isEnumDeclaration(decl)) return 'enum';
  return ts.SyntaxKind[decl.kind];
}

/** the declaration as a reader needs it: functions and consts by their type, types as written */
function signatureOf(name: string, decl: ts.Declaration, symbol: ts.Symbol, checker: ts.TypeChecker): string {
  const flags = ts.TypeFormatFlags.NoTruncation | ts.TypeFormatFlags.UseSingleQuotesForStringLiteralType;
  if (ts.isFunctionDeclaration(decl)) {
    const type = checker.getTypeOfSymbolAtLocation(symbol, decl);
    return type.getCallSignatures().map((s) => `function ${name}${checker.signatureToString(s, decl, flags)}`).join('\n');
  }
  if (ts.isVariableDeclaration(decl)) return `const ${name}: ${checker.typeToString(checker.getTypeOfSymbolAtLocation(symbol, decl), decl, flags)}`;
  if (ts.isClassDeclaration(decl)) {
    // public surface only: no bodies, no private or #private members
    const members = decl.members
      .filter((m) => !(m.name && ts.isPrivateIdentifier(m.name)) && !(ts.getCombinedModifierFlags(m as ts.Declaration) & (ts.ModifierFlags.Private | ts.ModifierFlags.Protected)))
      .filter((m) => !ts.isClassStaticBlockDeclaration(m))
      // members tagged @internal are stripped from the published .d.ts (tsconfig.build.json stripInternal)
      .filter((m) => !ts.getJSDocTags(m).some((t) => t.tagName.text === 'internal'))
      .map((m) => {
        if (ts.isMethodDeclaration(m) || ts.isConstructorDeclaration(m) || ts.isGetAccessor(m)) {
          const stripped = ts.isMethodDeclaration(m)
            ? ts.factory.updateMethodDeclaration(m, m.modifiers, m.asteriskToken, m.name, m.questionToken, m.typeParameters, m.parameters, m.type ?? inferredReturn(m, checker), undefined)
            : ts.isConstructorDeclaration(m)
              ? ts.factory.updateConstructorDeclaration(m, m.modifiers, m.parameters, undefined)
              : ts.factory.updateGetAccessorDeclaration(m, m.modifiers, m.name, m.parameters, m.type ?? inferredReturn(m, checker), undefined);
          const text = printer.printNode(ts.EmitHint.Unspecified, stripped, decl.getSourceFile()).replace(/\s*\n\s*/g, ' ').replace(/;$/, '').replace(/^async /, '');
          return `  ${text};`;
        }
        if (ts.isPropertyDeclaration(m)) {
          const type = m.type ? m.type.getText() : checker.typeToString(checker.getTypeAtLocation(m), m, flags);
          const mods = (ts.getModifiers(m) ?? []).map((x) => x.getText()).filter((x) => x !== 'public');
          return `  ${[...mods, ''].join(' ')}${m.name.getText()}${m.questionToken ? '?' : ''}: ${type};`;
        }
        return undefined;
      })
      .filter((x): x is string => x !== undefined);
    return `class ${name}${decl.heritageClauses ? ' ' + decl.heritageClauses.map((h) => h.getText()).join(' ') : ''} {\n${members.join('\n')}\n}`;
  }
  // interfaces and type aliases: as written, without comments
  return printer.printNode(ts.EmitHint.Unspecified, decl, decl.getSourceFile()).replace(/^export /, '').replace(/^declare /, '');
}

/**
 * The project's interfaces `decl` extends that are no export of their own (a base shared by two
 * exports, such as the SDK adapters' common options), printed after it: without them the
 * reference would name members a reader cannot find.
 */
function unexportedBases(decl: ts.Declaration, exported: ReadonlySet<string>, checker: ts.TypeChecker): string[] {
  if (!ts.isInterfaceDeclaration(decl)) return [];
  const out: string[] = [];
  for (const clause of decl.heritageClauses ?? []) {
    for (const type of clause.types) {
      const found = checker.getSymbolAtLocation(type.expression);
      const base = found && found.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(found) : found;
      const baseDecl = base?.declarations?.[0];
      if (!base || !baseDecl || !ts.isInterfaceDeclaration(baseDecl) || exported.has(base.name)) continue;
      if (!path.resolve(baseDecl.getSourceFile().fileName).startsWith(path.join(ROOT, 'src') + path.sep)) continue;
      out.push(signatureOf(base.name, baseDecl, base, checker), ...unexportedBases(baseDecl, exported, checker));
    }
  }
  return out;
}

function inferredReturn(m: ts.SignatureDeclaration, checker: ts.TypeChecker): ts.TypeNode | undefined {
  const sig = checker.getSignatureFromDeclaration(m);
  if (!sig) return undefined;
  return checker.typeToTypeNode(checker.getReturnTypeOfSignature(sig), m, ts.NodeBuilderFlags.NoTruncation);
}

/** `{@link X}` and `{@link X | text}` as code spans: the reference is read as plain markdown */
const plain = (parts: readonly ts.SymbolDisplayPart[] | undefined): string =>
  ts.displayPartsToString(parts as ts.SymbolDisplayPart[] | undefined).replace(/\{@link(?:code|plain)?\s+([^}|\s]+)(?:\s*\|?\s*([^}]*))?\}/g, (_m, target: string, text?: string) => (text?.trim() ? `${text.trim()} (\`${target}\`)` : `\`${target}\``)).trim();

/** the TSDoc text, then its tags (@param, @returns, @throws, @example, ...) as a list */
function docOf(symbol: ts.Symbol, checker: ts.TypeChecker): string {
  const text = plain(symbol.getDocumentationComment(checker));
  const tags = symbol
    .getJsDocTags(checker)
    .filter((t) => t.name !== 'packageDocumentation')
    .map((t) => {
      const body = plain(t.text);
      if (t.name === 'param') return `- parameter ${body.replace(/^(\S+)\s*-?\s*/, '`$1`: ')}`;
      if (t.name === 'returns') return `- returns: ${body}`;
      if (t.name === 'throws') return `- throws: ${body}`;
      if (t.name === 'example') return `- example:\n\n  \`\`\`ts\n  ${body.replace(/\n/g, '\n  ')}\n  \`\`\``;
      return `- ${t.name}${body ? `: ${body}` : ''}`;
    });
  return [text, tags.join('\n')].filter(Boolean).join('\n\n');
}

/** Every export of every subpath, with its signature and TSDoc. */
export function collectApi(): ApiExport[] {
  const entries = entryPoints();
  const config = ts.getParsedCommandLineOfConfigFile(path.join(ROOT, 'tsconfig.build.json'), {}, { ...ts.sys, onUnRecoverableConfigFileDiagnostic: () => undefined });
  if (!config) throw new Error('cannot read tsconfig.build.json');
  const program = ts.createProgram(entries.map((e) => e.file), { ...config.options, noEmit: true });
  const checker = program.getTypeChecker();
  const out: ApiExport[] = [];
  for (const { subpath, file } of entries) {
    const source = program.getSourceFile(file);
    if (!source) throw new Error(`entry ${file} (for ${subpath}) does not exist`);
    const moduleSymbol = checker.getSymbolAtLocation(source);
    if (!moduleSymbol) throw new Error(`${file} is not a module`);
    const exportedNames = new Set(checker.getExportsOfModule(moduleSymbol).map((e) => e.name));
    for (const exported of checker.getExportsOfModule(moduleSymbol).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const symbol = exported.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(exported) : exported;
      const decl = symbol.declarations?.[0];
      if (!decl) continue;
      const doc = docOf(symbol, checker);
      // types the checker prints as import("/abs/path/node_modules/pkg/...") must not depend on where the checkout is
      const signature = [signatureOf(exported.name, decl, symbol, checker), ...unexportedBases(decl, exportedNames, checker)].join('\n').replaceAll(`${ROOT}/node_modules/`, '').replaceAll(`${ROOT}/`, '');
      out.push({ subpath, name: exported.name, kind: kindOf(decl), signature, doc });
    }
  }
  return out;
}

export function renderApi(api: readonly ApiExport[]): string {
  const lines = [
    '# API reference',
    '',
    '<!-- Generated by `npm run docs:api` from the TSDoc in src/. Do not edit: test/project/package-api.test.ts fails when this file and the code disagree. -->',
    '',
    'Every export of every package subpath. Import only from these subpaths; nothing else in the package is reachable (package.json `exports`).',
    '',
  ];
  const subpaths = [...new Set(api.map((a) => a.subpath))];
  for (const sp of subpaths) lines.push(`- [\`${sp}\`](#${sp.replace(/[^a-z0-9]+/g, '')})`);
  for (const sp of subpaths) {
    lines.push('', `## ${sp}`, '');
    for (const a of api.filter((x) => x.subpath === sp)) {
      lines.push(`### ${a.name} (${a.kind})`, '', '```ts', a.signature, '```', '', a.doc || '_(undocumented)_', '');
    }
  }
  return lines.join('\n').replace(/\n{3,}/g, '\n\n').trimEnd() + '\n';
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const api = collectApi();
  const text = renderApi(api);
  const undocumented = api.filter((a) => !a.doc).map((a) => `${a.subpath}: ${a.name}`);
  if (process.argv.includes('--check')) {
    const current = fs.existsSync(OUT) ? fs.readFileSync(OUT, 'utf8') : '';
    if (current !== text) {
      process.stderr.write('docs/api.md is stale: run `npm run docs:api`\n');
      process.exit(1);
    }
  } else {
    fs.writeFileSync(OUT, text);
    process.stdout.write(`wrote ${path.relative(ROOT, OUT)}: ${api.length} exports in ${new Set(api.map((a) => a.subpath)).size} subpaths\n`);
  }
  if (undocumented.length) {
    process.stderr.write(`exports without TSDoc (${undocumented.length}):\n  ${undocumented.join('\n  ')}\n`);
    process.exit(1);
  }
}
