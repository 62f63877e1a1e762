import { access, mkdir, readFile, writeFile } from 'node:fs/promises';
import { basename, extname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import {
  BundleError,
  createBundle,
  EndpointError,
  FileFormatError,
  formatBundle,
  generateSigningKey,
  isValidKeyId,
  PolicyDriverConnection,
  PolicyInputError,
  ProjectionVerificationError,
  parseStructured,
  publicJwk,
  readBundleFile,
  runDriverConformance,
  SANDBOX_POLICY_SURFACE,
  TrustStore,
  TrustStoreError,
  toEd25519PrivateKey,
  verifyBundle,
  writeBundleFile,
} from '@openshell-interceptors/policy-authority';
import { type Command, type CommandContext, EXIT, StartupError, UsageError } from '../command.js';
import { colourizer, formatTable, printJson } from '../output.js';
import { checkServeTlsFlags, readPem, SERVE_TLS_FLAGS, serveTlsOptions } from '../tls-flags.js';

const USAGE = `openshell-interceptors policy <subcommand> [options]

  policy keygen --out DIR [--kid ID] [--json]
      Create an Ed25519 signing key: DIR/<kid>.key (private, mode 0600),
      DIR/<kid>.pem and DIR/<kid>.jwk (public; copy them into a trust store).
  policy sign <policy.yaml|json> --key PRIVATE_KEY [--kid ID] [--surface ID]
              [--audit KEY=VALUE]... [--out BUNDLE] [--json]
      Sign a ProtoJSON SandboxPolicy into a bundle (YAML, or JSON for *.json;
      stdout without --out). --kid defaults to the key file name for <kid>.key.
  policy verify <bundle>... --trust DIR|JWKS [--json]
      Verify bundles against a trust store; exit 1 naming the failure.
  policy check-driver <endpoint> [--trust DIR|JWKS] [--surface ID] [--user SUBJECT]
              [--attr KEY=VALUE]... [--deadline MS] [--tls-ca FILE] [--tls-server-name NAME] [--json]
      Conformance run against a policy driver (unix:///path, host:port, https://host:port);
      exit 1 when any check fails.
  policy serve --driver ENDPOINT --listen ADDR [--trust DIR|JWKS] [--state DIR] [--surface ID]
              [--name NAME] [--driver-deadline MS] [--tenant-from-principal KEY]
              (--jwks FILE | --public-key FILE [--gateway-id ID] [--audience AUD] | --insecure)
              [--tls-cert FILE --tls-key FILE [--tls-client-ca FILE]]
              [--driver-tls-ca FILE] [--driver-tls-server-name NAME]
              [--driver-tls-cert FILE --driver-tls-key FILE]
      Serve the enforcing interceptor: the driver is the policy authority for new sandboxes,
      projections are verified with --trust, handles are journaled in --state.
      --tls-*: TLS (and mTLS) toward the gateway, as for 'serve'. --driver-tls-*: for an
      https:// driver, the CA that replaces the platform roots, the name its certificate
      must carry, and a client certificate for a driver that requires one.
      Prints 'listening on <addr>'; SIGTERM/SIGINT shut it down cleanly.`;

function keyValues(list: string[] | undefined, flag: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of list ?? []) {
    const eq = item.indexOf('=');
    if (eq <= 0) throw new UsageError(`${flag} expects KEY=VALUE, got '${item}'`);
    out[item.slice(0, eq)] = item.slice(eq + 1);
  }
  return out;
}

async function readText(file: string, what: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    throw new StartupError(
      `cannot read ${what} ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`,
    );
  }
}

async function loadTrust(path: string): Promise<TrustStore> {
  try {
    return await TrustStore.load(path);
  } catch (err) {
    if (err instanceof TrustStoreError) throw new StartupError(err.message);
    throw err;
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

async function keygen(argv: string[], ctx: CommandContext): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: { out: { type: 'string' }, kid: { type: 'string' }, json: { type: 'boolean' } },
    strict: true,
    allowPositionals: true,
  });
  if (positionals.length) throw new UsageError(`keygen takes no arguments, got '${positionals[0]}'`);
  if (!values.out) throw new UsageError('keygen needs --out DIR');
  if (values.kid !== undefined && !isValidKeyId(values.kid)) {
    throw new UsageError(
      `invalid --kid '${values.kid}': printable ASCII without spaces, 1 to 200 characters`,
    );
  }
  const key = await generateSigningKey(values.kid);
  const dir = resolve(ctx.cwd, values.out);
  const files = {
    privateKey: join(dir, `${key.keyId}.key`),
    publicPem: join(dir, `${key.keyId}.pem`),
    publicJwk: join(dir, `${key.keyId}.jwk`),
  };
  for (const f of Object.values(files)) {
    if (await exists(f)) throw new StartupError(`${f} exists; refusing to overwrite a key`);
  }
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await writeFile(files.privateKey, key.privateKey.export({ type: 'pkcs8', format: 'pem' }), {
    mode: 0o600,
    flag: 'wx',
  });
  await writeFile(files.publicPem, key.publicKey.export({ type: 'spki', format: 'pem' }), {
    mode: 0o644,
    flag: 'wx',
  });
  await writeFile(files.publicJwk, `${JSON.stringify(publicJwk(key.publicKey, key.keyId), null, 2)}\n`, {
    mode: 0o644,
    flag: 'wx',
  });
  if (values.json) printJson(ctx.stdout, { keyId: key.keyId, ...files });
  else {
    ctx.stdout.write(
      [
        `key id       ${key.keyId}`,
        `private key  ${files.privateKey} (mode 0600; keep it with the policy authority)`,
        `public key   ${files.publicPem}`,
        `public JWK   ${files.publicJwk}`,
        '',
      ].join('\n'),
    );
  }
  return EXIT.ok;
}

