// Packs the package as npm would publish it, lints the tarball (publint, Are the Types Wrong?), then
// installs it into an empty project and:
//  - loads it with both `require` and `import`;
//  - checks the published declarations' public surface (nothing @internal exported or reachable, no
//    public type the consumer cannot name, no inline object shapes in public signatures);
//  - compiles TypeScript consumers (scripts/consumer/) against it, strict with skipLibCheck off, with
//    nothing installed but the package, typescript and @types/node: the root entry as ESM and as CJS under
//    `nodenext`, and under `bundler`; then the express, fastify and bullmq subpaths with those frameworks installed.
// Any failure exits non-zero.
//
// `--load-only`: only what depends on the Node that runs it: pack, install, load both ways (bullmq too).
// The tarball lints, the declaration surface and the tsc compiles read files and give the same answer on
// every Node, so CI runs them on one (Node 20) and `--load-only` on the others.
import { execFileSync } from 'node:child_process';
import console from 'node:console';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const loadOnly = process.argv.includes('--load-only');
const consumerDir = path.join(root, 'scripts', 'consumer');
/** The range of a dev dependency in the package's manifest (what the tests ran against). */
const devVersion = (name) => JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')).devDependencies[name];
const run = (cmd, args, opts = {}) => execFileSync(cmd, args, { stdio: 'inherit', ...opts });
const npmInstall = (cwd, specs) =>
  run('npm', ['install', '--silent', '--no-audit', '--no-fund', '--prefer-offline', ...specs], { cwd });

/** The entries' declaration files, per flavour, from the manifest's `exports`. */
function declarationEntries(pkgDir) {
  const manifest = JSON.parse(readFileSync(path.join(pkgDir, 'package.json'), 'utf8'));
  const flavours = { import: [], require: [] };
  for (const [subpath, target] of Object.entries(manifest.exports)) {
    if (typeof target !== 'object') continue;
    for (const flavour of Object.keys(flavours)) {
      const types = target[flavour]?.types;
      if (types) flavours[flavour].push({ subpath, file: path.join(pkgDir, types) });
    }
  }
  return flavours;
}

const isInternal = (node) => ts.getJSDocTags(node).some((tag) => tag.tagName.text === 'internal');
const nameOf = (node) => (node.name && ts.isIdentifier(node.name) ? node.name.text : node.name?.getText() ?? '?');

/**
 * The public surface of one flavour's entries (their exports and every declaration of the package they
 * reach), as findings: `@internal` exported or reachable, a reachable declaration no entry exports, an
 * inline object type (`{ … }`) in a property, parameter or return type.
 */
