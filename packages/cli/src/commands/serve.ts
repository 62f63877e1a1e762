import { existsSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import {
  type Interceptor,
  type ServeAuthOptions,
  type ServeOptions,
  serve,
} from '@openshell-interceptors/sdk';
import { type Command, StartupError, UsageError } from '../command.js';
import { checkServeTlsFlags, SERVE_TLS_FLAGS, SERVE_TLS_USAGE, serveTlsOptions } from '../tls-flags.js';

const USAGE = `openshell-interceptors serve <module-or-dir> --listen <addr> [options]

  <module-or-dir>        a module whose default export is an Interceptor, or a package
                         directory (its package.json "exports"/"main", else index.js)
  --listen <addr>        host:port (port 0 picks one), [ipv6]:port, or unix:///absolute/path
${SERVE_TLS_USAGE}
  --gateway-id <id>      the gateway identity the token's iss must name (default openshell)
  --audience <aud>       the audience to accept (default: the interceptor's expected audience)
  --jwks <file>          verify gateway tokens with this JWKS file
  --jwks-url <url>       ... or with this https JWKS URL, refreshed on key rotation
  --public-key <file>    ... or with this Ed25519 public key (SPKI PEM)
  --insecure             accept calls without a token (logs a warning)
  --grace-ms <ms>        shutdown grace period for in-flight calls (default 10000)
  --max-receive-bytes <n> largest request accepted (default 4194304)

Prints 'listening on <addr>' when ready; SIGTERM/SIGINT shut it down cleanly (exit 0).`;

function isInterceptor(v: unknown): v is Interceptor {
  const i = v as Partial<Interceptor> | null;
  return (
    typeof i === 'object' &&
    i !== null &&
    typeof i.name === 'string' &&
    typeof i.manifest === 'function' &&
    typeof i.evaluate === 'function' &&
    typeof i.snapshotProviderProfiles === 'function'
  );
}

/** Running from TypeScript sources (tsx, vitest) lets a package's `source` entry be loaded directly. */
const FROM_SOURCE = import.meta.url.endsWith('.ts');

type ExportTarget = string | { readonly [condition: string]: ExportTarget } | null | undefined;

/** Pick a file from an `exports` target by condition, in the order Node (or a TS runner) would. */
function pickExport(target: ExportTarget, conditions: readonly string[]): string | undefined {
  if (typeof target === 'string') return target;
  if (!target || typeof target !== 'object') return undefined;
  for (const c of conditions) {
    const hit = pickExport(target[c], conditions);
    if (hit) return hit;
  }
  return undefined;
}

/** The module file of a package directory. */
function directoryEntry(dir: string): string {
  const pkgPath = join(dir, 'package.json');
  const candidates: string[] = [];
  let source: string | undefined;
  let name = dir;
  if (existsSync(pkgPath)) {
    let pkg: { name?: string; main?: string; exports?: ExportTarget | Record<string, ExportTarget> };
    try {
      pkg = JSON.parse(readFileSync(pkgPath, 'utf8'));
    } catch (err) {
      throw new StartupError(`${pkgPath} is not valid JSON: ${(err as Error).message}`);
    }
    name = pkg.name ?? dir;
    const exp = pkg.exports;
    const root =
      exp && typeof exp === 'object' && !Array.isArray(exp) && '.' in exp
        ? (exp as Record<string, ExportTarget>)['.']
        : exp;
    source = pickExport(root as ExportTarget, ['source']);
    if (FROM_SOURCE && source) candidates.push(source);
    const built = pickExport(root as ExportTarget, ['import', 'node', 'default']);
    if (built) candidates.push(built);
    if (pkg.main) candidates.push(pkg.main);
  }
  candidates.push('index.js');
  for (const c of candidates) {
    const file = resolve(dir, c);
    if (existsSync(file) && statSync(file).isFile()) return file;
  }
  const hint = source ? `; it looks unbuilt: run 'npx tsc -b ${dir}'` : '';
  throw new StartupError(`cannot find the entry module of ${name} (tried ${candidates.join(', ')})${hint}`);
}

async function loadInterceptor(spec: string, cwd: string): Promise<Interceptor> {
  const path = resolve(cwd, spec);
  if (!existsSync(path)) throw new StartupError(`${spec}: no such file or directory`);
  const file = statSync(path).isDirectory() ? directoryEntry(path) : path;
  let mod: { default?: unknown };
  try {
    mod = (await import(pathToFileURL(file).href)) as { default?: unknown };
  } catch (err) {
    throw new StartupError(`cannot load ${file}: ${(err as Error).message}`);
  }
  // A CommonJS module's exports arrive as `default`; its own default export one level below.
  const candidate = isInterceptor(mod.default)
    ? mod.default
    : (mod.default as { default?: unknown } | undefined)?.default;
  if (!isInterceptor(candidate)) {
    throw new StartupError(
      `${file} does not default-export an Interceptor (export default interceptor('name')...; got ${typeof mod.default})`,
    );
  }
  return candidate;
}

function positive(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0)
    throw new UsageError(`${flag} must be a non-negative integer, got '${value}'`);
  return n;
}