async function sign(argv: string[], ctx: CommandContext): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      key: { type: 'string' },
      kid: { type: 'string' },
      surface: { type: 'string' },
      audit: { type: 'string', multiple: true },
      out: { type: 'string' },
      json: { type: 'boolean' },
    },
    strict: true,
    allowPositionals: true,
  });
  if (positionals.length !== 1) throw new UsageError('sign needs exactly one policy file');
  if (!values.key) throw new UsageError('sign needs --key PRIVATE_KEY');
  const policyFile = resolve(ctx.cwd, positionals[0]!);
  const keyFile = resolve(ctx.cwd, values.key);
  const kid = values.kid ?? (extname(keyFile) === '.key' ? basename(keyFile, '.key') : undefined);
  if (kid === undefined) throw new UsageError('sign needs --kid ID (or a key file named <kid>.key)');
  if (!isValidKeyId(kid)) throw new UsageError(`invalid key id '${kid}'`);
  const audit = keyValues(values.audit, '--audit');
  const surface = values.surface ?? SANDBOX_POLICY_SURFACE;

  let privateKey: ReturnType<typeof toEd25519PrivateKey>;
  try {
    privateKey = toEd25519PrivateKey(await readText(keyFile, 'key'));
  } catch (err) {
    if (err instanceof StartupError) throw err;
    throw new StartupError(`${keyFile}: ${(err as Error).message}`);
  }
  let bundle: ReturnType<typeof createBundle>;
  try {
    const policy = parseStructured(await readText(policyFile, 'policy'), policyFile);
    bundle = createBundle({
      surfaceId: surface,
      policy: policy as object,
      auditContext: audit,
      signer: { keyId: kid, privateKey },
    });
  } catch (err) {
    if (err instanceof PolicyInputError || err instanceof FileFormatError) {
      throw new StartupError(`${err instanceof PolicyInputError ? `${policyFile}: ` : ''}${err.message}`);
    }
    throw err;
  }
  if (!values.out) {
    ctx.stdout.write(formatBundle(bundle, values.json ? 'json' : 'yaml'));
    return EXIT.ok;
  }
  const out = resolve(ctx.cwd, values.out);
  await writeBundleFile(out, bundle);
  const summary = {
    bundle: out,
    surfaceId: bundle.surface_id,
    policyDigest: bundle.policy_digest,
    signingKeyId: kid,
  };
  if (values.json) printJson(ctx.stdout, summary);
  else ctx.stdout.write(`signed ${policyFile}\n  -> ${out}\n  digest ${bundle.policy_digest}, key ${kid}\n`);
  return EXIT.ok;
}

interface VerifyResult {
  bundle: string;
  ok: boolean;
  code?: string;
  error?: string;
  surfaceId?: string;
  policyDigest?: string;
  signingKeyId?: string;
  auditContext?: Record<string, string>;
}

