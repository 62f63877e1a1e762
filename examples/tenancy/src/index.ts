import { createTenancyInterceptor, tenancyOptionsFromEnv } from './tenancy.js';

export {
  createTenancyInterceptor,
  TENANT_NAME,
  type TenancyOptions,
  type TenantResolution,
  tenancyOptionsFromEnv,
  WORKSPACE_RPCS,
  workspaceOwner,
} from './tenancy.js';

/** The tenancy interceptor configured from TENANCY_* environment variables (see tenancyOptionsFromEnv). */
const tenancy = createTenancyInterceptor(tenancyOptionsFromEnv(process.env));
export default tenancy;
