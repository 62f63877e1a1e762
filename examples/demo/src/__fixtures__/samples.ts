// The four samples configured as in the demo, as named exports for the composition suite.
import { createAuditInterceptor } from '@openshell-interceptors/example-audit';
import { createNamingInterceptor } from '@openshell-interceptors/example-naming';
import { createQuotaInterceptor, MemoryQuotaStore } from '@openshell-interceptors/example-quota';
import { createTenancyInterceptor } from '@openshell-interceptors/example-tenancy';

export const naming = createNamingInterceptor();
export const tenancy = createTenancyInterceptor({
  domains: { 'acme.example': 'acme', 'globex.example': 'globex' },
});
export const quota = createQuotaInterceptor({ store: new MemoryQuotaStore(), limit: 1 });
/** What the audit interceptor wrote, one JSON line each. */
export const auditLines: string[] = [];
export const audit = createAuditInterceptor({
  sink: {
    async write(lines) {
      auditLines.push(...lines.split('\n').filter(Boolean));
    },
    async close() {},
  },
});
