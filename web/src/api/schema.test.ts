// The generated API types must be what openapi-typescript makes of the committed document
// (which a Rust test keeps equal to the server's): regenerate with scripts/gen-api-types.sh.
import { readFileSync } from 'node:fs';
import openapiTS, { astToString } from 'openapi-typescript';
import { describe, expect, it } from 'vitest';

describe('generated API types', () => {
  it('are up to date with openapi.json', async () => {
    const document = new URL('./openapi.json', import.meta.url);
    const fresh = astToString(await openapiTS(document));
    const committed = readFileSync(new URL('./schema.gen.ts', import.meta.url), 'utf8');
    const body = (text: string) => text.slice(text.indexOf('export interface paths'));
    expect(body(committed), 'run scripts/gen-api-types.sh').toBe(body(fresh));
  });
});
