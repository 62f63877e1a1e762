import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { EvaluationRecord } from '@openshell-interceptors/gateway';
import {
  canonicalize,
  type JsonObject,
  operationView,
  RpcSelectorError,
  resolveRoute,
} from '@openshell-interceptors/protocol';
import { type Command, EXIT, UsageError } from '../command.js';
import { colourizer, formatTable, printJson } from '../output.js';
import { startGateway } from './plan.js';

const USAGE = `openshell-interceptors evaluate --config <gateway.toml> --rpc <service/method> --operation <op.json>
       [--principal key=value]... [--response <committed.json>] [--json]

  --config <file>        gateway configuration
  --rpc <rpc>            e.g. openshell.v1.OpenShell/CreateSandbox (or just CreateSandbox)
  --operation <file>     the request as ProtoJSON (secret fields may be included)
  --principal k=v        principal map entry sent to interceptors, repeatable
                         (e.g. --principal kind=user --principal subject=alice); default kind=unknown
  --response <file>      what the commit returns (ProtoJSON of the RPC's response type);
                         default: the commit echoes the final request
  --json                 print one JSON document: outcome, status, operation, response, evaluations

Runs one operation through modify_operation, validate, the commit and post_commit
against the live interceptors. Secrets are never printed.
Exit 0 allowed, 1 denied (a denial or a fail_closed failure), 2 configuration or startup refused.`;

async function readJsonObject(flag: string, path: string, cwd: string): Promise<JsonObject> {
  let text: string;
  try {
    text = await readFile(resolve(cwd, path), 'utf8');
  } catch (e) {
    throw new UsageError(`${flag} ${path}: cannot read: ${(e as Error).message}`);
  }
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new UsageError(`${flag} ${path}: not valid JSON: ${(e as Error).message}`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    throw new UsageError(`${flag} ${path}: expected a JSON object`);
  return v as JsonObject;
}

function parsePrincipal(entries: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of entries) {
    const i = e.indexOf('=');
    if (i <= 0) throw new UsageError(`--principal ${JSON.stringify(e)}: expected key=value`);
    out[e.slice(0, i)] = e.slice(i + 1);
  }
  if (out.kind === undefined) out.kind = 'unknown';
  return out;
}

const command: Command = {
  name: 'evaluate',
  summary: 'Run one operation through the live interceptors and print what happened',
  usage: USAGE,
  async run(argv, ctx) {
    const { values } = parseArgs({
      args: argv,
      options: {
        config: { type: 'string' },
        rpc: { type: 'string' },
        operation: { type: 'string' },
        principal: { type: 'string', multiple: true },
        response: { type: 'string' },
        json: { type: 'boolean' },
      },
      strict: true,
      allowPositionals: false,
    });
    if (!values.config) throw new UsageError('--config <gateway.toml> is required');
    if (!values.rpc) throw new UsageError('--rpc <service/method> is required');
    if (!values.operation) throw new UsageError('--operation <op.json> is required');
    let route: ReturnType<typeof resolveRoute>;
    try {
      route = resolveRoute(values.rpc);
    } catch (e) {
      if (e instanceof RpcSelectorError) throw new UsageError(`--rpc: ${e.message}`);
      throw e;
    }
    if (!route)
      throw new UsageError(
        `--rpc ${values.rpc}: not one of the 25 interceptable openshell.v1.OpenShell RPCs`,
      );
    const principal = parsePrincipal(values.principal ?? []);
    const request = await readJsonObject('--operation', values.operation, ctx.cwd);
    let response: JsonObject | undefined;
    if (values.response) {
      response = await readJsonObject('--response', values.response, ctx.cwd);
      try {
        canonicalize(route.responseType, response);
      } catch (e) {
        throw new UsageError(
          `--response ${values.response}: not a valid ${route.responseType}: ${(e as Error).message}`,
        );
      }
    }

    const gw = await startGateway(resolve(ctx.cwd, values.config), ctx);
    let out: Awaited<ReturnType<typeof gw.intercept>>;
    try {
      out = await gw.intercept({
        method: route.method,
        service: route.service,
        principal,
        request,
        commit: async (finalRequest) => response ?? finalRequest,
      });
    } finally {
      await gw.close();
    }

    // Print views only: a secret never leaves the process.
    let responseView: JsonObject | null = null;
    if (out.response !== null) {
      const [type, value] = response ? [route.responseType, out.response] : [route.requestType, out.response];
      responseView = operationView(type, canonicalize(type, value).message);
    }
    const evaluations = out.evaluations.map((e: EvaluationRecord) => ({
      interceptor: e.interceptor,
      binding: e.binding,
      phase: e.phase,
      decision: e.decision,
      failurePolicy: e.failurePolicy,
      patches: e.patches,
      latencyMs: Math.round(e.latencyMs * 1000) / 1000,
      error: e.error,
      annotations: e.annotations,
    }));
    const code = out.outcome === 'allowed' ? EXIT.ok : EXIT.failed;
    if (values.json) {
      printJson(ctx.stdout, {
        outcome: out.outcome,
        status: out.status,
        operation: out.operation,
        response: responseView,
        evaluations,
      });
      return code;
    }
    const c = colourizer(ctx.stdout, ctx.env);
    ctx.stdout.write(
      out.outcome === 'allowed'
        ? `${c('green', 'allowed')}\n`
        : `${c('red', 'denied')}: ${out.status?.code}: ${out.status?.message}\n`,
    );
    if (evaluations.length > 0) {
      ctx.stdout.write(
        `\n${formatTable(
          ['PHASE', 'INTERCEPTOR', 'BINDING', 'DECISION', 'POLICY', 'PATCHES', 'LATENCY', 'DETAIL'],
          out.evaluations.map((e) => [
            e.phase,
            e.interceptor,
            e.binding,
            e.decision === 'allow'
              ? c('green', 'allow')
              : c(e.decision === 'deny' ? 'red' : 'yellow', e.decision),
            e.failurePolicy,
            e.applied ? `${e.patches.length} applied` : String(e.patches.length),
            `${e.latencyMs.toFixed(1)}ms`,
            e.error ??
              e.reason ??
              Object.entries(e.annotations)
                .map(([k, v]) => `${k}=${v}`)
                .join(' '),
          ]),
        )}`,
      );
    }
    ctx.stdout.write(`\noperation:\n${JSON.stringify(out.operation, null, 2)}\n`);
    if (responseView) ctx.stdout.write(`\nresponse:\n${JSON.stringify(responseView, null, 2)}\n`);
    return code;
  },
};
export default command;