async function verify(argv: string[], ctx: CommandContext): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: { trust: { type: 'string' }, json: { type: 'boolean' } },
    strict: true,
    allowPositionals: true,
  });
  if (positionals.length === 0) throw new UsageError('verify needs at least one bundle file');
  if (!values.trust) throw new UsageError('verify needs --trust DIR|JWKS');
  const trust = await loadTrust(resolve(ctx.cwd, values.trust));
  const results: VerifyResult[] = [];
  for (const p of positionals) {
    const file = resolve(ctx.cwd, p);
    await readText(file, 'bundle'); // unreadable is a usage error (exit 2), not a verdict
    try {
      const v = verifyBundle(await readBundleFile(file), { trust });
      results.push({
        bundle: file,
        ok: true,
        surfaceId: v.surfaceId,
        policyDigest: v.policyDigest,
        ...(v.signingKeyId !== undefined ? { signingKeyId: v.signingKeyId } : {}),
        auditContext: { ...v.auditContext },
      });
    } catch (err) {
      let code: string;
      if (err instanceof ProjectionVerificationError || err instanceof BundleError) code = err.code;
      else if (err instanceof FileFormatError) code = 'MALFORMED_BUNDLE';
      else throw err;
      results.push({ bundle: file, ok: false, code, error: (err as Error).message });
    }
  }
  const ok = results.every((r) => r.ok);
  if (values.json) printJson(ctx.stdout, { ok, trust: trust.source, keyIds: trust.keyIds, results });
  else {
    const c = colourizer(ctx.stdout, ctx.env);
    for (const r of results) {
      if (r.ok) {
        const audit = Object.entries(r.auditContext ?? {})
          .map(([k, v]) => `${k}=${v}`)
          .join(' ');
        ctx.stdout.write(
          `${c('green', 'OK')}      ${r.bundle}\n        surface ${r.surfaceId}, digest ${r.policyDigest}, key ${r.signingKeyId}${audit ? `, audit ${audit}` : ''}\n`,
        );
      } else ctx.stdout.write(`${c('red', 'FAILED')}  ${r.bundle}\n        ${r.code}: ${r.error}\n`);
    }
  }
  return ok ? EXIT.ok : EXIT.failed;
}

async function checkDriver(argv: string[], ctx: CommandContext): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      trust: { type: 'string' },
      surface: { type: 'string' },
      user: { type: 'string' },
      attr: { type: 'string', multiple: true },
      deadline: { type: 'string' },
      'tls-ca': { type: 'string' },
      'tls-server-name': { type: 'string' },
      json: { type: 'boolean' },
    },
    strict: true,
    allowPositionals: true,
  });
  if (positionals.length !== 1) throw new UsageError('check-driver needs exactly one endpoint');
  const endpoint = positionals[0]!;
  const deadlineMs = values.deadline === undefined ? 5000 : Number(values.deadline);
  if (!Number.isInteger(deadlineMs) || deadlineMs <= 0)
    throw new UsageError('--deadline must be a positive integer (ms)');
  const attributes = keyValues(values.attr, '--attr');
  const trust = values.trust ? await loadTrust(resolve(ctx.cwd, values.trust)) : undefined;
  const tls =
    values['tls-ca'] || values['tls-server-name']
      ? {
          ...(values['tls-ca'] ? { ca: await readText(resolve(ctx.cwd, values['tls-ca']), 'CA file') } : {}),
          ...(values['tls-server-name'] ? { serverName: values['tls-server-name'] } : {}),
        }
      : undefined;
  let conn: PolicyDriverConnection;
  try {
    conn = new PolicyDriverConnection(endpoint, { deadlineMs, ...(tls ? { tls } : {}) });
  } catch (err) {
    if (err instanceof EndpointError) throw new UsageError(err.message);
    throw err;
  }
  try {
    const report = await runDriverConformance(conn, {
      ...(trust ? { trust } : {}),
      ...(values.surface ? { surfaceId: values.surface } : {}),
      runtimeContext: { ...(values.user ? { userSubject: values.user } : {}), attributes },
    });
    if (values.json) printJson(ctx.stdout, { endpoint, ...report });
    else {
      const c = colourizer(ctx.stdout, ctx.env);
      const colour = { pass: 'green', fail: 'red', warn: 'yellow', skip: 'dim' } as const;
      ctx.stdout.write(
        formatTable(
          ['CHECK', 'RESULT', 'DETAIL'],
          report.findings.map((f) => [f.id, c(colour[f.status], f.status.toUpperCase()), f.detail]),
        ),
      );
      const { pass, fail, warn, skip } = report.counts;
      ctx.stdout.write(
        `\n${endpoint}: ${report.ok ? c('green', 'conforms') : c('red', 'does not conform')} (${pass} passed, ${fail} failed, ${warn} warnings, ${skip} skipped)\n`,
      );
    }
    return report.ok ? EXIT.ok : EXIT.failed;
  } finally {
    conn.close();
  }
}