function surfaceFindings(pkgDir, entries) {
  const program = ts.createProgram(
    entries.map((e) => e.file),
    { strict: true, noEmit: true, module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext, types: ['node'] },
  );
  const checker = program.getTypeChecker();
  // A declaration of the package's own, not its augmentation of another module (`declare module 'fastify'`).
  const ours = (decl) => {
    if (!path.resolve(decl.getSourceFile().fileName).startsWith(pkgDir + path.sep)) return false;
    for (let p = decl.parent; p; p = p.parent) if (ts.isModuleDeclaration(p)) return false;
    return true;
  };
  const ownDeclarations = (symbol) => {
    const decls = symbol.declarations ?? [];
    return decls.length > 0 && decls.every(ours) ? decls : [];
  };
  const resolve = (symbol) => (symbol.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(symbol) : symbol);
  const findings = new Set();

  const exported = new Set();
  const roots = [];
  for (const { subpath, file } of entries) {
    const moduleSymbol = checker.getSymbolAtLocation(program.getSourceFile(file));
    for (const symbol of checker.getExportsOfModule(moduleSymbol)) {
      const target = resolve(symbol);
      exported.add(target);
      roots.push({ subpath, name: symbol.name, target });
    }
  }

  const visited = new Set();
  const queue = [];
  const enqueue = (symbol) => {
    if (visited.has(symbol)) return;
    visited.add(symbol);
    queue.push(symbol);
  };
  for (const { subpath, name, target } of roots) {
    if (ownDeclarations(target).some(isInternal)) {
      findings.add(`internal declaration exported: ${name} (from "${subpath}")`);
    } else {
      enqueue(target);
    }
  }

  // Visits a type node: inline object types are findings; references to our declarations are followed.
  const visitType = (node, where, owner) => {
    const walk = (n) => {
      if (ts.isTypeLiteralNode(n)) {
        findings.add(`inline object type: ${where}`);
        return; // its members are part of the same finding
      }
      if (ts.isTypeReferenceNode(n) || ts.isExpressionWithTypeArguments(n) || ts.isTypeQueryNode(n)) {
        const ref = ts.isTypeReferenceNode(n) ? n.typeName : ts.isTypeQueryNode(n) ? n.exprName : n.expression;
        const symbol = checker.getSymbolAtLocation(ref);
        if (symbol) {
          const target = resolve(symbol);
          const decls = ownDeclarations(target);
          if (decls.length > 0 && !(target.flags & ts.SymbolFlags.TypeParameter)) {
            if (decls.some(isInternal)) findings.add(`internal declaration reachable: ${target.name} (from ${owner})`);
            else if (!exported.has(target)) findings.add(`reachable but not exported: ${target.name} (from ${owner})`);
            if (!decls.some(isInternal)) enqueue(target);
          }
        }
      }
      ts.forEachChild(n, walk);
    };
    if (node) walk(node);
  };
  const visitSignature = (sig, owner) => {
    for (const param of sig.parameters ?? []) visitType(param.type, `${owner}(${nameOf(param)})`, owner);
    visitType(sig.type, `${owner} return`, owner);
    for (const tp of sig.typeParameters ?? []) visitType(tp.constraint, `${owner}<${nameOf(tp)}>`, owner);
  };
  const isPublicMember = (member) =>
    !(member.name && ts.isPrivateIdentifier(member.name)) &&
    !(ts.getCombinedModifierFlags(member) & (ts.ModifierFlags.Private | ts.ModifierFlags.Protected)) &&
    !isInternal(member);

  while (queue.length > 0) {
    const symbol = queue.shift();
    for (const decl of ownDeclarations(symbol)) {
      const name = symbol.name;
      if (ts.isInterfaceDeclaration(decl) || ts.isClassDeclaration(decl)) {
        for (const clause of decl.heritageClauses ?? []) for (const t of clause.types) visitType(t, `${name} heritage`, name);
        for (const member of decl.members) {
          if (!isPublicMember(member)) continue;
          const owner = ts.isConstructorDeclaration(member) ? `${name}.constructor` : `${name}.${nameOf(member)}`;
          if (ts.isPropertySignature(member) || ts.isPropertyDeclaration(member)) visitType(member.type, owner, owner);
          else if (ts.isMethodSignature(member) || ts.isMethodDeclaration(member) || ts.isConstructorDeclaration(member) ||
            ts.isGetAccessorDeclaration(member) || ts.isCallSignatureDeclaration(member)) visitSignature(member, owner);
        }
      } else if (ts.isFunctionDeclaration(decl)) {
        visitSignature(decl, name);
      } else if (ts.isTypeAliasDeclaration(decl)) {
        // A named alias of an object type is fine; inline shapes inside it are not.
        const type = decl.type;
        if (ts.isTypeLiteralNode(type)) {
          for (const member of type.members) visitType(member.type, `${name}.${nameOf(member)}`, name);
        } else {
          visitType(type, name, name);
        }
      } else if (ts.isVariableDeclaration(decl)) {
        visitType(decl.type, name, name);
      }
    }
  }
  return findings;
}

function checkSurface(pkgDir) {
  const findings = new Set();
  for (const entries of Object.values(declarationEntries(pkgDir))) {
    for (const finding of surfaceFindings(pkgDir, entries)) findings.add(finding);
  }
  if (findings.size > 0) {
    for (const f of [...findings].sort()) console.error(`declarations: ${f}`);
    throw new Error(`the published declarations' public surface has ${findings.size} problem(s), listed above`);
  }
  console.log('published declarations: nothing @internal exported or reachable, every reachable type exported and named');
}

/** Runs the app's tsc on `files` (strict, skipLibCheck off, no emit) with one module setting. */
function compile(app, label, files, moduleFlags) {
  const tsc = path.join(app, 'node_modules', 'typescript', 'bin', 'tsc');
  const flags = ['--strict', '--skipLibCheck', 'false', '--noEmit', '--types', 'node', '--pretty', 'false', ...moduleFlags];
  try {
    run(process.execPath, [tsc, ...flags, ...files], { cwd: app });
  } catch {
    throw new Error(`TypeScript consumer (${label}) does not compile against the packed tarball: tsc ${flags.join(' ')} ${files.join(' ')}`);
  }
  console.log(`TypeScript consumer compiles (${label}): ${files.join(', ')}`);
}

// nodenext also with the strictest flags a consumer may add: the declarations must hold under them too.
const NODENEXT = ['--module', 'nodenext', '--moduleResolution', 'nodenext', '--exactOptionalPropertyTypes', '--noUncheckedIndexedAccess'];
const BUNDLER = ['--module', 'esnext', '--moduleResolution', 'bundler', '--target', 'es2022'];