const command: Command = {
  name: 'serve',
  summary: 'Serve an interceptor module over gRPC',
  usage: USAGE,
  async run(argv, ctx) {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        listen: { type: 'string' },
        ...SERVE_TLS_FLAGS,
        'gateway-id': { type: 'string' },
        audience: { type: 'string' },
        jwks: { type: 'string' },
        'jwks-url': { type: 'string' },
        'public-key': { type: 'string' },
        insecure: { type: 'boolean' },
        'grace-ms': { type: 'string' },
        'max-receive-bytes': { type: 'string' },
      },
    });
    if (positionals.length !== 1) throw new UsageError('give exactly one module or directory to serve');
    if (!values.listen) throw new UsageError('--listen is required');
    const keySources = (['jwks', 'jwks-url', 'public-key'] as const).filter((k) => values[k] !== undefined);
    if (keySources.length > 1) throw new UsageError(`give only one of --jwks, --jwks-url, --public-key`);
    if (values.insecure && (keySources.length > 0 || values['gateway-id'] || values.audience)) {
      throw new UsageError('--insecure cannot be combined with token options');
    }
    if (!values.insecure && keySources.length === 0) {
      throw new UsageError(
        'authentication needs --jwks, --jwks-url or --public-key (or --insecure to run without it)',
      );
    }
    checkServeTlsFlags(values);
    const graceMs = positive(values['grace-ms'], '--grace-ms');
    const maxReceiveBytes = positive(values['max-receive-bytes'], '--max-receive-bytes');

    const target = await loadInterceptor(positionals[0]!, ctx.cwd);
    let auth: ServeAuthOptions | undefined;
    if (!values.insecure) {
      const common = {
        ...(values['gateway-id'] ? { gatewayId: values['gateway-id'] } : {}),
        ...(values.audience ? { audience: values.audience } : {}),
      };
      if (values.jwks) auth = { ...common, jwksFile: resolve(ctx.cwd, values.jwks) };
      else if (values['jwks-url']) auth = { ...common, jwksUrl: values['jwks-url'] };
      else auth = { ...common, publicKeyFile: resolve(ctx.cwd, values['public-key']!) };
    }
    const options: ServeOptions = {
      listen: values.listen,
      handleSignals: true,
      ...(auth ? { auth } : { insecure: true }),
      ...serveTlsOptions(values, ctx.cwd),
      ...(graceMs !== undefined ? { shutdownGraceMs: graceMs } : {}),
      ...(maxReceiveBytes !== undefined ? { maxReceiveBytes } : {}),
    };
    let server: Awaited<ReturnType<typeof serve>>;
    try {
      server = await serve(target, options);
    } catch (err) {
      throw new StartupError((err as Error).message);
    }
    ctx.stdout.write(`listening on ${server.address}\n`);
    await server.closed;
    return 0;
  },
};

export default command;
