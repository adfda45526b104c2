// A minimal HTTP front for @medplum/fhir-router: its FhirRouter over a
// MemoryRepository, serving the FHIR R4 REST API under /fhir/R4. Written
// by `parcours perf` into a temporary directory; prints one JSON line
// {"addr": "127.0.0.1:PORT", "patient": "ID"} once listening.
import http from 'node:http';
import { getStatus } from '@medplum/core';
import { FhirRouter, MemoryRepository } from '@medplum/fhir-router';

const prefix = '/fhir/R4';
const repo = new MemoryRepository();
const router = new FhirRouter();
const start = await repo.createResource({ resourceType: 'Patient', name: [{ family: 'Perf', given: ['Start'] }], birthDate: '1970-01-01' });

function send(res, status, body) {
  res.writeHead(status, { 'Content-Type': 'application/fhir+json' });
  res.end(JSON.stringify(body));
}

const server = http.createServer(async (req, res) => {
  const chunks = [];
  for await (const c of req) chunks.push(c);
  if (!req.url.startsWith(prefix + '/')) return send(res, 404, { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'not-found' }] });
  const url = new URL(req.url.slice(prefix.length), 'http://localhost');
  let body;
  try {
    body = chunks.length ? JSON.parse(Buffer.concat(chunks).toString('utf8')) : undefined;
  } catch {
    return send(res, 400, { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'invalid' }] });
  }
  const [outcome, resource] = await router.handleRequest(
    { method: req.method, url: url.pathname + url.search, pathname: '', params: {}, query: Object.fromEntries(url.searchParams), body, headers: req.headers },
    repo,
  );
  const status = getStatus(outcome);
  if (resource && status === 201) res.setHeader('Location', prefix + '/' + resource.resourceType + '/' + resource.id);
  send(res, status, resource ?? outcome);
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => {
  const { address, port } = server.address();
  console.log(JSON.stringify({ addr: address + ':' + port, patient: start.id }));
});
