import { createNamingInterceptor, namingOptionsFromEnv } from './naming.js';

export {
  createNamingInterceptor,
  DEFAULT_RESERVED,
  DNS_LABEL,
  generatedName,
  MAX_NAME_LENGTH,
  type NamingOptions,
  nameProblem,
  namingOptionsFromEnv,
  toLabel,
} from './naming.js';

/** The naming interceptor configured from NAMING_* environment variables (see namingOptionsFromEnv). */
const naming = createNamingInterceptor(namingOptionsFromEnv(process.env));
export default naming;