async function serveAuthority(argv: string[], ctx: CommandContext): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      driver: { type: 'string' },
      listen: { type: 'string' },
      trust: { type: 'string' },
      state: { type: 'string' },
      surface: { type: 'string' },
      name: { type: 'string' },
      'driver-deadline': { type: 'string' },
      'tenant-from-principal': { type: 'string' },
      jwks: { type: 'string' },
      'public-key': { type: 'string' },
      'gateway-id': { type: 'string' },
      audience: { type: 'string' },
      insecure: { type: 'boolean' },
      ...SERVE_TLS_FLAGS,
      'driver-tls-ca': { type: 'string' },
      'driver-tls-server-name': { type: 'string' },
      'driver-tls-cert': { type: 'string' },
      'driver-tls-key': { type: 'string' },
    },
    strict: true,
    allowPositionals: true,
  });
  if (positionals.length) throw new UsageError(`serve takes no arguments, got '${positionals[0]}'`);
  checkServeTlsFlags(values);
  if (Boolean(values['driver-tls-cert']) !== Boolean(values['driver-tls-key'])) {
    throw new UsageError('--driver-tls-cert and --driver-tls-key go together');
  }
  if (!values.driver) throw new UsageError('serve needs --driver ENDPOINT');
  if (!values.listen) throw new UsageError('serve needs --listen ADDR');
  if (values.jwks && values['public-key']) throw new UsageError('give only one of --jwks, --public-key');
  const hasKey = Boolean(values.jwks || values['public-key']);
  if (values.insecure && (hasKey || values['gateway-id'] || values.audience)) {
    throw new UsageError('--insecure cannot be combined with token options');
  }
  if (!values.insecure && !hasKey) {
    throw new UsageError('authentication needs --jwks or --public-key (or --insecure to run without it)');
  }
  const deadlineMs = values['driver-deadline'] === undefined ? 2000 : Number(values['driver-deadline']);
  if (!Number.isInteger(deadlineMs) || deadlineMs <= 0) {
    throw new UsageError('--driver-deadline must be a positive integer (ms)');
  }
  const trust = values.trust ? await loadTrust(resolve(ctx.cwd, values.trust)) : undefined;
  const listenTls = serveTlsOptions(values, ctx.cwd);
  const driverTls = {
    ...(values['driver-tls-ca'] ? { ca: readPem(values['driver-tls-ca'], '--driver-tls-ca', ctx.cwd) } : {}),
    ...(values['driver-tls-server-name'] ? { serverName: values['driver-tls-server-name'] } : {}),
    ...(values['driver-tls-cert']
      ? {
          cert: readPem(values['driver-tls-cert'], '--driver-tls-cert', ctx.cwd),
          key: readPem(values['driver-tls-key'] as string, '--driver-tls-key', ctx.cwd),
        }
      : {}),
  };
  const tenantKey = values['tenant-from-principal'];
  const { createPolicyAuthorityInterceptor } = await import('@openshell-interceptors/policy-authority');
  const { serve } = await import('@openshell-interceptors/sdk');
  let authority: Awaited<ReturnType<typeof createPolicyAuthorityInterceptor>>;
  try {
    authority = await createPolicyAuthorityInterceptor({
      driver: values.driver,
      driverOptions: { deadlineMs, ...(Object.keys(driverTls).length > 0 ? { tls: driverTls } : {}) },
      ...(trust ? { trust } : {}),
      ...(values.state ? { stateDir: resolve(ctx.cwd, values.state) } : {}),
      ...(values.surface ? { surface: values.surface } : {}),
      ...(values.name ? { name: values.name } : {}),
      ...(tenantKey ? { tenantOf: (p: Readonly<Record<string, string>>) => p[tenantKey] } : {}),
    });
  } catch (err) {
    if (err instanceof EndpointError) throw new UsageError(err.message);
    throw new StartupError((err as Error).message);
  }
  const common = {
    ...(values['gateway-id'] ? { gatewayId: values['gateway-id'] } : {}),
    ...(values.audience ? { audience: values.audience } : {}),
  };
  let server: Awaited<ReturnType<typeof serve>>;
  try {
    server = await serve(authority.interceptor, {
      listen: values.listen,
      handleSignals: true,
      ...listenTls,
      ...(values.insecure
        ? { insecure: true }
        : {
            auth: values.jwks
              ? { ...common, jwksFile: resolve(ctx.cwd, values.jwks) }
              : { ...common, publicKeyFile: resolve(ctx.cwd, values['public-key']!) },
          }),
    });
  } catch (err) {
    authority.close();
    throw new StartupError((err as Error).message);
  }
  ctx.stdout.write(`listening on ${server.address}\n`);
  await server.closed;
  authority.close();
  return EXIT.ok;
}

const SUBCOMMANDS: Record<string, (argv: string[], ctx: CommandContext) => Promise<number>> = {
  keygen,
  sign,
  verify,
  'check-driver': checkDriver,
  serve: serveAuthority,
};

const command: Command = {
  name: 'policy',
  summary: 'Policy authority (RFC 0005): keys, signed bundles, driver checks, the enforcing interceptor',
  usage: USAGE,
  async run(argv, ctx) {
    const [sub, ...rest] = argv;
    if (sub === undefined)
      throw new UsageError('a subcommand is required: keygen, sign, verify, check-driver or serve');
    const fn = SUBCOMMANDS[sub];
    if (!fn) throw new UsageError(`unknown subcommand '${sub}' (keygen, sign, verify, check-driver, serve)`);
    return fn(rest, ctx);
  },
};
export default command;
