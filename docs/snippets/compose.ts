import { compose } from '@openshell-interceptors/sdk';
import naming from './quickstart.js';
import { quota } from './validate.js';

// One service, one Describe: the bindings of both, ids kept (a duplicate id is an error).
export default compose('platform', naming, quota);
