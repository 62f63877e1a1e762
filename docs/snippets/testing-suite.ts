import { defineSuiteTests } from '@openshell-interceptors/testing/vitest';

defineSuiteTests(new URL('../tests/naming.suite.yaml', import.meta.url));
