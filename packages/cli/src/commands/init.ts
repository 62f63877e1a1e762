import { existsSync, readFileSync } from 'node:fs';
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { type Command, EXIT, StartupError, UsageError } from '../command.js';
import { colourizer, printJson } from '../output.js';

const USAGE = `openshell-interceptors init <dir> [--name <interceptor-name>] [--json]

  <dir>          where to create the project (must not exist, or be empty)
  --name <name>  the interceptor name (default: from the directory name)
  --json         print one JSON document: { dir, name, packageName, workspace, files }

Scaffolds an interceptor project: the handler, unit tests on the test gateway, a declarative
suite, a README and a gateway TOML sample; its tests pass as created. Inside a pnpm workspace
(a pnpm-workspace.yaml above <dir>) the packages are depended on as workspace:*, elsewhere
on the published versions.
Exit 0 created, 2 usage or a non-empty directory.`;

/** `templates/init`, two levels up from this file in src/commands and in dist/commands alike. */
const TEMPLATES = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', 'templates', 'init');

const OWN_VERSION = (
  JSON.parse(readFileSync(resolve(TEMPLATES, '..', '..', 'package.json'), 'utf8')) as { version: string }
).version;

/** The nearest directory at or above `dir` holding a pnpm-workspace.yaml. */
function findWorkspace(dir: string): string | undefined {
  let at = dir;
  for (;;) {
    if (existsSync(join(at, 'pnpm-workspace.yaml'))) return at;
    const up = dirname(at);
    if (up === at) return undefined;
    at = up;
  }
}

/** A directory name → an interceptor name (lower-case letters, digits, '-'). */
function nameFrom(dir: string): string {
  return basename(dir)
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^-+|-+$/g, '');
}

function camel(name: string): string {
  const c = name.replace(/-([a-z0-9])/g, (_, ch: string) => ch.toUpperCase()).replace(/[^A-Za-z0-9]/g, '');
  return /^[A-Za-z_]/.test(c) ? c : `interceptor${c}`;
}

async function templateFiles(dir: string, prefix = ''): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const rel = prefix ? `${prefix}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...(await templateFiles(join(dir, e.name), rel)));
    else out.push(rel);
  }
  return out.sort();
}

function render(text: string, vars: Readonly<Record<string, string>>): string {
  return text.replace(/\{\{(\w+)\}\}/g, (m, k: string) => vars[k] ?? m);
}

const command: Command = {
  name: 'init',
  summary: 'Scaffold a new interceptor project whose tests pass as created',
  usage: USAGE,
  async run(argv, ctx) {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: { name: { type: 'string' }, json: { type: 'boolean' } },
    });
    if (positionals.length !== 1) throw new UsageError('give exactly one directory');
    const dir = resolve(ctx.cwd, positionals[0]!);
    const name = values.name ?? nameFrom(dir);
    if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(name))
      throw new UsageError(
        `interceptor name ${JSON.stringify(name)} must be lower-case letters, digits and '-' (pass --name)`,
      );
    if (existsSync(dir)) {
      if (!(await stat(dir)).isDirectory()) throw new StartupError(`${dir} exists and is not a directory`);
      if ((await readdir(dir)).length > 0)
        throw new StartupError(`${dir} is not empty: init only writes into a new or empty directory`);
    }

    const workspaceRoot = findWorkspace(dirname(dir));
    const workspace = workspaceRoot !== undefined;
    const dep = workspace ? 'workspace:*' : `^${OWN_VERSION}`;
    const packageName = workspace ? `@openshell-interceptors/${name}` : name;
    const vars = {
      name,
      camelName: camel(name),
      install: workspace ? 'pnpm install   # from the workspace root' : 'npm install',
    };

    const files = new Map<string, string>();
    files.set(
      'package.json',
      `${JSON.stringify(
        {
          name: packageName,
          version: '0.1.0',
          private: true,
          description: `OpenShell gateway interceptor ${name}`,
          type: 'module',
          exports: {
            '.': { source: './src/index.ts', types: './dist/index.d.ts', default: './dist/index.js' },
            './package.json': './package.json',
          },
          main: './dist/index.js',
          types: './dist/index.d.ts',
          engines: { node: '>=20.11' },
          scripts: {
            build: 'tsc -p tsconfig.json',
            test: 'vitest run',
            'test:suites': 'openshell-interceptors test tests/*.suite.yaml',
            start: 'openshell-interceptors serve . --listen 127.0.0.1:50051 --insecure',
            check: 'openshell-interceptors check 127.0.0.1:50051',
          },
          dependencies: { '@openshell-interceptors/sdk': dep },
          devDependencies: {
            '@openshell-interceptors/cli': dep,
            '@openshell-interceptors/testing': dep,
            '@types/node': '^20.19.0',
            tsx: '^4.20.0',
            typescript: '^5.9.0',
            vitest: '^4.0.0',
          },
        },
        null,
        2,
      )}\n`,
    );
    files.set(
      'tsconfig.json',
      `${JSON.stringify(
        {
          compilerOptions: {
            target: 'ES2022',
            lib: ['ES2023'],
            module: 'NodeNext',
            moduleResolution: 'NodeNext',
            types: ['node'],
            strict: true,
            noUncheckedIndexedAccess: true,
            skipLibCheck: true,
            declaration: true,
            rootDir: 'src',
            outDir: 'dist',
            // Inside the workspace, type-check against the packages' sources (no build needed).
            ...(workspace ? { customConditions: ['source'] } : {}),
          },
          include: ['src/**/*.ts'],
          exclude: ['src/**/*.test.ts'],
        },
        null,
        2,
      )}\n`,
    );
    files.set(
      'vitest.config.ts',
      workspace
        ? `import { defineConfig } from 'vitest/config';

// Inside the workspace the packages are used from their sources (the "source" export condition).
export default defineConfig({
  resolve: { conditions: ['source'] },
  ssr: { resolve: { conditions: ['source'] } },
  test: { include: ['src/**/*.test.ts'], testTimeout: 30_000 },
});
`
        : `import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: { include: ['src/**/*.test.ts'], testTimeout: 30_000 },
});
`,
    );
    for (const rel of await templateFiles(TEMPLATES)) {
      const target = render(rel.replace(/\.tmpl$/, ''), vars).replace(/^gitignore$/, '.gitignore');
      files.set(target, render(await readFile(join(TEMPLATES, rel), 'utf8'), vars));
    }

    for (const [rel, content] of files) {
      const path = join(dir, rel);
      await mkdir(dirname(path), { recursive: true });
      await writeFile(path, content, { flag: 'wx' });
    }
    const written = [...files.keys()].sort();
    if (values.json) {
      printJson(ctx.stdout, { dir, name, packageName, workspace, files: written });
      return EXIT.ok;
    }
    const c = colourizer(ctx.stdout, ctx.env);
    const shown = relative(ctx.cwd, dir) || '.';
    ctx.stdout.write(
      [
        `${c('green', 'created')} ${shown}: interceptor '${name}' (${workspace ? `workspace packages from ${workspaceRoot}` : `@openshell-interceptors/* ^${OWN_VERSION}`})`,
        ...written.map((f) => `  ${f}`),
        '',
        'next:',
        `  cd ${shown}`,
        `  ${workspace ? 'pnpm install' : 'npm install'}`,
        '  npm test',
        '',
      ].join('\n'),
    );
    return EXIT.ok;
  },
};

export default command;
