import {
  evaluationPhaseFields,
  type InterceptorEvaluation,
  OPENSHELL_SERVICE,
} from '@openshell-interceptors/protocol';
import naming from './quickstart.js';

// What the gateway would send for `CreateSandbox { name: "Team-A" }` from alice.
const ev: InterceptorEvaluation = {
  interceptorName: 'naming',
  bindingId: 'create-sandbox',
  service: OPENSHELL_SERVICE,
  method: 'CreateSandbox',
  principal: { kind: 'user', subject: 'alice@example.com' },
  ...evaluationPhaseFields('modify_operation', { name: 'Team-A' }),
};

const result = await naming.evaluate(ev);

// result.patches: [{ op: 'replace', path: '/name', value: 'team-a', from: '' }]
export { result };