const work = mkdtempSync(path.join(os.tmpdir(), 'tenantdb-pack-'));
try {
  run('npm', ['pack', '--silent', '--pack-destination', work], { cwd: root });
  const tgz = path.join(work, readdirSync(work).find((f) => f.endsWith('.tgz')));
  if (!loadOnly) {
    run('npx', ['publint', 'run', tgz, '--strict'], { cwd: root });
    run('npx', ['attw', tgz, '--profile', 'node16'], { cwd: root });
  }

  const app = path.join(work, 'app');
  mkdirSync(app, { recursive: true });
  // An ESM app: `.ts` files are ESM under nodenext, `.cts` files CommonJS.
  writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
  npmInstall(app, loadOnly ? [tgz] : [tgz, 'typescript@~5.9', '@types/node@^20']);
  const check = `
    const cjs = require('@org/tenantdb');
    import('@org/tenantdb').then((esm) => {
      const a = new cjs.TenantDbError('CONFLICT', 'x');
      const b = new esm.TenantDbError('CONFLICT', 'x');
      if (!(a instanceof esm.TenantDbError) || !(b instanceof cjs.TenantDbError)) throw new Error('instanceof across builds');
      if (typeof cjs.createPlatform !== 'function' || typeof esm.createPlatform !== 'function') throw new Error('createPlatform');
      if (cjs.DEFAULT_HEALTH_TIMEOUT_MS !== 2000 || esm.DEFAULT_HEALTH_TIMEOUT_MS !== 2000) throw new Error('DEFAULT_HEALTH_TIMEOUT_MS');
      // @opentelemetry/api is an optional peer, not installed here: both builds create (and close) a
      // platform without it, which is when they look for it.
      let otel = true;
      try { require.resolve('@opentelemetry/api'); } catch { otel = false; }
      if (otel) throw new Error('@opentelemetry/api is installed: the check needs it absent');
      const options = { mainUrl: 'postgres://u@127.0.0.1:1/x', s3: { bucket: 'b' } };
      if (cjs.TELEMETRY_CHANNELS.withTenant !== 'tenantdb:withTenant' || esm.TELEMETRY_CHANNELS.withTenant !== 'tenantdb:withTenant') throw new Error('TELEMETRY_CHANNELS');
      const platforms = [cjs.createPlatform(options), esm.createPlatform(options), cjs.createPlatform({ ...options, telemetry: false })];
      const expressCjs = require('@org/tenantdb/express');
      const fastifyCjs = require('@org/tenantdb/fastify');
      return Promise.all([import('@org/tenantdb/express'), import('@org/tenantdb/fastify')]).then(([expressEsm, fastifyEsm]) => {
        for (const [name, mod] of [['express cjs', expressCjs], ['express esm', expressEsm]]) {
          if (typeof mod.tenancy !== 'function' || typeof mod.errorHandler !== 'function' || typeof mod.healthRoute !== 'function') throw new Error(name);
        }
        for (const [name, mod] of [['fastify cjs', fastifyCjs], ['fastify esm', fastifyEsm]]) {
          if (typeof mod.tenancyPlugin !== 'function' || typeof mod.healthRoute !== 'function') throw new Error(name);
        }
        const fs = require('node:fs');
        const path = require('node:path');
        const root = path.dirname(require.resolve('@org/tenantdb/package.json'));
        for (const family of ['main', 'tenant']) {
          if (!fs.readdirSync(path.join(root, 'migrations', family)).some((f) => f.endsWith('.sql'))) throw new Error('migrations/' + family);
        }
        return Promise.all(platforms.map((p) => p.close())).then(() => {
          console.log('installed tarball loads with require and import (root, express, fastify, their health routes), migrations shipped; createPlatform works without @opentelemetry/api');
        });
      });
    });`;
  // CommonJS code, so that it can use both `require` and `import()`.
  run(process.execPath, ['--input-type=commonjs', '-e', check], {
    cwd: app,
    env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
  });

  if (!loadOnly) {
    // The root entry: nothing but the package, typescript and @types/node is installed.
    copyFileSync(path.join(consumerDir, 'index.ts'), path.join(app, 'index.ts'));
    copyFileSync(path.join(consumerDir, 'index.ts'), path.join(app, 'index.cts'));
    compile(app, 'nodenext, ESM and CJS', ['index.ts', 'index.cts'], NODENEXT);
    compile(app, 'bundler', ['index.ts'], BUNDLER);
  }

  // The framework subpaths, with the frameworks the host brings.
  const bullmq = `bullmq@${devVersion('bullmq')}`;
  npmInstall(app, loadOnly ? [bullmq] : ['express@^5', '@types/express@^5', 'fastify@^5', bullmq]);
  // The bullmq subpath loads bullmq (an optional peer) at run time: both ways, once it is installed.
  const checkBullmq = `
    const cjs = require('@org/tenantdb/bullmq');
    import('@org/tenantdb/bullmq').then((esm) => {
      for (const [name, mod] of [['bullmq cjs', cjs], ['bullmq esm', esm]]) {
        if (typeof mod.tenantQueue !== 'function' || typeof mod.tenantWorker !== 'function') throw new Error(name);
      }
      console.log('installed tarball loads with require and import (bullmq)');
    });`;
  run(process.execPath, ['--input-type=commonjs', '-e', checkBullmq], { cwd: app });
  if (!loadOnly) {
    // With the frameworks installed, so that the declarations' references to them resolve too.
    checkSurface(path.join(app, 'node_modules', '@org', 'tenantdb'));
    const files = ['express.ts', 'fastify.ts', 'bullmq.ts'];
    for (const file of files) copyFileSync(path.join(consumerDir, file), path.join(app, file));
    compile(app, 'nodenext, express, fastify and bullmq', files, NODENEXT);
    compile(app, 'bundler, express, fastify and bullmq', files, BUNDLER);
  }
} catch (err) {
  console.error(`check:exports failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 1;
} finally {
  rmSync(work, { recursive: true, force: true });
}
