/** GET /healthz (liveness: the process answers) and GET /readyz (readiness: the store answers too). */
import { Type, type TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import { ApiPath } from '../../shared/api.js';
import { E2EEError, ErrorCode } from '../../shared/errors.js';
import { errorResponses } from '../schemas.js';

/** Probes come every few seconds: their request lines would drown the log. Failures still log. */
const PROBE_LOG_LEVEL = 'warn';

export default async function healthRoutes(scope: FastifyInstance): Promise<void> {
  const app = scope.withTypeProvider<TypeBoxTypeProvider>();
  const { store } = app.e2ee;

  app.get(
    ApiPath.healthz,
    { logLevel: PROBE_LOG_LEVEL, schema: { tags: ['health'], summary: 'Liveness', response: { 200: Type.Object({ status: Type.Literal('ok') }) } } },
    async () => ({ status: 'ok' as const }),
  );

  app.get(
    ApiPath.readyz,
    {
      logLevel: PROBE_LOG_LEVEL,
      schema: {
        tags: ['health'],
        summary: 'Readiness: the store is reachable',
        response: { 200: Type.Object({ status: Type.Literal('ready'), store: Type.String() }), ...errorResponses(503) },
      },
    },
    async (request) => {
      try {
        await store.ping();
      } catch (err) {
        request.log.warn({ err }, 'store ping failed');
        throw new E2EEError(ErrorCode.STORE_UNAVAILABLE, 'the store is not reachable');
      }
      return { status: 'ready' as const, store: store.kind };
    },
  );
}
